use session_runtime::Session;

#[derive(Session)]
pub struct Cart {
    #[session(rename = "__items")]
    items: Vec<u64>,
    #[session(alias = "__meta")]
    user: Option<u64>,
}

fn main() {}
