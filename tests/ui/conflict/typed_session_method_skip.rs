use session_runtime::Session;

#[derive(Session)]
pub struct Cart {
    items: Vec<u64>,
    #[session(skip)]
    is_dirty: bool,
}

fn main() {}
