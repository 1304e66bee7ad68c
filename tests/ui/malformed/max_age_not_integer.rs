use session_runtime::Session;

#[derive(Session)]
#[session(max_age = "3600")]
pub struct Cart {
    items: Vec<u64>,
}

#[derive(Session)]
#[session(max_age = 60 * 60)]
pub struct Cart2 {
    items: Vec<u64>,
}

#[derive(Session)]
#[session(absolute_max_age = 1.5)]
pub struct Cart3 {
    items: Vec<u64>,
}

#[derive(Session)]
#[session(absolute_max_age = 99999999999999999999999)]
pub struct Cart4 {
    items: Vec<u64>,
}

fn main() {}
