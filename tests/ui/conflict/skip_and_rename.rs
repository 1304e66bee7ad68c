use session_runtime::Session;

#[derive(Session)]
pub struct Cart {
    items: Vec<u64>,
    #[session(skip, rename = "tmp")]
    scratch: u8,
}

fn main() {}
