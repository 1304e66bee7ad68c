use session_runtime::Session;

#[derive(serde::Serialize, serde::Deserialize, Default, PartialEq)]
pub struct User {
    id: u64,
    name: String,
}

#[derive(Session)]
pub struct Account {
    #[session(owner)]
    user: Option<User>,
}

fn main() {}
