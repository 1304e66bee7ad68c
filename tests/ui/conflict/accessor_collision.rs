use session_runtime::Session;

#[derive(Session)]
pub struct Cart {
    items: Vec<u64>,
    items_mut: Vec<u64>,
    set_items: Vec<u64>,
    r#type: u8,
    type_mut: u8,
}

fn main() {}
