use session_runtime::Session;

#[derive(Session)]
#[session(cookie_name = "my cart")]
pub struct Cart {
    items: Vec<u64>,
}

#[derive(Session)]
#[session(cookie_name = "cart;path=/")]
pub struct Cart2 {
    items: Vec<u64>,
}

#[derive(Session)]
#[session(cookie_name = "panier_été")]
pub struct Cart3 {
    items: Vec<u64>,
}

#[derive(Session)]
#[session(cookie_name = "cart\t")]
pub struct Cart4 {
    items: Vec<u64>,
}

fn main() {}
