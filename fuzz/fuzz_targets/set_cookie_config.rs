//! F6: arbitrary cookie name, path, domain and options. Either the configuration is refused
//! (`SessionConfig::validate_for`, which the layer runs before any session is loaded), or the
//! `Set-Cookie` value the layer renders is a valid header that re-parses with the `cookie` crate
//! to the same name, value and attributes, with no `;`, CR, LF or NUL injected.
//!
//! Input: `flags | max_age (u64 BE) | (len u8 | bytes) for name, path, domain, value`. Flags:
//! bit 0 `Secure`, 1 `HttpOnly`, 2 `Partitioned`, 3 has a domain, 4 removal cookie, 5-6
//! `SameSite`, 7 has a path.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderValue;
use libfuzzer_sys::fuzz_target;
use session_runtime::__internals::render_set_cookie;
use session_runtime::SessionConfig;
use session_runtime::config::SameSite;

fn take<'a>(input: &mut &'a [u8]) -> &'a [u8] {
    let Some((len, rest)) = input.split_first() else {
        return &[];
    };
    let (head, tail) = rest.split_at(usize::from(*len).min(rest.len()));
    *input = tail;
    head
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Some((max_age, mut rest)) = rest.split_first_chunk::<8>() else {
        return;
    };
    // The layer's Max-Age is at most u64::MAX milliseconds in seconds.
    let max_age = u64::from_be_bytes(*max_age) / 1000;
    let name = String::from_utf8_lossy(take(&mut rest)).into_owned();
    let path = String::from_utf8_lossy(take(&mut rest)).into_owned();
    let domain = String::from_utf8_lossy(take(&mut rest)).into_owned();
    let value = URL_SAFE_NO_PAD.encode(take(&mut rest));
    let bit = |n: u8| flags & (1 << n) != 0;
    let (secure, http_only, partitioned, has_domain, remove, has_path) =
        (bit(0), bit(1), bit(2), bit(3), bit(4), bit(7));
    let same_site = match (flags >> 5) & 3 {
        0 => SameSite::Strict,
        1 => SameSite::Lax,
        _ => SameSite::None,
    };

    let mut config = SessionConfig::default()
        .with_secure(secure)
        .with_http_only(http_only)
        .with_partitioned(partitioned)
        .with_same_site(same_site);
    let path = if has_path { path } else { "/".to_owned() };
    config = config.with_path(path.clone());
    if has_domain {
        config = config.with_domain(domain.clone());
    }
    if config.validate_for(&name).is_err() {
        return;
    }

    let set = render_set_cookie(&name, (!remove).then_some((&value, max_age)), &config);
    assert!(
        !set.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)),
        "control character in {set:?}"
    );
    assert!(
        HeaderValue::try_from(set.as_str()).is_ok(),
        "the layer would drop {set:?}"
    );
    let expected_attributes = 2
        + usize::from(has_domain)
        + usize::from(remove)
        + usize::from(http_only)
        + usize::from(secure)
        + 1
        + usize::from(partitioned);
    assert_eq!(set.matches(';').count(), expected_attributes, "{set:?}");

    let cookie = cookie::Cookie::parse(set.as_str()).expect("Set-Cookie parses");
    assert_eq!(cookie.name(), name, "{set:?}");
    assert_eq!(cookie.value(), if remove { "" } else { value.as_str() });
    assert_eq!(cookie.path(), Some(path.as_str()), "{set:?}");
    let domain = has_domain.then(|| domain.strip_prefix('.').unwrap_or(&domain));
    assert_eq!(cookie.domain(), domain, "{set:?}");
    let max_age = if remove {
        0
    } else {
        i64::try_from(max_age).unwrap()
    };
    assert_eq!(cookie.max_age().map(|d| d.whole_seconds()), Some(max_age));
    assert_eq!(cookie.expires().is_some(), remove);
    assert_eq!(cookie.secure(), secure.then_some(true));
    assert_eq!(cookie.http_only(), http_only.then_some(true));
    assert_eq!(cookie.same_site(), Some(same_site));
    assert_eq!(cookie.partitioned(), partitioned.then_some(true));
});
