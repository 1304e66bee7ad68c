//! Criterion micro-benchmarks: `cargo bench -p session-bench --bench micro`.
//!
//! - `codec/*`: the derive-generated field encoding plus the envelope (encode), and the envelope
//!   plus field decoding (decode), with JSON and `MessagePack`, for a 3-field and a ~1 KB session;
//! - `cookie/*`: sealing and opening an encrypted cookie of 200 B and 2 KB, through the store
//!   (envelope + AES-256-GCM-SIV + base64) and the cipher alone;
//! - `header/*`: finding the session cookie in a `Cookie` header;
//! - `write/*`: a field-level write against a whole-record write (encoding, the memory store, and
//!   Redis when one answers at `REDIS_URL` or 127.0.0.1:6379).
//!
//! - `request/*`: one request through the example's routes and the session layer, in process (no
//!   network), against the same route without a session: the layer's own CPU cost.
//!
//! Before the benchmarks it prints the bytes each codec stores per session.
#![allow(
    clippy::print_stdout,
    reason = "prints the stored sizes before the benchmarks"
)]
#![allow(
    clippy::missing_panics_doc,
    reason = "a benchmark panics on setup failure"
)]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use session_bench::{LargeJson, LargeMsgpack, SmallJson, SmallMsgpack, encode_fields};
use session_runtime::__internals;

#[path = "../common/inprocess.rs"]
mod inprocess;
use inprocess::{send, served};
use session_runtime::Session;
use session_runtime::codec::{Codec, JsonCodec};
use session_runtime::session::Metadata;
use session_runtime::store::{
    EncryptedCookieStore, Key, MemoryStore, RedisStore, SaveOp, SaveOutcome, SessionStore,
};

/// Runs a future that completes without waiting (the cookie and memory stores).
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the store was expected to answer at once"),
    }
}

const NOW: u64 = 1_764_000_000_000;

fn metadata() -> Metadata {
    Metadata::new(NOW)
}

fn encode_session<T: Session>(data: &T) -> Vec<u8> {
    let fields = encode_fields(data).expect("encodes");
    <T::Codec as Codec>::encode_record(session_runtime::session::RecordRef {
        metadata: &metadata(),
        encoded: &fields,
        kept: &[],
    })
    .expect("encodes")
}

fn decode_session<T: Session>(bytes: &[u8]) -> T {
    let record = <T::Codec as Codec>::decode_record(bytes).expect("decodes");
    let mut data = T::new_default();
    for (name, value) in &record.fields {
        let _ = data.decode_field(name, value);
    }
    data
}

fn codec_case<T: Session>(c: &mut Criterion, name: &str, data: &T) {
    let bytes = encode_session(data);
    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function(BenchmarkId::new("encode", name), |b| {
        b.iter(|| encode_session(black_box(data)));
    });
    group.bench_function(BenchmarkId::new("decode", name), |b| {
        b.iter(|| decode_session::<T>(black_box(&bytes)));
    });
    group.finish();
}

