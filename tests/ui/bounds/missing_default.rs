use serde::{Deserialize, Serialize};
use session_runtime::Session;

#[derive(Serialize, Deserialize)]
struct NoDefault(u8);

#[derive(Session)]
struct Cart {
    items: Vec<u64>,
    thing: NoDefault,
}

fn main() {}
