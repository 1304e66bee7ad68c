use session_runtime::Session;

#[derive(Session)]
pub struct Account {
    #[session(owner)]
    user: Option<u64>,
    visits: u64,
}

#[derive(Session)]
#[session(view_of = Account)]
pub struct AccountVisits {
    visits: u64,
}

fn main() {}
