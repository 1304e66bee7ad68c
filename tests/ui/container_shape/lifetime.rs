use session_runtime::Session;

#[derive(Session)]
pub struct Borrowed<'a> {
    name: &'a str,
}

fn main() {}
