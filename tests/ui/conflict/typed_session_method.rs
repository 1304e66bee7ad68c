use session_runtime::Session;

#[derive(Session)]
pub struct Cart {
    data: Vec<u64>,
    max_age: u64,
    #[session(rename = "identifier")]
    id: u64,
    regenerate: bool,
}

fn main() {}
