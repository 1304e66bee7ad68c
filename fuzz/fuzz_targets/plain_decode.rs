//! F4: arbitrary bytes into the plain cookie store's decoder and the envelope decoders (JSON,
//! `MessagePack`, the binary framing).
//!
//! Input: `selector | bytes`. Asserted: no panic; the plain store never fails (a bad cookie is
//! just no session); anything that decodes re-encodes to an envelope that decodes to the same
//! record (for the framing, to the same bytes); decoding with a session type's names
//! ([`NAMES`], as a load does) gives the same record as without.
#![no_main]

use std::collections::HashSet;
use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use session_fuzz::{Framed, block_on};
use session_runtime::codec::{Codec, JsonCodec, MsgpackCodec};
use session_runtime::session::{Record, RecordRef};
use session_runtime::store::{SessionStore as _, SimpleCookieStore};

/// Field names of a `RecordRef` are `&'static str` (they come from the derive); intern the
/// decoded ones, a bounded number of them.
fn intern(name: &str) -> Option<&'static str> {
    static NAMES: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut names = NAMES.lock().unwrap();
    let names = names.get_or_insert_with(HashSet::new);
    if let Some(interned) = names.get(name) {
        return Some(interned);
    }
    if names.len() >= 50_000 || name.len() > 64 {
        return None;
    }
    let interned: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(interned);
    Some(interned)
}

fn reencode<C: Codec>(record: &Record, bytes: Option<&[u8]>) {
    let Some(fields) = record
        .fields
        .iter()
        .map(|(name, value)| Some((intern(name)?, value.to_vec())))
        .collect::<Option<Vec<_>>>()
    else {
        return;
    };
    let encoded = C::encode_record(RecordRef {
        metadata: &record.metadata,
        encoded: &fields,
        kept: &[],
    })
    .expect("a decoded record encodes");
    if let Some(bytes) = bytes {
        assert_eq!(encoded, bytes, "the framing is not canonical");
    }
    let again = C::decode_record(&encoded).expect("a re-encoded record decodes");
    assert_eq!(again.metadata, record.metadata);
    assert_eq!(again.fields, record.fields);
}

/// The names a load passes, as a session type with these fields would.
const NAMES: &[&str] = &["a", "v", "visits", "user"];

fn decode<C: Codec>(bytes: &[u8], canonical: bool) {
    let codec = session_runtime::__internals::record_codec::<C>();
    match (C::decode_record(bytes), codec.decode_named(bytes, NAMES)) {
        (Ok(record), Ok(named)) => {
            assert_eq!(named.metadata, record.metadata);
            assert_eq!(named.fields, record.fields);
            reencode::<C>(&record, canonical.then_some(bytes));
        }
        (Err(_), Err(_)) => {}
        (plain, named) => panic!(
            "decoding with names disagrees: {:?} against {:?}",
            plain.map(|r| r.fields),
            named.map(|r| r.fields)
        ),
    }
}

fn plain<C: Codec>(bytes: &[u8]) {
    let Ok(value) = std::str::from_utf8(bytes) else {
        return;
    };
    let store = SimpleCookieStore::new();
    let codec = session_runtime::__internals::record_codec::<C>();
    let loaded = block_on(store.load(session_runtime::__internals::load(
        "p", value, 0, codec, NAMES,
    )));
    match loaded {
        Ok(Some(record)) => reencode::<C>(&record, None),
        Ok(None) => {}
        Err(error) => panic!("the plain store failed: {error}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let [selector, bytes @ ..] = data else {
        return;
    };
    match selector % 6 {
        0 => plain::<JsonCodec>(bytes),
        1 => plain::<MsgpackCodec>(bytes),
        2 => plain::<Framed>(bytes),
        3 => decode::<JsonCodec>(bytes, false),
        4 => decode::<MsgpackCodec>(bytes, false),
        _ => decode::<Framed>(bytes, true),
    }
});
