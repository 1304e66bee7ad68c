//! F1: arbitrary `Cookie` header values through the real `SessionLayer` and a handler, for the
//! encrypted store (fixed keys), the memory store and the plain store.
//!
//! Input: `store selector | handler action | Cookie header values separated by '\n'`. For the
//! memory store, `@ID@`, `@PID@` and `@FID@` are replaced by the ids of live `Cart`, `Prefs` and
//! `Tagged` sessions created for this input. Asserted: no panic, never a 5xx, and every
//! `Set-Cookie` the layer sends parses.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use session_fuzz::{ACTIONS, NOW, config_at, encrypted_store, send, set_cookies};
use session_runtime::SessionLayer;
use session_runtime::store::{MemoryStore, SimpleCookieStore};

fn config(rolling: bool) -> session_runtime::SessionConfig {
    config_at(NOW).with_rolling(rolling.then_some(Duration::from_secs(60)))
}

fn replace_all(input: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut rest = input;
    while let Some(at) = rest.windows(from.len()).position(|w| w == from) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to);
        rest = &rest[at + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// Creates sessions with `action` on an empty request and returns their ids (cookie values).
fn create(layer: &SessionLayer, action: u8) -> Vec<(String, String)> {
    let response = send(layer, &[], action);
    assert_eq!(response.status(), 200);
    set_cookies(&response)
}

fn id_of<'a>(cookies: &'a [(String, String)], name: &str) -> &'a str {
    &cookies
        .iter()
        .find(|(n, _)| n == name)
        .expect("a new session sets its cookie")
        .1
}

fn check(layer: &SessionLayer, headers: &[u8], action: u8) {
    let cookies: Vec<&[u8]> = headers.split(|b| *b == b'\n').collect();
    let response = send(layer, &cookies, action);
    assert!(
        !response.status().is_server_error(),
        "status {} for action {}",
        response.status(),
        action % ACTIONS
    );
    set_cookies(&response);
}

fuzz_target!(|data: &[u8]| {
    static ENCRYPTED: OnceLock<[SessionLayer; 2]> = OnceLock::new();
    static PLAIN: OnceLock<SessionLayer> = OnceLock::new();
    let [selector, action, headers @ ..] = data else {
        return;
    };
    let rolling = selector & 0x10 != 0;
    match selector % 3 {
        0 => {
            let layers = ENCRYPTED.get_or_init(|| {
                [false, true].map(|r| SessionLayer::new(encrypted_store()).with_config(config(r)))
            });
            check(&layers[usize::from(rolling)], headers, *action);
        }
        1 => {
            let layer = SessionLayer::new(MemoryStore::new()).with_config(config(rolling));
            let cart = create(&layer, 2);
            let others = create(&layer, 6);
            let headers = replace_all(headers, b"@ID@", id_of(&cart, "__Host-s").as_bytes());
            let headers = replace_all(&headers, b"@PID@", id_of(&others, "m").as_bytes());
            let headers = replace_all(&headers, b"@FID@", id_of(&others, "f").as_bytes());
            check(&layer, &headers, *action);
        }
        _ => {
            // The plain store reads anything a client forges, including records whose canonical
            // re-encoding is over the size limit; saving those fails with 500 by design, so
            // only the actions that never write the data run here.
            let layer = PLAIN.get_or_init(|| {
                SessionLayer::new(SimpleCookieStore::new()).with_config(config(false))
            });
            let action = [0, 1, 3, 7][usize::from(action % 4)];
            check(layer, headers, action);
        }
    }
});
