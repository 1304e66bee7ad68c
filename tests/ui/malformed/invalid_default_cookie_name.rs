use session_runtime::Session;

#[derive(Session)]
pub struct PanierÉté {
    items: Vec<u64>,
}

fn main() {}
