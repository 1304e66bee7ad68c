use session_runtime::Session;

#[derive(Session)]
pub struct Account {
    #[session(owner)]
    user: Option<u64>,
    #[session(owner)]
    admin: Option<u64>,
}

fn main() {}
