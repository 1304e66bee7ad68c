//! Writes the seed corpora of the fuzz targets into `corpus/<target>/` and the list of values
//! sealed for F2 into `seeds/sealed.txt`. Every seed is produced by the library itself (real
//! sealed cookies, real envelopes). Run from `fuzz/`: `cargo run --example gen_corpus`.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use session_fuzz::{Framed, NOW, config_at, encrypted_store, retired_store, send, set_cookies};
use session_runtime::{Session, SessionLayer};
use session_runtime::codec::{Codec, JsonCodec, MsgpackCodec};
use session_runtime::session::{Metadata, RecordRef};
use session_runtime::store::SimpleCookieStore;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("corpus").join(target);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
}

/// `selector | action | header lines`.
fn f1(name: &str, selector: u8, action: u8, lines: &[String]) {
    let mut bytes = vec![selector, action];
    bytes.extend_from_slice(lines.join("\n").as_bytes());
    write("cookie_header", name, &bytes);
}

fn pairs(cookies: &[(String, String)]) -> Vec<String> {
    cookies.iter().map(|(n, v)| format!("{n}={v}")).collect()
}

/// Cookies the layer sets for an empty request with `action`.
fn cookies(layer: &SessionLayer, action: u8) -> Vec<(String, String)> {
    set_cookies(&send(layer, &[], action))
}

fn sample_fields<C: Codec>() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("user", C::encode(&Some(42u64)).unwrap()),
        ("items", C::encode(&vec!["apple", "pear"]).unwrap()),
        ("note", C::encode("hello \u{1F600}").unwrap()),
        ("count", C::encode(&7u32).unwrap()),
    ]
}

fn envelope<C: Codec>(max_age: Option<u64>) -> Vec<u8> {
    let metadata = Metadata {
        created: NOW - 1000,
        updated: NOW,
        max_age,
    };
    C::encode_record(RecordRef {
        metadata: &metadata,
        encoded: &sample_fields::<C>(),
        kept: &[],
    })
    .unwrap()
}

