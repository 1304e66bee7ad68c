use session_runtime::Session;

#[derive(Session)]
pub struct Cart {
    #[session(serde::rename = "items")]
    items: Vec<u64>,
}

fn main() {}
