use session_runtime::Session;

#[derive(Session)]
#[session]
pub struct Cart {
    items: Vec<u64>,
}

fn main() {}
