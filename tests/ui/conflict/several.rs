use session_runtime::Session;

// Several problems at once (the input of STYLE.md section 5): all of them are reported.
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
