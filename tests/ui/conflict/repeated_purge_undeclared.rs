use session_runtime::Session;

#[derive(Session)]
#[session(purge_undeclared, purge_undeclared)]
pub struct Cart {
    items: Vec<u64>,
}

#[derive(Session)]
#[session(purge_undeclared)]
#[session(codec = "json", purge_undeclared)]
pub struct Prefs {
    theme: String,
}

fn main() {}
