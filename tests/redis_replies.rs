//! The reply fast path of our redis-rs patch (`vendor/redis/PATCH.md`) against redis-rs's own
//! `combine` parser: for any bytes, whole or arriving in pieces, `ValueCodec` (fast path first)
//! must give the values and errors that `combine` alone gives: redis-rs's synchronous parser on
//! whole inputs, and the same codec with the fast path off (`ValueCodec::combine_only`) on
//! inputs in pieces.

use bytes::BytesMut;
use proptest::prelude::*;
use redis::{Value, ValueCodec};
use tokio_util::codec::Decoder;

/// A reply as the server would send it, of every kind (the fast path reads some of them).
#[derive(Debug, Clone)]
enum Reply {
    Bulk(Vec<u8>),
    NilBulk,
    Array(Vec<Reply>),
    NilArray,
    Int(i64),
    Simple(String),
    Error(String),
    Null,
    Boolean(bool),
    Map(Vec<(Reply, Reply)>),
}

impl Reply {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Self::Bulk(bytes) => {
                out.extend_from_slice(format!("${}\r\n", bytes.len()).as_bytes());
                out.extend_from_slice(bytes);
                out.extend_from_slice(b"\r\n");
            }
            Self::NilBulk => out.extend_from_slice(b"$-1\r\n"),
            Self::Array(items) => {
                out.extend_from_slice(format!("*{}\r\n", items.len()).as_bytes());
                for item in items {
                    item.write(out);
                }
            }
            Self::NilArray => out.extend_from_slice(b"*-1\r\n"),
            Self::Int(n) => out.extend_from_slice(format!(":{n}\r\n").as_bytes()),
            Self::Simple(line) => out.extend_from_slice(format!("+{line}\r\n").as_bytes()),
            Self::Error(line) => out.extend_from_slice(format!("-{line}\r\n").as_bytes()),
            Self::Null => out.extend_from_slice(b"_\r\n"),
            Self::Boolean(b) => out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            Self::Map(pairs) => {
                out.extend_from_slice(format!("%{}\r\n", pairs.len()).as_bytes());
                for (key, value) in pairs {
                    key.write(out);
                    value.write(out);
                }
            }
        }
    }
}

fn reply() -> impl Strategy<Value = Reply> {
    let leaf = prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Reply::Bulk),
        1 => Just(Reply::Bulk(b"a\r\nb".to_vec())),
        // Long replies are measured before they are read.
        1 => proptest::collection::vec(any::<u8>(), 900..1_500).prop_map(Reply::Bulk),
        1 => Just(Reply::NilBulk),
        1 => Just(Reply::NilArray),
        2 => any::<i64>().prop_map(Reply::Int),
        1 => prop_oneof![Just("OK".to_owned()), "[ -~]{0,12}", "\\PC{0,6}"].prop_map(Reply::Simple),
        1 => prop_oneof![Just("ERR bad".to_owned()), "[A-Z]{1,8} [a-z ]{0,12}"].prop_map(Reply::Error),
        1 => Just(Reply::Null),
        1 => any::<bool>().prop_map(Reply::Boolean),
    ];
    leaf.prop_recursive(12, 96, 8, |inner| {
        prop_oneof![
            4 => proptest::collection::vec(inner.clone(), 0..8).prop_map(Reply::Array),
            1 => proptest::collection::vec((inner.clone(), inner), 0..3).prop_map(Reply::Map),
        ]
    })
}

/// What redis-rs's `combine` parser (its synchronous `Parser`, which has no fast path) makes of
/// `bytes`: the value of each whole reply in turn, and whether it then met an error (not the end
/// of the bytes, which may come inside a reply). The two paths word an error's position
/// differently, so only its presence is compared.
fn combine_only(bytes: &[u8]) -> (Vec<Value>, bool) {
    let mut parser = redis::Parser::new();
    let mut reader = bytes;
    let mut values = Vec::new();
    loop {
        match parser.parse_value(&mut reader) {
            Ok(value) => values.push(value),
            Err(error) => return (values, !error.is_io_error()),
        }
    }
}

/// What the codec makes of `bytes` fed in the pieces `cuts` makes, as the connection feeds it.
fn codec(bytes: &[u8], cuts: &[usize]) -> (Vec<Value>, bool) {
    let (values, error) = codec_with(ValueCodec::default(), bytes, cuts);
    (values, error.is_some())
}

/// An error's text without the position `combine` names in it (`Parse error at 1061`), which
/// counts from where in the buffer it began reading: the fast path, which waits for a whole
/// reply, can make it begin further back.
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

