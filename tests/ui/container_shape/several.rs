use session_runtime::Session;

// Several problems at once: all of them are reported.
#[derive(Session)]
pub enum Borrowed<'a, 'b> {
    A(&'a str),
    B(&'b str),
}

#[derive(Session)]
pub struct Tuple<'a>(&'a str);

fn main() {}