fn sizes() {
    fn row<T: Session>(name: &str, data: &T, store: &EncryptedCookieStore) {
        let fields = encode_fields(data).expect("encodes");
        let field_bytes: usize = fields.iter().map(|(n, v)| n.len() + v.len()).sum();
        let envelope = encode_session(data);
        let sealed = sealed_len::<T>(store, &fields);
        println!(
            "| {name} | {} | {field_bytes} | {} | {sealed} |",
            fields.iter().map(|(_, v)| v.len()).sum::<usize>(),
            envelope.len()
        );
    }
    fn sealed_len<T: Session>(
        store: &EncryptedCookieStore,
        fields: &[(&'static str, Vec<u8>)],
    ) -> usize {
        let meta = metadata();
        let save = __internals::save(
            T::COOKIE_NAME,
            SaveOp::Seal,
            &meta,
            fields,
            NOW + 86_400_000,
            __internals::record_codec::<T::Codec>(),
        );
        match ready(store.save(save)).expect("seals") {
            SaveOutcome::Saved(value) => value.len(),
            other => panic!("unexpected {other:?}"),
        }
    }
    let store = store();
    println!(
        "Bytes stored per session (field values; names + values as Redis hash fields, without metadata; cookie envelope; sealed cookie value):"
    );
    println!(
        "| session | field values | Redis fields (names + values) | envelope (cookie plaintext) | encrypted cookie value |"
    );
    println!("|---|---:|---:|---:|---:|");
    row("small, JSON", &SmallJson::sample(), &store);
    row("small, MessagePack", &SmallMsgpack::sample(), &store);
    row("~1 KB, JSON", &LargeJson::sample(), &store);
    row("~1 KB, MessagePack", &LargeMsgpack::sample(), &store);
    println!();
}

fn codecs(c: &mut Criterion) {
    sizes();
    codec_case(c, "small/json", &SmallJson::sample());
    codec_case(c, "small/msgpack", &SmallMsgpack::sample());
    codec_case(c, "large/json", &LargeJson::sample());
    codec_case(c, "large/msgpack", &LargeMsgpack::sample());
}

fn store() -> EncryptedCookieStore {
    EncryptedCookieStore::new(Key::from_bytes(1, &[42; 32]).expect("32 bytes"))
}

/// Fields whose JSON envelope is exactly `size` bytes.
fn fields_of_envelope(size: usize) -> Vec<(&'static str, Vec<u8>)> {
    let meta = metadata();
    let make = |n: usize| {
        vec![
            ("user_id", b"4211337".to_vec()),
            ("payload", format!("\"{}\"", "x".repeat(n)).into_bytes()),
        ]
    };
    let base = JsonCodec::encode_record(session_runtime::session::RecordRef {
        metadata: &meta,
        encoded: &make(0),
        kept: &[],
    })
    .expect("encodes")
    .len();
    let fields = make(size - base);
    let len = JsonCodec::encode_record(session_runtime::session::RecordRef {
        metadata: &meta,
        encoded: &fields,
        kept: &[],
    })
    .expect("encodes")
    .len();
    assert_eq!(len, size);
    fields
}

fn cookies(c: &mut Criterion) {
    let store = store();
    let meta = metadata();
    let codec = __internals::record_codec::<JsonCodec>();
    let mut group = c.benchmark_group("cookie");
    for size in [200, 2048] {
        let fields = fields_of_envelope(size);
        let save = || __internals::save("s", SaveOp::Seal, &meta, &fields, NOW + 86_400_000, codec);
        let SaveOutcome::Saved(value) = ready(store.save(save())).expect("seals") else {
            panic!("not sealed");
        };
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::new("seal", size), |b| {
            b.iter(|| ready(store.save(black_box(save()))));
        });
        group.bench_function(BenchmarkId::new("open", size), |b| {
            b.iter(|| {
                let record =
                    ready(store.load(__internals::load("s", black_box(&value), NOW, codec, &[])))
                        .expect("opens");
                assert!(record.is_some());
                record
            });
        });
        let plaintext = vec![7u8; size];
        let sealed = __internals::seal(&store, "s", &plaintext).expect("seals");
        group.bench_function(BenchmarkId::new("cipher_seal", size), |b| {
            b.iter(|| __internals::seal(&store, "s", black_box(&plaintext)));
        });
        group.bench_function(BenchmarkId::new("cipher_open", size), |b| {
            b.iter(|| __internals::open(&store, "s", black_box(&sealed)));
        });
    }
    group.finish();
}

fn headers(c: &mut Criterion) {
    let id = "x".repeat(43);
    let mut group = c.benchmark_group("header");
    let mut only = HeaderMap::new();
    only.insert(
        COOKIE,
        HeaderValue::from_str(&format!("counter={id}")).expect("valid"),
    );
    group.bench_function("find_cookie/alone", |b| {
        b.iter(|| __internals::find_cookie(black_box(&only), "counter"));
    });
    let mut busy = HeaderMap::new();
    busy.insert(
        COOKIE,
        HeaderValue::from_str(&format!(
            "_ga=GA1.2.1234567890.1700000000; _gid=GA1.2.987654321.1700000000; theme=dark; consent=\"yes\"; lang=en-GB; counter={id}"
        ))
        .expect("valid"),
    );
    group.bench_function("find_cookie/sixth_of_six", |b| {
        b.iter(|| __internals::find_cookie(black_box(&busy), "counter"));
    });
    group.finish();
}

fn writes(c: &mut Criterion) {
    let data = LargeJson::sample();
    let all = encode_fields(&data).expect("encodes");
    let mut group = c.benchmark_group("write");
    // What the runtime encodes for a save: the dirty field only, or every field.
    group.bench_function("encode/one_field", |b| {
        b.iter(|| {
            let data = black_box(&data);
            vec![(
                LargeJson::FIELD_NAMES[1],
                data.encode_field(1).expect("encodes"),
            )]
        });
    });
    group.bench_function("encode/whole_record", |b| {
        b.iter(|| encode_fields(black_box(&data)).expect("encodes"));
    });
    let one = vec![all[1].clone()];
    let meta = metadata();
    let codec = __internals::record_codec::<JsonCodec>();
    let id = __internals::session_id(&"a".repeat(43)).expect("valid id");
    let memory = MemoryStore::new();
    let create = __internals::save(
        "large_json",
        SaveOp::Create { id: &id },
        &meta,
        &all,
        NOW + 86_400_000,
        codec,
    );
    assert!(matches!(
        ready(memory.save(create)),
        Ok(SaveOutcome::Saved(_))
    ));
    for (name, fields) in [("one_field", &one), ("whole_record", &all)] {
        group.bench_function(BenchmarkId::new("memory", name), |b| {
            b.iter(|| {
                ready(memory.save(__internals::save(
                    "large_json",
                    SaveOp::Update { id: &id },
                    &meta,
                    black_box(fields),
                    NOW + 86_400_000,
                    codec,
                )))
            });
        });
    }
    let runtime = current_thread();
    if let Some(redis) = redis_store(&runtime) {
        let redis_id = session_runtime::session::SessionId::generate().expect("random");
        let create = __internals::save(
            "large_json",
            SaveOp::Create { id: &redis_id },
            &meta,
            &all,
            NOW + 86_400_000,
            codec,
        );
        assert!(matches!(
            runtime.block_on(redis.save(create)),
            Ok(SaveOutcome::Saved(_))
        ));
        for (name, fields) in [("one_field", &one), ("whole_record", &all)] {
            group.bench_function(BenchmarkId::new("redis", name), |b| {
                b.iter(|| {
                    runtime.block_on(redis.save(__internals::save(
                        "large_json",
                        SaveOp::Update { id: &redis_id },
                        &meta,
                        black_box(fields),
                        NOW + 86_400_000,
                        codec,
                    )))
                });
            });
        }
        let _ = runtime.block_on(redis.delete(__internals::delete("large_json", &redis_id)));
    } else {
        println!("note: no Redis at REDIS_URL or 127.0.0.1:6379; write/redis/* skipped");
    }
    group.finish();
}

/// Connects to the Redis at `REDIS_URL` (default 127.0.0.1:6379), on `runtime`.
fn redis_store(runtime: &tokio::runtime::Runtime) -> Option<RedisStore> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    runtime
        .block_on(
            RedisStore::builder()
                .key_prefix(format!("bench-micro:{}:", std::process::id()))
                .connect(&url),
        )
        .ok()
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn requests(c: &mut Criterion) {
    use session_examples::{StoreChoice, layer, routes};
    let runtime = current_thread();
    let config = session_runtime::SessionConfig::default();
    let mut apps = vec![(
        "bare",
        axum::Router::new()
            .route("/", axum::routing::get(|| async { 1u64.to_string() }))
            .route("/read", axum::routing::get(|| async { 1u64.to_string() })),
    )];
    for (name, store) in [
        ("memory", StoreChoice::Memory),
        ("encrypted", StoreChoice::Encrypted),
    ] {
        let layer = runtime
            .block_on(layer(store, None, config.clone()))
            .expect("layer");
        apps.push((name, routes().layer(layer)));
    }
    // The same memory store without the per-session request lock: what the lock costs.
    apps.push((
        "memory_unserialized",
        routes().layer(
            runtime
                .block_on(layer(
                    StoreChoice::Memory,
                    None,
                    config.clone().with_serialized_requests(false),
                ))
                .expect("layer"),
        ),
    ));
    if let Some(redis) = redis_store(&runtime) {
        apps.push((
            "redis",
            routes().layer(session_runtime::SessionLayer::new(redis).with_config(config)),
        ));
    }
    let apps: Vec<_> = apps
        .into_iter()
        .map(|(name, app)| (name, served(app)))
        .collect();
    let mut group = c.benchmark_group("request");
    for (name, app) in &apps {
        let cookie = send(&runtime, app, "/", None);
        let cookie = cookie.as_deref();
        for (kind, path) in [("write", "/"), ("read", "/read")] {
            if *name == "bare" && kind == "read" {
                continue;
            }
            group.bench_function(BenchmarkId::new(*name, kind), |b| {
                b.iter(|| send(&runtime, app, path, cookie));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, codecs, cookies, headers, writes, requests);
criterion_main!(benches);
