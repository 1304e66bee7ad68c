use session_runtime::Session;

#[derive(Session)]
#[session(codec = "json")]
#[session(max_age = 60, codec = "msgpack")]
pub struct Cart {
    items: Vec<u64>,
}

fn main() {}
