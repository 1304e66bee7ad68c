use session_runtime::Session;

#[derive(Session)]
pub struct Cart {
    #[session(alias = "products", alias = "products")]
    items: Vec<u64>,
    #[session(rename = "theme", alias = "theme")]
    colour: String,
}

fn main() {}
