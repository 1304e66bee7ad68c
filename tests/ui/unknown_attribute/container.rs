use session_runtime::Session;

#[derive(Session)]
#[session(cookie = "shop")]
pub struct Shop {
    cart: Vec<u64>,
}

fn main() {}
