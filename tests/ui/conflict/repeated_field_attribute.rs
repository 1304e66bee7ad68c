use session_runtime::Session;

#[derive(Session)]
pub struct Cart {
    #[session(rename = "products", rename = "items")]
    items: Vec<u64>,
    #[session(skip)]
    #[session(skip)]
    scratch: u8,
}

fn main() {}
