//! F5: Redis record decoding. Arbitrary bytes as a RESP reply to the load's `HMGET` (mode 0) or
//! an arbitrary list of values (mode 1) → the store's reply parsing with each of three session
//! types' names (JSON, `MessagePack`, framing) → the per-field decode → the expiry check. Run with
//! `-malloc_limit_mb=64` to catch length-prefix allocation bombs.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use redis::Value;
use session_fuzz::{Cart, NOW, Prefs, Tagged};
use session_runtime::__internals::redis_record;
use session_runtime::Session;

fn decode<T: Session>(reply: &Value) {
    let Some(record) = redis_record(reply.clone(), T::LOAD_NAMES) else {
        return;
    };
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
    let reply = if mode % 2 == 0 {
        let Ok(value) = redis::parse_redis_value(bytes) else {
            return;
        };
        value
    } else {
        let Ok(values) =
            Vec::<Option<Vec<u8>>>::arbitrary_take_rest(Unstructured::new(bytes))
        else {
            return;
        };
        Value::Array(
            values
                .into_iter()
                .map(|value| value.map_or(Value::Nil, Value::BulkString))
                .collect(),
        )
    };
    decode::<Cart>(&reply);
    decode::<Prefs>(&reply);
    decode::<Tagged>(&reply);
});
