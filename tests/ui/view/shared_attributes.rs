use session_runtime::Session;

#[derive(Session)]
pub struct Shop {
    visits: u64,
}

#[derive(Session)]
#[session(
    view_of = Shop,
    cookie_name = "other",
    codec = "json",
    max_age = 60,
    absolute_max_age = 600,
    purge_undeclared
)]
pub struct ShopVisits {
    visits: u64,
}

fn main() {}
