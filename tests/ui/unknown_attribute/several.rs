use session_runtime::Session;

// Several problems at once: all of them are reported, including two in one attribute.
#[derive(Session)]
#[session(cookie = "cart", ttl = 60, codec = "json")]
pub struct Cart {
    #[session(renme = "items", alias = "products", defualt = "Vec::new")]
    items: Vec<u64>,
    #[session(codec = "json")]
    user: Option<u64>,
}

fn main() {}
