use session_runtime::Session;

#[derive(Session)]
pub struct Shop {
    visits: u64,
    cart: u64,
}

#[derive(Session)]
#[session(view_of = Shop)]
pub struct ShopVisits {
    #[session(rename = "cart")]
    visits: u64,
}

fn main() {}
