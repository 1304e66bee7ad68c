use session_runtime::Session;

#[derive(Session)]
#[session(codec = 1)]
pub struct Cart {
    items: Vec<u64>,
}

fn main() {}
