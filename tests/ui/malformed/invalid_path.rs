use session_runtime::Session;

#[derive(Session)]
#[session(crate = "session runtime")]
pub struct Cart {
    #[session(default = "Vec::new()")]
    items: Vec<u64>,
}

fn main() {}
