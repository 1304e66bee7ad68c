use session_runtime::Session;

#[derive(Session)]
pub struct Shop {
    visits: u64,
}

#[derive(Session)]
#[session(view_of = Shop)]
pub struct ShopCart {
    cart: Vec<String>,
}

fn main() {}
