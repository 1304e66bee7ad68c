use session_runtime::Session;

#[derive(Session)]
#[session(crate = "")]
pub struct Cart {
    #[session(default = " ")]
    items: Vec<u64>,
}

fn main() {}
