use session_runtime::Session;

#[derive(Session)]
#[session(owner)]
pub struct Account {
    user: Option<u64>,
}

fn main() {}
