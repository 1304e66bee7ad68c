use session_runtime::Session;

#[derive(Session)]
pub struct Shop {
    visits: u64,
}

#[derive(Session)]
#[session(view_of = "Shop")]
pub struct Quoted {
    visits: u64,
}

#[derive(Session)]
#[session(view_of = 3)]
pub struct NotAPath {
    visits: u64,
}

#[derive(Session)]
#[session(view_of)]
pub struct NoValue {
    visits: u64,
}

fn main() {}
