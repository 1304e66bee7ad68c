//! F2: arbitrary strings opened as encrypted cookies (fixed keys, cookie name `__Host-s`).
//!
//! The only values that may open are the ones `gen_corpus` sealed into `seeds/sealed.txt`
//! (`value<TAB>hex(plaintext)` per line); any other value that opens is a forgery.
#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use session_fuzz::encrypted_store;
use session_runtime::__internals::open;
use session_runtime::store::EncryptedCookieStore;

const NAME: &str = "__Host-s";

fn sealed() -> &'static HashMap<&'static str, Vec<u8>> {
    static SEALED: OnceLock<HashMap<&'static str, Vec<u8>>> = OnceLock::new();
    SEALED.get_or_init(|| {
        include_str!("../seeds/sealed.txt")
            .lines()
            .map(|line| {
                let (value, hex) = line.split_once('\t').expect("value<TAB>hex");
                let plaintext = (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                    .collect();
                (value, plaintext)
            })
            .collect()
    })
}

fn store() -> &'static EncryptedCookieStore {
    static STORE: OnceLock<EncryptedCookieStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let store = encrypted_store();
        // Stale seeds (a changed wire format or key) would silently weaken this target.
        for (value, plaintext) in sealed() {
            let opened = open(&store, NAME, value);
            assert_eq!(
                opened.as_ref(),
                Some(plaintext),
                "seed {value} no longer opens"
            );
        }
        store
    })
}

fuzz_target!(|data: &[u8]| {
    let store = store();
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(plaintext) = open(store, NAME, value) {
        let expected = sealed().get(value);
        assert!(
            expected.is_some(),
            "a value that was never sealed opened: {value:?}"
        );
        assert_eq!(expected, Some(&plaintext), "opened to another plaintext");
    }
    // The same value never opens under another cookie name (the name is in the AAD).
    assert!(open(store, "__Host-t", value).is_none());
});
