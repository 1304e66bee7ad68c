use session_runtime::Session;

#[derive(Session)]
pub struct Cart {
    items: Vec<u64>,
    #[session(rename = "state")]
    __state: u8,
}

fn main() {}
