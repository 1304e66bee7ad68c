use session_runtime::Session;

// Several problems at once: all of them are reported, including several in one attribute.
#[derive(Session)]
#[session(
    cookie_name = "",
    codec = "yaml",
    max_age = 0,
    absolute_max_age = "1 day"
)]
pub struct Cart {
    #[session(rename = "", alias = 5, default = "")]
    items: Vec<u64>,
}

fn main() {}
