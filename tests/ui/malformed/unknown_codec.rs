use session_runtime::Session;

#[derive(Session)]
#[session(codec = "yaml")]
pub struct Cart {
    items: Vec<u64>,
}

fn main() {}
