use session_runtime::Session;

#[derive(Session)]
pub struct Shop {
    visits: u64,
}

#[derive(Session)]
#[session(view_of = Shop)]
pub struct ShopVisits {
    visits: String,
}

fn main() {}
