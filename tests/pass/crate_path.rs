//! `#[session(crate = "...")]`: the runtime re-exported under another name.

mod web {
    pub use ::session_runtime as sessions;
}

use web::sessions::Session;

#[derive(Session)]
#[session(crate = "web::sessions")]
pub struct Prefs {
    theme: String,
}

#[derive(Session)]
#[session(crate = "crate::web::sessions", codec = "msgpack")]
pub struct Cart {
    items: Vec<u64>,
}

#[derive(Session)]
#[session(crate = "::session_runtime")]
pub struct Plain {
    visits: u64,
}

fn main() {
    assert_eq!(Prefs::FIELD_NAMES, ["theme"]);
    assert_eq!(Cart::COOKIE_NAME, "cart");
    assert_eq!(Plain::COOKIE_NAME, "plain");
}
