use session_runtime::Session;

#[derive(Session)]
pub struct Flag;

fn main() {}
