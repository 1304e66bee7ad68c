use session_runtime::Session;

#[derive(Session)]
#[session(cookie_name = "")]
pub struct Cart {
    items: Vec<u64>,
}

fn main() {}
