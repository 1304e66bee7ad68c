use session_runtime::Session;

#[derive(Session)]
pub struct Shop {
    user: Option<u64>,
}

#[derive(Session)]
#[session(view_of = Shop)]
pub struct ShopUser {
    #[session(owner)]
    user: Option<u64>,
}

fn main() {}
