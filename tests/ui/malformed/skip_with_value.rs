use session_runtime::Session;

#[derive(Session)]
pub struct Cart {
    items: Vec<u64>,
    #[session(skip = true)]
    scratch: u8,
    #[session(skip(always))]
    other: u8,
}

fn main() {}