/// What `codec` makes of `bytes` fed in the pieces `cuts` makes: the values, then the error's
/// text if it met one.
fn codec_with(mut codec: ValueCodec, bytes: &[u8], cuts: &[usize]) -> (Vec<Value>, Option<String>) {
    let mut buffer = BytesMut::new();
    let mut values = Vec::new();
    let mut start = 0;
    let mut ends: Vec<usize> = cuts.iter().map(|cut| cut % (bytes.len() + 1)).collect();
    ends.sort_unstable();
    ends.push(bytes.len());
    for end in ends {
        buffer.extend_from_slice(&bytes[start..end.max(start)]);
        start = end.max(start);
        loop {
            match codec.decode(&mut buffer) {
                Ok(Some(value)) => values.push(value),
                Ok(None) => break,
                Err(error) => return (values, Some(without_position(&error.to_string()))),
            }
        }
    }
    (values, None)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Well-formed replies, one after another, whole or in pieces.
    #[test]
    fn replies_decode_as_combine_decodes_them(
        replies in proptest::collection::vec(reply(), 1..4),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let mut bytes = Vec::new();
        for reply in &replies {
            reply.write(&mut bytes);
        }
        let expected = combine_only(&bytes);
        prop_assert_eq!(expected.0.len(), replies.len());
        prop_assert_eq!(codec(&bytes, &[]), expected.clone());
        prop_assert_eq!(codec(&bytes, &cuts), expected);
        prop_assert_eq!(
            codec_with(ValueCodec::default(), &bytes, &cuts),
            codec_with(ValueCodec::combine_only(), &bytes, &cuts)
        );
    }

    /// Damaged replies (a byte changed, bytes cut off): the same values and the same error.
    #[test]
    fn damaged_replies_decode_as_combine_decodes_them(
        replies in proptest::collection::vec(reply(), 1..3),
        at in any::<usize>(),
        byte in prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'-'), Just(b'+'), Just(b'9'), Just(b' '), any::<u8>()],
        cut in any::<usize>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let mut bytes = Vec::new();
        for reply in &replies {
            reply.write(&mut bytes);
        }
        let at = at % bytes.len();
        bytes[at] = byte;
        bytes.truncate(bytes.len() - cut % 4);
        prop_assert_eq!(codec(&bytes, &[]), combine_only(&bytes));
        // In pieces, against the same codec without the fast path (`combine` itself reads a
        // damaged reply in pieces differently from whole: `9` then `-1\r\n` is an error reply).
        prop_assert_eq!(
            codec_with(ValueCodec::default(), &bytes, &cuts),
            codec_with(ValueCodec::combine_only(), &bytes, &cuts)
        );
    }
}

#[test]
fn the_end_of_the_stream_is_read_as_without_the_fast_path() {
    // `decode_eof`: a whole reply is read; a cut one ends as `combine` alone ends it (which
    // depends on what it had already taken in: an error, or nothing), short replies and long.
    let long = format!("*2\r\n$1500\r\n{}\r\n:1\r\n", "x".repeat(1500));
    for whole in [&b"*2\r\n$2\r\nab\r\n:7\r\n"[..], long.as_bytes()] {
        let mut codec = ValueCodec::default();
        let mut buffer = BytesMut::from(whole);
        assert!(matches!(
            codec.decode_eof(&mut buffer),
            Ok(Some(Value::Array(_)))
        ));
        assert!(matches!(codec.decode_eof(&mut buffer), Ok(None)));
        for cut in 1..whole.len() {
            let ends = |mut codec: ValueCodec| {
                let mut buffer = BytesMut::from(&whole[..cut]);
                let before = codec.decode(&mut buffer).map_err(|e| e.to_string());
                let after = codec
                    .decode_eof(&mut buffer)
                    .map_err(|e| without_position(&e.to_string()));
                (before, after)
            };
            assert_eq!(
                ends(ValueCodec::default()),
                ends(ValueCodec::combine_only()),
                "cut at {cut}"
            );
        }
    }
}

#[test]
fn replies_the_fast_path_declines_still_decode() {
    // Numbers `combine` reads leniently, nesting past the fast path's depth, a count longer than
    // the bytes at hand, and replies cut inside a length.
    for bytes in [
        &b": 42 \r\n"[..],
        b":+7\r\n",
        b"$ 3\r\nabc\r\n",
        b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
        b"*5\r\n:1\r\n",
        b"$1",
        b"$10\r\nabc",
        b":-9223372036854775808\r\n",
        b":9223372036854775808\r\n",
        b"+\xff\r\n",
    ] {
        assert_eq!(codec(bytes, &[]), combine_only(bytes), "{bytes:?}");
        for cut in 0..bytes.len() {
            assert_eq!(
                codec_with(ValueCodec::default(), bytes, &[cut]),
                codec_with(ValueCodec::combine_only(), bytes, &[cut]),
                "{bytes:?} cut at {cut}"
            );
        }
    }
}

#[test]
fn common_replies_decode_to_their_values() {
    // The replies our store reads: `HMGET`, an integer, `OK`.
    let (values, failed) = codec(b"*3\r\n$2\r\nab\r\n$-1\r\n$0\r\n\r\n:-12\r\n+OK\r\n", &[]);
    assert!(!failed);
    assert_eq!(
        values,
        [
            Value::Array(vec![
                Value::BulkString(b"ab".to_vec()),
                Value::Nil,
                Value::BulkString(Vec::new()),
            ]),
            Value::Int(-12),
            Value::Okay,
        ]
    );
}

/// A reply that empties the read buffer gives the next read the whole buffer back: left at the
/// tail the replies before it reached, a long reply would arrive over several reads (the
/// framed reader only asks for room for one more byte) and be measured again on each.
#[test]
fn an_emptied_buffer_is_taken_back_from_its_start() {
    let mut codec = ValueCodec::default();
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let mut reply = Vec::new();
    Reply::Bulk(vec![b'x'; 2_000]).write(&mut reply);
    for _ in 0..3 {
        buf.extend_from_slice(&reply);
        let value = codec.decode(&mut buf).unwrap();
        assert_eq!(value, Some(Value::BulkString(vec![b'x'; 2_000])));
        assert!(buf.is_empty());
        assert!(buf.capacity() >= 8 * 1024, "{}", buf.capacity());
    }
    // Bytes of the next reply left over: kept where they are, for the framed reader.
    buf.extend_from_slice(&reply);
    buf.extend_from_slice(b"$5\r\nab");
    let capacity = buf.capacity();
    assert!(codec.decode(&mut buf).unwrap().is_some());
    assert_eq!(&buf[..], b"$5\r\nab");
    assert_eq!(buf.capacity(), capacity - reply.len());
}
