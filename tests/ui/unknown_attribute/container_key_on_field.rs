use session_runtime::Session;

#[derive(Session)]
pub struct Cart {
    #[session(max_age = 3600)]
    items: Vec<u64>,
}

fn main() {}
