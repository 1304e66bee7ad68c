//! `#[session(owner)]` on integer and string keys, written as `Option`, `std::option::Option`
//! and `core::option::Option`, on plain and generic structs, renamed, with a default.

use session_runtime::owner::{OwnedSession, OwnerKey};
use session_runtime::Session;

#[derive(Session)]
pub struct ByNumber {
    #[session(owner)]
    user: Option<u64>,
}

#[derive(Session)]
pub struct ByName {
    visits: u32,
    #[session(owner, rename = "uid")]
    user: std::option::Option<String>,
}

#[derive(Session)]
pub struct Signed {
    #[session(owner, default = "nobody")]
    user: core::option::Option<i64>,
}

fn nobody() -> Option<i64> {
    None
}

#[derive(Session)]
pub struct Generic<K>
where
    K: serde::Serialize + serde::de::DeserializeOwned + Default + Send + Sync + 'static,
{
    extra: K,
    #[session(owner)]
    user: Option<u32>,
}

fn key_of<T: OwnedSession>(data: &T) -> Option<String> {
    data.owner().map(OwnerKey::index_key)
}

fn main() {
    assert_eq!(ByNumber::OWNER_INDEX, Some(0));
    assert_eq!(ByName::OWNER_INDEX, Some(1));
    assert_eq!(ByName::FIELD_NAMES, ["visits", "uid"]);
    let data = ByName { visits: 1, user: Some("ann".to_owned()) };
    assert_eq!(key_of(&data), Some("ann".to_owned()));
    assert_eq!(data.owner_key(), Some("ann".to_owned()));
    let signed = Signed { user: Some(-3) };
    assert_eq!(key_of(&signed), Some("-3".to_owned()));
    let generic = Generic::<u8> { extra: 0, user: None };
    assert_eq!(key_of(&generic), None);
    let _ = generic.extra;
    assert_eq!(<ByNumber as Session>::OWNER_INDEX, Some(0));
}
