use session_runtime::Session;

#[derive(Session)]
pub struct Shop {
    #[session(alias = "count")]
    visits: u64,
}

#[derive(Session)]
#[session(view_of = Shop)]
pub struct ShopVisits {
    visits: u64,
}

fn main() {}
