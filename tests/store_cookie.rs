//! The store conformance suite on `EncryptedCookieStore` and `SimpleCookieStore`.

mod encrypted {
    use session_runtime::SessionLayer;
    use session_runtime::store::{EncryptedCookieStore, Key, StoreKind};
    use session_tests::suite::Harness;

    fn harness() -> Harness {
        Harness::new(StoreKind::Cookie, true, |config| {
            SessionLayer::new(EncryptedCookieStore::new(
                Key::from_bytes(1, &[42; 32]).unwrap(),
            ))
            .with_config(config)
        })
    }

    session_tests::store_suite!(harness());
}

mod simple {
    use session_runtime::SessionLayer;
    use session_runtime::store::{SimpleCookieStore, StoreKind};
    use session_tests::suite::Harness;

    fn harness() -> Harness {
        Harness::new(StoreKind::Cookie, false, |config| {
            SessionLayer::new(SimpleCookieStore::new()).with_config(config)
        })
    }

    session_tests::store_suite!(harness());
}
