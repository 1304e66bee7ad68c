//! The store conformance suite on `EncryptedCookieStore` and `SimpleCookieStore`, and the counter
//! example on `SimpleCookieStore`.

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

/// The counter example on `--store simple` keeps, byte for byte, what its session cookie holds
/// beyond what `Counter` declares or can decode: a field it does not declare (`theme`), one whose
/// stored bytes are not JSON as `serde_json` writes it (`prefs`: spaces, key order, `1.50`, a
/// `\u` escape), and a value of a declared field that does not decode (`a` is a `u64`). `GET /`
/// changes `visits` only, and fields `Counter` declares that the cookie lacks (`b`, `user`) stay
/// absent.
mod counter_example {
    use std::sync::Arc;

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use session_examples::{CookieName, StoreChoice};
    use session_runtime::codec::{Codec as _, JsonCodec};
    use session_runtime::config::Clock as _;
    use session_runtime::session::{Metadata, RecordRef};
    use session_tests::server::{
        TestClock, TestServer, cookie_value, raw_client, send, test_config,
    };

    const THEME: &[u8] = br#""dark""#;
    const PREFS: &[u8] = br#"{"z": 1, "a": [1.50, "\u00e9"]}"#;
    const A: &[u8] = br#""notanumber""#;

    /// The counter example on `--store simple`, with a clock the test can read.
    async fn counter_on_simple_store() -> (Arc<TestClock>, TestServer) {
        let clock = TestClock::new();
        let layer = session_examples::layer(StoreChoice::Simple, None, test_config(&clock))
            .await
            .unwrap();
        let app = session_examples::app(CookieName::Counter, layer).unwrap();
        (clock, TestServer::start(app).await)
    }

    #[tokio::test]
    async fn simple_store_keeps_undeclared_and_undecodable_fields() {
        let (clock, server) = counter_on_simple_store().await;

        let now = clock.now_millis();
        let fields = [
            ("visits", JsonCodec::encode(&5_u64).unwrap()),
            ("theme", THEME.to_vec()),
            ("a", A.to_vec()),
            ("prefs", PREFS.to_vec()),
        ];
        let envelope =
            JsonCodec::encode_record(RecordRef::new(&Metadata::new(now), &fields)).unwrap();
        let cookie = format!("counter={}", URL_SAFE_NO_PAD.encode(envelope));

        let (status, headers, body) =
            send(raw_client().get(server.url("/")).header("cookie", cookie)).await;
        assert_eq!((status, body.as_str()), (200, "6"));
        let value = cookie_value(&headers, "counter").expect("a write sets the cookie");
        let record = JsonCodec::decode_record(&URL_SAFE_NO_PAD.decode(value).unwrap()).unwrap();
        let stored = |name: &str| {
            record
                .fields
                .iter()
                .find(|(stored, _)| stored == name)
                .map(|(_, bytes)| String::from_utf8_lossy(bytes).into_owned())
        };
        let text = |bytes: &[u8]| Some(String::from_utf8_lossy(bytes).into_owned());
        assert_eq!(stored("visits").as_deref(), Some("6"));
        assert_eq!(
            stored("theme"),
            text(THEME),
            "a field Counter does not declare"
        );
        assert_eq!(
            stored("prefs"),
            text(PREFS),
            "kept byte for byte, not re-serialized"
        );
        assert_eq!(stored("a"), text(A), "a value that does not decode as u64");
        assert_eq!(stored("b"), None, "declared, absent, not set: stays absent");
        assert_eq!(
            stored("user"),
            None,
            "declared, absent, not set: stays absent"
        );
        assert_eq!(record.metadata.created, now);
    }

    /// Kept fields count toward the cookie's size limit: a cookie that only just fits, whose
    /// write would grow past 4096 bytes (name and value) by one more digit of `visits`, is
    /// refused like any oversized save (500, no `Set-Cookie`), so the client keeps its cookie and
    /// nothing is dropped to make it fit.
    #[tokio::test]
    async fn kept_fields_count_toward_the_cookie_limit() {
        let (clock, server) = counter_on_simple_store().await;
        let now = clock.now_millis();
        let cookie_of = |visits: u64, pad: usize| {
            let theme = format!("\"{}\"", "x".repeat(pad)).into_bytes();
            let fields = [
                ("theme", theme),
                ("visits", JsonCodec::encode(&visits).unwrap()),
            ];
            let envelope =
                JsonCodec::encode_record(RecordRef::new(&Metadata::new(now), &fields)).unwrap();
            format!("counter={}", URL_SAFE_NO_PAD.encode(envelope))
        };
        // The limit counts the name and the value, not the `=` between them.
        let limit = 4096 + "=".len();
        // The largest padding whose cookie with `visits` 9 fits; with 10 it no longer does.
        let pad = (2000..4000)
            .rev()
            .find(|pad| cookie_of(9, *pad).len() <= limit)
            .unwrap();
        assert!(cookie_of(10, pad).len() > limit, "the write must not fit");

        let cookie = cookie_of(9, pad);
        let (status, headers, _) =
            send(raw_client().get(server.url("/")).header("cookie", &cookie)).await;
        assert_eq!(status, 500);
        assert_eq!(cookie_value(&headers, "counter"), None, "no Set-Cookie");
        let (status, _, body) = send(
            raw_client()
                .get(server.url("/read"))
                .header("cookie", &cookie),
        )
        .await;
        assert_eq!(
            (status, body.as_str()),
            (200, "9"),
            "the old cookie still works"
        );
    }
}

/// A field renamed with `alias` reads its current name when a cookie holds both names, in either
/// order (an aiohttp envelope comes back sorted by name, so the alias can come last).
mod aliases {
    use axum::Router;
    use axum::routing::get;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use session_runtime::codec::{Codec as _, JsonCodec};
    use session_runtime::config::Clock as _;
    use session_runtime::session::{Metadata, RecordRef};
    use session_runtime::store::SimpleCookieStore;
    use session_runtime::{Session, SessionLayer, TypedSession};
    use session_tests::server::{TestClock, TestServer, raw_client, send, test_config};

    #[derive(Session)]
    #[session(cookie_name = "address")]
    struct Address {
        #[session(alias = "zip")]
        postcode: String,
    }

    async fn read(session: TypedSession<Address>) -> String {
        session.postcode().clone()
    }

    #[tokio::test]
    async fn the_current_name_wins_over_an_alias_in_any_order() {
        let clock = TestClock::new();
        let layer = SessionLayer::new(SimpleCookieStore::new()).with_config(test_config(&clock));
        let server = TestServer::start(Router::new().route("/", get(read)).layer(layer)).await;
        let current = ("postcode", JsonCodec::encode("NEW").unwrap());
        let alias = ("zip", JsonCodec::encode("OLD").unwrap());
        for fields in [[current.clone(), alias.clone()], [alias, current]] {
            let metadata = Metadata::new(clock.now_millis());
            let envelope = JsonCodec::encode_record(RecordRef::new(&metadata, &fields)).unwrap();
            let cookie = format!("address={}", URL_SAFE_NO_PAD.encode(envelope));
            let (status, _, body) =
                send(raw_client().get(server.url("/")).header("cookie", cookie)).await;
            assert_eq!(
                (status, body.as_str()),
                (200, "NEW"),
                "{:?}",
                fields.map(|f| f.0)
            );
        }
    }
}
