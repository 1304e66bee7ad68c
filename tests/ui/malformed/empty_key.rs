use session_runtime::Session;

#[derive(Session)]
pub struct Cart {
    #[session(rename = "")]
    items: Vec<u64>,
    #[session(alias = "")]
    user: Option<u64>,
}

fn main() {}
