use session_runtime::Session;

#[derive(Default)]
struct NoSerde;

#[derive(Session)]
struct Cart {
    items: Vec<u64>,
    thing: NoSerde,
}

fn main() {}
