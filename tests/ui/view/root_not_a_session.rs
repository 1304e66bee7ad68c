use session_runtime::Session;

pub struct Plain {
    pub visits: u64,
}

#[derive(Session)]
#[session(view_of = Plain)]
pub struct PlainVisits {
    visits: u64,
}

fn main() {}
