use session_runtime::Session;

#[derive(Session)]
pub struct Cart {
    #[session(rename = "items" "products")]
    items: Vec<u64>,
}

fn main() {}
