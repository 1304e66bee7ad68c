//! F7: arbitrary bytes, arriving in pieces, through redis-rs's reply codec with our fast path
//! (`vendor/redis/fast-reply.patch`) and without it (`ValueCodec::combine_only`).
//!
//! Input: `n | n little-endian u16 cut points | stream` (n taken modulo 8). Asserted: both
//! codecs give the same values, then the same error (its text without the position `combine`
//! counts from where it began reading), and the same outcome at the end of the stream.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use redis::{Value, ValueCodec};
use tokio_util::codec::Decoder;

/// An error's text without `combine`'s "Parse error at N" position.
fn without_position(text: &str) -> String {
    let marker = "Parse error at ";
    match text.find(marker) {
        Some(at) => {
            let rest = &text[at + marker.len()..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            format!("{}{marker}N{}", &text[..at], &rest[digits..])
        }
        None => text.to_owned(),
    }
}

/// The values `codec` reads from `stream` fed in pieces ending at `ends`, then its error or
/// what the end of the stream gives.
fn run(mut codec: ValueCodec, stream: &[u8], ends: &[usize]) -> (Vec<Value>, String) {
    let mut buffer = BytesMut::new();
    let mut values = Vec::new();
    let mut start = 0;
    for &end in ends.iter().chain([&stream.len()]) {
        let end = end.clamp(start, stream.len());
        buffer.extend_from_slice(&stream[start..end]);
        start = end;
        loop {
            match codec.decode(&mut buffer) {
                Ok(Some(value)) => values.push(value),
                Ok(None) => break,
                Err(error) => return (values, without_position(&error.to_string())),
            }
        }
    }
    loop {
        match codec.decode_eof(&mut buffer) {
            Ok(Some(value)) => values.push(value),
            Ok(None) => return (values, "end".to_owned()),
            Err(error) => return (values, without_position(&error.to_string())),
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&n, rest)) = input.split_first() else {
        return;
    };
    let n = usize::from(n % 8);
    if rest.len() < 2 * n {
        return;
    }
    let (cuts, stream) = rest.split_at(2 * n);
    let mut ends: Vec<usize> = cuts
        .chunks_exact(2)
        .map(|pair| usize::from(u16::from_le_bytes([pair[0], pair[1]])) % (stream.len() + 1))
        .collect();
    ends.sort_unstable();
    assert_eq!(
        run(ValueCodec::default(), stream, &ends),
        run(ValueCodec::combine_only(), stream, &ends)
    );
});
