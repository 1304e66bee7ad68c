//! The store conformance suite on `EncryptedCookieStore` and `SimpleCookieStore`.

mod common;

mod encrypted {
    use super::common;
    use common::store_suite::Harness;
    use session_runtime::SessionLayer;
    use session_runtime::store::{EncryptedCookieStore, Key, StoreKind};

    fn harness() -> Harness {
        Harness::new(StoreKind::Cookie, true, |config| {
            SessionLayer::new(EncryptedCookieStore::new(
                Key::from_bytes(1, &[42; 32]).unwrap(),
            ))
            .with_config(config)
        })
    }

    crate::store_suite!(harness());
}

mod simple {
    use super::common;
    use common::store_suite::Harness;
    use session_runtime::SessionLayer;
    use session_runtime::store::{SimpleCookieStore, StoreKind};

    fn harness() -> Harness {
        Harness::new(StoreKind::Cookie, false, |config| {
            SessionLayer::new(SimpleCookieStore::new()).with_config(config)
        })
    }

    crate::store_suite!(harness());
}
