use session_runtime::Session;

#[derive(Session)]
pub struct Account {
    #[session(owner)]
    user: u64,
    #[session(owner)]
    other: Result<u64, String>,
}

fn main() {}
