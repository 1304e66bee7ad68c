use session_runtime::Session;

#[derive(Session)]
#[session(max_age, codec =)]
pub struct Cart {
    #[session(rename)]
    items: Vec<u64>,
    #[session(default =, alias("old"))]
    user: Option<u64>,
}

fn main() {}