fn main() {
    // F1: real cookies from the layer.
    let encrypted = SessionLayer::new(encrypted_store()).with_config(config_at(NOW));
    let cart = pairs(&cookies(&encrypted, 2));
    let all = pairs(&cookies(&encrypted, 6));
    let retired = pairs(&cookies(
        &SessionLayer::new(retired_store()).with_config(config_at(NOW)),
        2,
    ));
    let expired = pairs(&cookies(
        &SessionLayer::new(encrypted_store()).with_config(config_at(NOW - 2 * 86_400_000)),
        6,
    ));
    for action in 0..8 {
        f1(&format!("enc-cart-{action}"), 0, action, &cart);
        f1(
            &format!("enc-all-{action}"),
            0x10,
            action,
            &[all.join("; ")],
        );
    }
    f1("enc-retired", 0, 0, &retired);
    f1("enc-expired", 0, 6, &expired);
    f1("enc-split", 0, 6, &[cart.join(""), all.join(";")]);
    f1("enc-dup", 0, 2, &[format!("{}; {}", cart[0], retired[0])]);
    f1(
        "enc-quoted",
        0,
        0,
        &[cart[0].replacen('=', "=\"", 1) + "\""],
    );
    f1("enc-moved", 0, 0, &[cart[0].replacen("__Host-s", "m", 1)]);
    for action in 0..8 {
        f1(
            &format!("mem-{action}"),
            1,
            action,
            &["__Host-s=@ID@; m=@PID@".to_owned(), "f=@FID@".to_owned()],
        );
    }
    f1("mem-rolling", 0x11, 0, &["__Host-s=@ID@".to_owned()]);
    f1(
        "mem-bad-id",
        1,
        0,
        &["__Host-s=@ID@x; m=../../etc".to_owned()],
    );
    let plain = SessionLayer::new(SimpleCookieStore::new()).with_config(config_at(NOW));
    let plain_cart = pairs(&cookies(&plain, 2));
    let plain_all = pairs(&cookies(&plain, 6));
    for action in 0..4 {
        f1(
            &format!("plain-{action}"),
            2,
            action,
            &[plain_cart.join("; "), plain_all.join("; ")],
        );
    }
    f1("empty", 0, 0, &[]);

    // F2: sealed values and their plaintexts; the target accepts exactly these.
    let store = encrypted_store();
    let old = retired_store();
    let mut sealed = String::new();
    let plaintexts: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"x".to_vec(),
        envelope::<JsonCodec>(None),
        envelope::<MsgpackCodec>(Some(60)),
        envelope::<Framed>(None),
        vec![0xA5; 1000],
    ];
    for (i, plaintext) in plaintexts.iter().enumerate() {
        for (which, store) in [("primary", &store), ("retired", &old)] {
            let value = session_runtime::__internals::seal(store, "__Host-s", plaintext).unwrap();
            let hex = plaintext.iter().fold(String::new(), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            });
            let _ = writeln!(sealed, "{value}\t{hex}");
            write("open_encrypted", &format!("{which}-{i}"), value.as_bytes());
        }
    }
    fs::create_dir_all("seeds").unwrap();
    fs::write("seeds/sealed.txt", sealed).unwrap();

    // F3: structure-aware; a few byte strings of different sizes for `arbitrary` to read.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for len in [16usize, 64, 256, 1024, 4096] {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect();
        write("roundtrip", &format!("random-{len}"), &bytes);
    }

    // F4: plain cookies (selector 0-2) and envelopes (3-5).
    for (selector, bytes) in [
        (3u8, envelope::<JsonCodec>(None)),
        (4, envelope::<MsgpackCodec>(Some(60))),
        (5, envelope::<Framed>(Some(60))),
    ] {
        let mut seed = vec![selector - 3];
        seed.extend_from_slice(URL_SAFE_NO_PAD.encode(&bytes).as_bytes());
        write("plain_decode", &format!("cookie-{selector}"), &seed);
        let mut seed = vec![selector];
        seed.extend_from_slice(&bytes);
        write("plain_decode", &format!("envelope-{selector}"), &seed);
    }
    write("plain_decode", "json-spaces", b"\x03 { \"session\" : { \"a\" : [ 1 , {\"b\":null} ] } , \"created\" : 1 , \"updated\" : 2 , \"max_age\" : null } ");

    // F5: replies to the load's `HMGET` (timestamps, max_age, forward, then each type's
    // `LOAD_NAMES`) in RESP2 and RESP3 (`_` nulls), and the same as a value list (mode 1).
    fn hmget_seeds<T: Session>(label: &str) {
        let data = T::new_default();
        let aliases = T::LOAD_NAMES.len() - T::FIELD_NAMES.len();
        let mut values: Vec<Option<Vec<u8>>> = vec![
            Some(format!("{}.{NOW}", NOW - 1000).into_bytes()),
            Some(b"60".to_vec()),
            None,
        ];
        values.extend((0..aliases).map(|_| None));
        values.extend((0..T::FIELD_NAMES.len()).map(|i| data.encode_field(i).ok()));
        let bulk = |value: &Option<Vec<u8>>, null: &[u8]| match value {
            Some(s) => {
                let mut out = format!("${}\r\n", s.len()).into_bytes();
                out.extend_from_slice(s);
                out.extend_from_slice(b"\r\n");
                out
            }
            None => null.to_vec(),
        };
        let mut resp2 = format!("\x00*{}\r\n", values.len()).into_bytes();
        let mut resp3 = format!("\x02*{}\r\n", values.len()).into_bytes();
        let mut list = vec![1u8];
        for value in &values {
            resp2.extend(bulk(value, b"$-1\r\n"));
            resp3.extend(bulk(value, b"_\r\n"));
            // `arbitrary`'s `Option`: a bool byte, then a length-prefixed `Vec`.
            match value {
                Some(value) => {
                    list.push(1);
                    list.extend_from_slice(&u32::try_from(value.len()).unwrap().to_le_bytes()[..1]);
                    list.extend_from_slice(value);
                }
                None => list.push(0),
            }
        }
        write("redis_record", &format!("resp2-{label}"), &resp2);
        write("redis_record", &format!("resp3-{label}"), &resp3);
        write("redis_record", &format!("list-{label}"), &list);
    }
    hmget_seeds::<session_fuzz::Cart>("cart");
    hmget_seeds::<session_fuzz::Prefs>("prefs");
    hmget_seeds::<session_fuzz::Tagged>("tagged");
    write("redis_record", "empty", b"\x00*0\r\n");

    // F6: `flags | max_age | name | path | domain | value`, length-prefixed.
    let f6 = |flags: u8, max_age: u64, parts: [&str; 4]| {
        let mut out = vec![flags];
        out.extend_from_slice(&max_age.to_be_bytes());
        for part in parts {
            out.push(u8::try_from(part.len()).unwrap());
            out.extend_from_slice(part.as_bytes());
        }
        out
    };
    let seeds = [
        (
            "host",
            f6(0b0010_0011, 86_400_000, ["__Host-id", "/", "", "dmFsdWU"]),
        ),
        (
            "secure-domain",
            f6(
                0b1000_1011,
                3_600_000,
                ["__Secure-s", "/app", "example.com", "YQ"],
            ),
        ),
        ("removal", f6(0b0101_0111, 0, ["id", "/", "", ""])),
        (
            "lax-insecure",
            f6(0b1010_0000, 1, ["sess", "/a/b", ".example.org", "eA"]),
        ),
        ("none", f6(0b0100_0001, u64::MAX, ["s.1", "/", "", "AAAA"])),
    ];
    for (name, bytes) in seeds {
        write("set_cookie_config", name, &bytes);
    }
    println!("corpus written");
}
