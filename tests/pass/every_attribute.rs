//! Every container and field attribute at once.

use serde::{Deserialize, Serialize};
use session_runtime::Session;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    sku: String,
}

mod defaults {
    pub fn theme() -> String {
        "light".to_owned()
    }

    pub fn retries() -> u8 {
        3
    }
}

#[derive(Session)]
#[session(
    cookie_name = "__Host-shop",
    codec = "msgpack",
    max_age = 3600,
    absolute_max_age = 86_400,
    crate = "::session_runtime"
)]
#[session()]
pub struct Shop {
    pub user_id: Option<u64>,
    #[session(rename = "items", alias = "cart", alias = "basket")]
    pub cart: Vec<Item>,
    #[session(default = "defaults::theme")]
    #[session(alias = "colour")]
    pub theme: String,
    #[session(skip)]
    pub scratch: u8,
    #[session(skip, default = "defaults::retries")]
    retries: u8,
    #[session(default = "Vec::new", rename = "seen")]
    seen_items: Vec<String>,
}

fn main() {
    assert_eq!(Shop::COOKIE_NAME, "__Host-shop");
    assert_eq!(Shop::MAX_AGE, Some(3600));
    assert_eq!(Shop::ABSOLUTE_MAX_AGE, Some(86_400));
    assert_eq!(Shop::FIELD_NAMES, ["user_id", "items", "theme", "seen"]);
    let shop = Shop::new_default();
    assert_eq!(shop.theme, "light");
    assert_eq!(shop.retries, 3);
}
