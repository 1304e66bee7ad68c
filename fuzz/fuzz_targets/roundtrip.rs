//! F3 (structure-aware): arbitrary session data is saved through the real layer with the
//! encrypted store, then loaded back from the `Set-Cookie` value.
//!
//! Asserted: when `name + value` fits the configured limit the cookie's value has exactly the
//! sealed length, `⌈4·(N + 30) / 3⌉` for a plaintext of `N` bytes (unpadded base64url of the
//! version, key id, 12-byte nonce, plaintext and 16-byte tag; the format is in SECURITY.md),
//! where the plaintext is the compact framing of format version 2 (a head byte, LEB128 varints
//! for `created`, `updated − created` and a `max_age`, then each field's name and value with
//! varint lengths; `EncryptedCookieStore`'s docs), computed here from that description; and
//! loads back equal to the input; when it does not fit, the response is a 500 without
//! `Set-Cookie`.
#![no_main]

use std::convert::Infallible;
use std::time::Duration;

use arbitrary::Arbitrary;
use http::header::COOKIE;
use http::{HeaderValue, Request, Response, StatusCode};
use libfuzzer_sys::fuzz_target;
use session_fuzz::{FramedData, JsonData, MsgpackData, NOW, block_on, config_at, encrypted_store};
use session_runtime::session::Metadata;
use session_runtime::{Session, SessionLayer, TypedSession};
use tower::{Layer as _, ServiceExt as _};

#[derive(Arbitrary, Debug)]
struct Input {
    codec: u8,
    limit: u16,
    max_age: Option<u32>,
    json: JsonData,
    msgpack: MsgpackData,
    framed: FramedData,
}

/// What the handler writes (request extension) or read (response extension).
#[derive(Clone)]
struct Write<T>(T, Option<u32>);
#[derive(Clone)]
struct Loaded<T>(T, bool);

async fn handle<T: Session + Clone>(request: Request<()>) -> Result<Response<()>, Infallible> {
    let (parts, ()) = request.into_parts();
    let mut response = Response::new(());
    match TypedSession::<T>::from_parts(&parts).await {
        Ok(mut session) => match parts.extensions.get::<Write<T>>() {
            Some(Write(data, max_age)) => {
                session.replace(data.clone());
                if let Some(max_age) = max_age {
                    session.set_max_age(Duration::from_secs(u64::from(*max_age)));
                }
            }
            None => {
                let loaded = Loaded(session.data().clone(), session.is_new());
                response.extensions_mut().insert(loaded);
            }
        },
        Err(rejection) => *response.status_mut() = rejection.status(),
    }
    Ok(response)
}

/// How many bytes `value` takes as an LEB128 varint: one per started 7 bits, at least one.
fn varint_len(mut value: u64) -> usize {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

fn run<T: Session + Clone + PartialEq + std::fmt::Debug>(
    data: T,
    limit: usize,
    max_age: Option<u32>,
) {
    let layer = SessionLayer::new(encrypted_store())
        .with_config(config_at(NOW).with_max_cookie_size(limit));
    let send = |request: Request<()>| {
        block_on(layer.layer(tower::service_fn(handle::<T>)).oneshot(request)).unwrap()
    };

    // The envelope the store will seal.
    let fields: Vec<(&'static str, Vec<u8>)> = T::FIELD_NAMES
        .iter()
        .enumerate()
        .map(|(index, name)| (*name, data.encode_field(index).unwrap()))
        .collect();
    let metadata = Metadata {
        created: NOW,
        updated: NOW,
        max_age: max_age.map(|secs| u64::from(secs).max(1)),
    };
    let plaintext_len = 1
        + varint_len(metadata.created)
        + varint_len(metadata.updated.wrapping_sub(metadata.created))
        + metadata.max_age.map_or(0, varint_len)
        + fields
            .iter()
            .map(|(name, value)| {
                varint_len(name.len() as u64)
                    + name.len()
                    + varint_len(value.len() as u64)
                    + value.len()
            })
            .sum::<usize>();
    let expected_len = (4 * (plaintext_len + 30)).div_ceil(3);
    let fits = T::COOKIE_NAME.len() + expected_len <= limit;

    let mut request = Request::new(());
    request
        .extensions_mut()
        .insert(Write(data.clone(), max_age));
    let saved = send(request);
    let cookies = session_fuzz::set_cookies(&saved);
    if !fits {
        assert_eq!(saved.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(cookies.is_empty(), "an oversized cookie was sent");
        return;
    }
    assert_eq!(saved.status(), StatusCode::OK);
    let [(name, value)] = &cookies[..] else {
        panic!("expected one Set-Cookie, got {cookies:?}");
    };
    assert_eq!(name, T::COOKIE_NAME);
    assert_eq!(
        value.len(),
        expected_len,
        "sealed length differs from the layout EncryptedCookieStore documents"
    );

    let mut request = Request::new(());
    let header = HeaderValue::try_from(format!("{name}={value}")).unwrap();
    request.headers_mut().insert(COOKIE, header);
    let loaded = send(request);
    assert_eq!(loaded.status(), StatusCode::OK);
    let Loaded(back, is_new) = loaded.extensions().get::<Loaded<T>>().unwrap().clone();
    assert!(!is_new, "the sealed cookie did not open");
    assert_eq!(back, data);
    assert!(
        session_fuzz::set_cookies(&loaded).is_empty(),
        "a read re-sealed"
    );
}

fuzz_target!(|input: Input| {
    let limit = 64 + usize::from(input.limit) % 8192;
    match input.codec % 3 {
        0 => run(input.json, limit, input.max_age),
        1 => run(input.msgpack, limit, input.max_age),
        _ => run(input.framed, limit, input.max_age),
    }
});
