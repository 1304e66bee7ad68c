//! The code `#[derive(Session)]` generates stays quiet under strict lint settings, in a crate
//! that documents everything and denies pedantic lints (thiserror's `test_lints.rs`).

#![deny(
    warnings,
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    unused_qualifications,
    unused_results,
    trivial_casts,
    trivial_numeric_casts,
    single_use_lifetimes,
    rust_2018_idioms,
    clippy::pedantic,
    clippy::nursery,
    clippy::allow_attributes,
    clippy::allow_attributes_without_reason
)]

/// A documented module whose public session type is part of the crate's API.
pub mod strict {
    use serde::{Deserialize, Serialize};
    use session_runtime::Session;

    /// An item in the cart.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Item {
        /// The stock-keeping unit.
        pub sku: String,
    }

    /// Returns the default theme.
    #[must_use]
    pub fn default_theme() -> String {
        "light".to_owned()
    }

    /// The shop's session.
    #[derive(Debug, Session)]
    #[session(cookie_name = "shop", codec = "msgpack", max_age = 3600)]
    pub struct Shop {
        /// The signed-in user.
        pub user_id: Option<u64>,
        /// The cart.
        pub cart: Vec<Item>,
        /// The theme.
        #[session(default = "default_theme", alias = "colour")]
        pub theme: String,
        /// Scratch space, not stored.
        #[session(skip)]
        pub scratch: u8,
        private: bool,
    }

    /// A generic session.
    #[derive(Debug, Session)]
    pub struct Generic<T> {
        /// The value.
        pub value: T,
    }

    impl Shop {
        /// Returns the private flag.
        #[must_use]
        pub const fn private(&self) -> bool {
            self.private
        }
    }
}

#[test]
fn lint_clean() {
    use session_runtime::Session;
    assert_eq!(strict::Shop::FIELD_NAMES.len(), 4);
    assert!(!strict::Shop::new_default().private());
    assert_eq!(<strict::Generic<u8> as Session>::FIELD_NAMES, ["value"]);
}
