use session_runtime::Session;

#[derive(Session)]
pub struct Account {
    #[session(owner, skip)]
    user: Option<u64>,
}

fn main() {}
