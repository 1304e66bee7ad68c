use session_runtime::Session;

#[derive(Session)]
#[session(purge_undeclared = true)]
pub struct Cart {
    items: Vec<u64>,
}

#[derive(Session)]
#[session(purge_undeclared = false)]
pub struct Prefs {
    theme: String,
}

#[derive(Session)]
#[session(max_age = 60, purge_undeclared(always))]
pub struct Login {
    user: Option<u64>,
}

fn main() {}
