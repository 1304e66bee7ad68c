use session_runtime::Session;

#[derive(Session)]
#[session(codec = msgpack)]
pub struct Cart {
    items: Vec<u64>,
}

fn main() {}
