use session_runtime::Session;

#[derive(Session)]
pub struct Cart {
    items: Vec<u64>,
    #[session(alias = "tmp")]
    #[session(skip)]
    scratch: u8,
}

fn main() {}
