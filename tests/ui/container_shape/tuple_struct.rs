use session_runtime::Session;

#[derive(Session)]
pub struct Pair(u64, String);

fn main() {}
