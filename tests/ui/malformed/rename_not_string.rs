use session_runtime::Session;

#[derive(Session)]
pub struct Cart {
    #[session(rename = 5)]
    items: Vec<u64>,
    #[session(alias = items)]
    user: Option<u64>,
}

fn main() {}
