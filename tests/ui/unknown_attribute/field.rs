use session_runtime::Session;

#[derive(Session)]
pub struct Cart {
    #[session(renme = "items")]
    items: Vec<u64>,
}

fn main() {}
