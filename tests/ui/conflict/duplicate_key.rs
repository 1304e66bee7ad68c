use session_runtime::Session;

#[derive(Session)]
pub struct Cart {
    #[session(rename = "user")]
    user_id: u64,
    #[session(rename = "user")]
    username: String,
    user: String,
}

fn main() {}
