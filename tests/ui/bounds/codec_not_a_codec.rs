use session_runtime::Session;

struct NotACodec;

#[derive(Session)]
#[session(codec = NotACodec)]
struct Cart {
    items: Vec<u64>,
}

fn main() {}
