use session_runtime::Session;

#[derive(Session)]
pub struct Cart {
    #[session(purge_undeclared)]
    items: Vec<u64>,
}

fn main() {}
