//! F5: Redis record decoding. Arbitrary bytes as a RESP reply to `HGETALL` (mode 0) or an
//! arbitrary list of hash fields (mode 1) → the store's record parsing → the per-field decode of
//! three session types (JSON, `MessagePack`, framing) → the expiry check. Run with
//! `-malloc_limit_mb=64` to catch length-prefix allocation bombs.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use redis::FromRedisValue;
use session_fuzz::{Cart, NOW, Prefs, Tagged};
use session_runtime::__internals::redis_record;
use session_runtime::Session;
use session_runtime::session::Record;

fn decode<T: Session>(record: &Record) {
    let mut data = T::new_default();
    for (name, bytes) in &record.fields {
        std::hint::black_box(data.decode_field(name, bytes));
    }
    let idle = record.metadata.max_age.or(T::MAX_AGE).unwrap_or(86_400);
    std::hint::black_box(record.metadata.expires_at(idle, T::ABSOLUTE_MAX_AGE) <= NOW);
}

fuzz_target!(|data: &[u8]| {
    let [mode, bytes @ ..] = data else {
        return;
    };
    let hash: Vec<(Vec<u8>, Vec<u8>)> = if mode % 2 == 0 {
        let Ok(value) = redis::parse_redis_value(bytes) else {
            return;
        };
        let Ok(hash) = Vec::<(Vec<u8>, Vec<u8>)>::from_redis_value(value) else {
            return;
        };
        hash
    } else {
        let Ok(hash) = Arbitrary::arbitrary_take_rest(Unstructured::new(bytes)) else {
            return;
        };
        hash
    };
    if let Some(record) = redis_record(hash) {
        decode::<Cart>(&record);
        decode::<Prefs>(&record);
        decode::<Tagged>(&record);
    }
});
