//! `#[session(purge_undeclared)]` sets `Session::KEEP_UNDECLARED` to `false`; without it the
//! trait's default, `true`, applies.

use session_runtime::Session;

#[derive(Session)]
#[session(purge_undeclared)]
pub struct Purged {
    user_id: Option<u64>,
}

#[derive(Session)]
pub struct Kept {
    user_id: Option<u64>,
}

// With the other container attributes, in another attribute list, and on a generic struct.
#[derive(Session)]
#[session(cookie_name = "prefs", codec = "msgpack", max_age = 60)]
#[session(crate = "::session_runtime", purge_undeclared)]
pub struct Prefs<T> {
    theme: T,
}

// The generated constant names its type by an absolute path.
mod shadowed {
    #![allow(non_camel_case_types, dead_code)]

    struct bool;

    #[derive(::session_runtime::Session)]
    #[session(purge_undeclared)]
    pub struct Shadowed {
        flag: ::core::primitive::bool,
    }
}

fn main() {
    assert!(!Purged::KEEP_UNDECLARED);
    assert!(Kept::KEEP_UNDECLARED);
    assert!(!<Prefs<String> as Session>::KEEP_UNDECLARED);
    assert_eq!(Prefs::<String>::COOKIE_NAME, "prefs");
    assert!(!shadowed::Shadowed::KEEP_UNDECLARED);
}
