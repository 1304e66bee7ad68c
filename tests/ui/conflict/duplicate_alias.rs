use session_runtime::Session;

#[derive(Session)]
pub struct Cart {
    items: Vec<u64>,
    #[session(alias = "items")]
    products: Vec<u64>,
}

fn main() {}
