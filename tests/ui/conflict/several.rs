use session_runtime::Session;

// Several problems at once: all of them are reported, not only the first.
#[derive(Session)]
pub struct Cart {
    #[session(renme = "items")]
    pub items: Vec<u64>,
    #[session(rename = "user")]
    pub user_id: u64,
    #[session(rename = "user")]
    pub username: String,
    #[session(skip, rename = "tmp")]
    pub scratch: u8,
    pub data: u8,
}

fn main() {}
