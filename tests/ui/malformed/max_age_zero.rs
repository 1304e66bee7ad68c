use session_runtime::Session;

#[derive(Session)]
#[session(max_age = 0)]
pub struct Cart {
    items: Vec<u64>,
}

#[derive(Session)]
#[session(absolute_max_age = -60)]
pub struct Cart2 {
    items: Vec<u64>,
}

fn main() {}
