use session_runtime::Session;

#[derive(Session)]
pub struct Shop {
    visits: Box<u64>,
}

#[derive(Session)]
#[session(view_of = Shop)]
pub struct ShopVisits {
    visits: u64,
}

fn main() {}
