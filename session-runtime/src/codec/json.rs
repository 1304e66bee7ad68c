//! The JSON codec (`serde_json`).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

use super::{Codec, CodecError, intern, json_envelope};
use crate::record::{Bytes, Metadata, Record, RecordRef};

/// JSON through `serde_json`: the default codec of `#[derive(Session)]`.
///
/// A field value that is a JSON string without escapes is read in one pass and handed to the
/// field's type as `serde_json` would hand it; every other value goes through `serde_json`, and
/// a type decodes to the same value, or fails with the same error, either way.
///
/// The cookie envelope is
/// `{"created":<ms>,"updated":<ms>,"max_age":<s>,"session":{"<field>":<value>,...}}`, with every
/// field embedded as the JSON it was encoded to; `max_age` is left out unless set.
///
/// # Examples
///
/// ```
/// use session_runtime::codec::{Codec, JsonCodec};
///
/// let bytes = JsonCodec::encode(&vec![1, 2]).unwrap();
/// assert_eq!(bytes, b"[1,2]");
/// assert_eq!(JsonCodec::decode::<Vec<u8>>(&bytes).unwrap(), [1, 2]);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonCodec;

#[derive(Deserialize)]
struct Envelope<'a> {
    created: u64,
    updated: u64,
    #[serde(default)]
    max_age: Option<u64>,
    #[serde(borrow)]
    session: Fields<'a>,
}

/// The `session` object in document order, values kept as raw JSON.
struct Fields<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Fields<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Visit<'a> {
            type Value = Fields<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of session fields")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'a>, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some(entry) = map.next_entry::<String, &'a RawValue>()? {
                    fields.push(entry);
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(Visit(PhantomData))
    }
}

/// Takes the names (see [`intern`](super::intern)) and copies every raw value into one shared buffer, which
/// each field's value is a slice of: two allocations for all values instead of one per value
/// (for fewer than three values, one copy each is as cheap).
fn shared_values<N: AsRef<str>>(
    fields: Vec<(N, &[u8])>,
    names: &[&'static str],
) -> Vec<(Cow<'static, str>, Bytes)> {
    let mut next = 0;
    if fields.len() < 3 {
        return fields
            .into_iter()
            .map(|(name, value)| {
                (
                    intern(name.as_ref(), names, &mut next),
                    Bytes::copy_from_slice(value),
                )
            })
            .collect();
    }
    let mut all = Vec::with_capacity(fields.iter().map(|(_, value)| value.len()).sum());
    for (_, value) in &fields {
        all.extend_from_slice(value);
    }
    let all = Bytes::from(all);
    let mut at = 0;
    fields
        .into_iter()
        .map(|(name, value)| {
            let value = all.slice(at..at + value.len());
            at += value.len();
            (intern(name.as_ref(), names, &mut next), value)
        })
        .collect()
}

/// Decodes an envelope as [`json_envelope::read`] does, or `None` where it leaves the decision
/// to serde.
fn decode_direct(bytes: &[u8], names: &[&'static str]) -> Option<Record> {
    let envelope = json_envelope::read(bytes)?;
    Some(Record::from_parts(
        Metadata {
            created: envelope.created,
            updated: envelope.updated,
            max_age: envelope.max_age,
        },
        shared_values(envelope.fields, names),
    ))
}

/// Decodes any envelope `serde_json` accepts.
fn decode_serde(bytes: &[u8], names: &[&'static str]) -> Result<Record, CodecError> {
    let envelope: Envelope<'_> = serde_json::from_slice(bytes).map_err(CodecError::decode)?;
    Ok(Record::from_parts(
        Metadata {
            created: envelope.created,
            updated: envelope.updated,
            max_age: envelope.max_age,
        },
        shared_values(
            envelope
                .session
                .0
                .into_iter()
                .map(|(name, value)| (name, value.get().as_bytes()))
                .collect(),
            names,
        ),
    ))
}

/// The text of `bytes` when they are a JSON string with no escape in it and nothing around
/// it: `"`, then UTF-8 without `"`, `\\` or a control character (which JSON forbids unescaped),
/// then `"`. Anything else, a valid string with an escape included, is `None`.
#[expect(
    clippy::needless_bitwise_bool,
    reason = "`|` keeps the scan free of branches, which the compiler vectorizes"
)]
fn plain_string(bytes: &[u8]) -> Option<&str> {
    let inner = bytes.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    // Branch-free, so that the compiler compares many bytes at a time.
    let special = inner.iter().fold(false, |special, &byte| {
        special | (byte < 0x20) | (byte == b'"') | (byte == b'\\')
    });
    if special {
        return None;
    }
    std::str::from_utf8(inner).ok()
}

/// A JSON string without escapes, as [`serde_json`]'s deserializer hands it to a type: the
/// borrowed text where the type asks for anything, a string, a character or an identifier; the
/// raw bytes where it asks for bytes; `visit_some` for an `Option`, the newtype to a newtype
/// struct, a unit variant to an enum, `visit_unit` to a value ignored. Where `serde_json` fails
/// on a string without asking the type (a number, a bool, a sequence, a map, a struct, a unit,
/// its own `RawValue`), this fails too, and the caller hands the bytes to `serde_json`, which
/// gives its own error.
struct PlainStr<'de>(&'de str);

/// The name by which `serde_json`'s `RawValue` asks its deserializer for the raw text.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// Why [`PlainStr`] did not give a value; never shown, as the bytes then go to `serde_json`.
fn not_here() -> serde::de::value::Error {
    serde::de::Error::custom("left to serde_json")
}

/// [`Deserializer`] methods on which `serde_json` rejects a string token without asking the
/// visitor.
macro_rules! not_on_a_string {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
            Err(not_here())
        }
    )*};
}

impl<'de> Deserializer<'de> for PlainStr<'de> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_borrowed_str(self.0)
    }

    // The text, as `deserialize_any` hands it.
    serde::forward_to_deserialize_any! { str string char identifier }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_borrowed_bytes(self.0.as_bytes())
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        if name == RAW_VALUE_TOKEN {
            return Err(not_here());
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_enum(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_unit()
    }

    not_on_a_string! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_unit deserialize_seq
        deserialize_map
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_map(visitor)
    }
}

/// A string as an enum, as `serde_json` reads it: the variant named by the string, read as
/// above, and a unit variant only.
impl<'de> serde::de::EnumAccess<'de> for PlainStr<'de> {
    type Error = serde::de::value::Error;
    type Variant = UnitOnly;

    fn variant_seed<S: serde::de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, UnitOnly), Self::Error> {
        Ok((seed.deserialize(self)?, UnitOnly))
    }
}

/// The variant of an enum read from a string: a unit variant, nothing else.
struct UnitOnly;

impl<'de> serde::de::VariantAccess<'de> for UnitOnly {
    type Error = serde::de::value::Error;

    fn unit_variant(self) -> Result<(), Self::Error> {
        Ok(())
    }

    fn newtype_variant_seed<S: serde::de::DeserializeSeed<'de>>(
        self,
        _seed: S,
    ) -> Result<S::Value, Self::Error> {
        Err(not_here())
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        Err(not_here())
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        Err(not_here())
    }
}

impl Codec for JsonCodec {
    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
        serde_json::to_vec(value).map_err(CodecError::encode)
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
        // A string without escapes, the commonest value after a number, is read in one pass
        // over its bytes; a type that does not take it, and everything else, goes to serde_json.
        if let Some(text) = plain_string(bytes)
            && let Ok(value) = T::deserialize(PlainStr(text))
        {
            return Ok(value);
        }
        serde_json::from_slice(bytes).map_err(CodecError::decode)
    }

    fn encode_record(record: RecordRef<'_>) -> Result<Vec<u8>, CodecError> {
        let size = 64
            + record
                .iter()
                .map(|(name, value)| name.len() + value.len() + 4)
                .sum::<usize>();
        let mut out = Vec::with_capacity(size);
        let meta = record.metadata;
        let mut number = itoa::Buffer::new();
        out.extend_from_slice(b"{\"created\":");
        out.extend_from_slice(number.format(meta.created).as_bytes());
        out.extend_from_slice(b",\"updated\":");
        out.extend_from_slice(number.format(meta.updated).as_bytes());
        if let Some(max_age) = meta.max_age {
            out.extend_from_slice(b",\"max_age\":");
            out.extend_from_slice(number.format(max_age).as_bytes());
        }
        out.extend_from_slice(b",\"session\":{");
        for (i, (name, value)) in record.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            if name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                // Nothing to escape: what `serde_json` would write.
                out.push(b'"');
                out.extend_from_slice(name.as_bytes());
                out.push(b'"');
            } else {
                serde_json::to_writer(&mut out, name).map_err(CodecError::encode)?;
            }
            out.push(b':');
            // Field bytes come from `encode` above, so they are one JSON value.
            out.extend_from_slice(value);
        }
        out.extend_from_slice(b"}}");
        Ok(out)
    }

    fn decode_record(bytes: &[u8]) -> Result<Record, CodecError> {
        decode_record_named(bytes, &[])
    }
}

/// [`JsonCodec::decode_record`] for a session type whose stored names are `names`: those names
/// are kept as the type's `'static` strings rather than copied.
pub(super) fn decode_record_named(
    bytes: &[u8],
    names: &[&'static str],
) -> Result<Record, CodecError> {
    // Our own encoding, read directly; anything else through serde_json.
    match decode_direct(bytes, names) {
        Some(record) => Ok(record),
        None => decode_serde(bytes, names),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The direct reader either leaves the decision to serde or agrees with it exactly.
    fn agree(bytes: &[u8]) -> bool {
        match decode_direct(bytes, &[]) {
            None => false,
            Some(direct) => {
                let serde = decode_serde(bytes, &[]).unwrap_or_else(|error| {
                    panic!(
                        "read directly, refused by serde ({error}): {:?}",
                        String::from_utf8_lossy(bytes)
                    )
                });
                assert_eq!(direct.metadata, serde.metadata);
                assert_eq!(direct.fields, serde.fields);
                true
            }
        }
    }

    fn envelope(max_age: Option<u64>, fields: &[(&str, &str)]) -> Vec<u8> {
        // Record names are `'static` (a session type's field names); leaked in the test.
        let fields: Vec<(&'static str, Vec<u8>)> = fields
            .iter()
            .map(|(name, value)| {
                let name: &'static str = Box::leak((*name).to_owned().into_boxed_str());
                (name, value.as_bytes().to_vec())
            })
            .collect();
        let meta = Metadata {
            created: 1_700_000_000_000,
            updated: 1_700_000_000_500,
            max_age,
        };
        JsonCodec::encode_record(RecordRef {
            metadata: &meta,
            encoded: &fields,
            kept: &[],
        })
        .unwrap()
    }

    #[test]
    fn reads_what_it_writes_directly() {
        for bytes in [
            envelope(None, &[]),
            envelope(Some(60), &[("visits", "3")]),
            envelope(
                None,
                &[
                    ("a", "-0.5e+10"),
                    ("b", r#"{"k":[1,{"x":null}],"e":"\u00e9\n\"q\""}"#),
                    ("ünï", r#""é""#),
                    ("t", "true"),
                    ("f", "false"),
                    ("arr", "[]"),
                    ("obj", "{}"),
                ],
            ),
        ] {
            assert!(agree(&bytes), "{:?}", String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn leaves_everything_else_to_serde() {
        let canonical = envelope(None, &[("v", "1")]);
        let text = String::from_utf8(canonical).unwrap();
        for other in [
            text.replace("{\"created\"", "{ \"created\""),
            text.replace(":1}}", ": 1}}"),
            text.replace("\"v\"", "\"\\u0076\""),
            text.replace(":1}}", ":01}}"),
            text.replace(":1}}", ":1.}}"),
            text.replace(":1}}", ":-}}"),
            text.replace(":1}}", ":\"a\\x\"}}"),
            text.replace(":1}}", ":\"\u{1}\"}}"),
            text.replace(":1}}", ":[1,]}}"),
            text.replace(":1}}", ":tru}}"),
            text.replace("1700000000000", "01700000000000"),
            text.replace("1700000000000", "99999999999999999999"),
            text.replace("\"updated\"", "\"extra\":1,\"updated\""),
            format!("{text} "),
            "[".repeat(200) + &"]".repeat(200),
            text.replace(
                ":1}}",
                &format!(":{}{}}}}}", "[".repeat(200), "]".repeat(200)),
            ),
        ] {
            assert!(!agree(other.as_bytes()), "read directly: {other:?}");
        }
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(|n| serde_json::json!(n)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| serde_json::json!(f)),
            any::<String>().prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                prop::collection::btree_map(any::<String>(), inner, 0..4)
                    .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
            ]
        })
    }

    /// The envelope as `serde_json` and `write!` would write it: what `encode_record` must match.
    fn reference_envelope(meta: &Metadata, fields: &[(&'static str, Vec<u8>)]) -> Vec<u8> {
        use std::io::Write as _;
        let mut out = Vec::new();
        write!(
            out,
            "{{\"created\":{},\"updated\":{}",
            meta.created, meta.updated
        )
        .unwrap();
        if let Some(max_age) = meta.max_age {
            write!(out, ",\"max_age\":{max_age}").unwrap();
        }
        out.extend_from_slice(b",\"session\":{");
        for (i, (name, value)) in fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, name).unwrap();
            out.push(b':');
            out.extend_from_slice(value);
        }
        out.extend_from_slice(b"}}");
        out
    }

    #[test]
    fn named_decoding_borrows_the_known_names_only() {
        let bytes = envelope(
            None,
            &[("b", "2"), ("visits", "1"), ("newer", "\"x\""), ("a", "0")],
        );
        let declared: &[&'static str] = &["visits", "a", "b", "user"];
        let named = decode_record_named(&bytes, declared).unwrap();
        let plain = JsonCodec::decode_record(&bytes).unwrap();
        assert_eq!(named.fields, plain.fields);
        assert_eq!(named.metadata, plain.metadata);
        let borrowed: Vec<bool> = named
            .fields
            .iter()
            .map(|(name, _)| matches!(name, Cow::Borrowed(_)))
            .collect();
        assert_eq!(borrowed, [true, true, false, true]);
        assert!(
            plain
                .fields
                .iter()
                .all(|(name, _)| matches!(name, Cow::Owned(_)))
        );
        // Through serde (whitespace), the same.
        let spaced = String::from_utf8(bytes).unwrap().replace(":{", ": {");
        assert!(decode_direct(spaced.as_bytes(), declared).is_none());
        let named = decode_record_named(spaced.as_bytes(), declared).unwrap();
        assert_eq!(named.fields, plain.fields);
        assert!(matches!(named.fields[0].0, Cow::Borrowed("b")));
    }

    /// A unit-variant enum, as apps keep a theme or a role.
    #[derive(Debug, PartialEq, Deserialize)]
    enum Theme {
        Dark,
        #[serde(rename = "light")]
        Light,
        Custom(String),
    }

    /// A newtype over a string, as apps keep an id.
    #[derive(Debug, PartialEq, Deserialize)]
    struct Name(String);

    /// A struct, which a string never decodes into.
    #[derive(Debug, PartialEq, Deserialize)]
    struct Pair {
        a: u64,
    }

    /// `JsonCodec::decode` and `serde_json::from_slice` give `T` the same value, or both fail
    /// with `serde_json`'s error.
    fn same_as_serde<T: DeserializeOwned + PartialEq + fmt::Debug>(bytes: &[u8]) {
        let ours = JsonCodec::decode::<T>(bytes).map_err(|error| error.to_string());
        let theirs = serde_json::from_slice::<T>(bytes)
            .map_err(|error| CodecError::decode(error).to_string());
        assert_eq!(ours, theirs, "{:?}", String::from_utf8_lossy(bytes));
    }

    /// What [`Asks`] was handed.
    #[derive(Debug, PartialEq)]
    enum Got {
        Str(String),
        Bytes(Vec<u8>),
        Unit,
        Newtype(String),
        Variant(String),
    }

    /// A type that asks its deserializer for one kind of value (`M` picks the method) and takes
    /// whatever it is handed, a string included: where `serde_json` rejects a string without
    /// asking, so must the fast path.
    #[derive(Debug, PartialEq)]
    struct Asks<const M: u8>(Got);

    struct TakesAll;

    impl<'de> Visitor<'de> for TakesAll {
        type Value = Got;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("anything")
        }
        fn visit_str<E>(self, v: &str) -> Result<Got, E> {
            Ok(Got::Str(v.to_owned()))
        }
        fn visit_bytes<E>(self, v: &[u8]) -> Result<Got, E> {
            Ok(Got::Bytes(v.to_owned()))
        }
        fn visit_bool<E>(self, v: bool) -> Result<Got, E> {
            Ok(Got::Str(v.to_string()))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Got, E> {
            Ok(Got::Str(v.to_string()))
        }
        fn visit_unit<E>(self) -> Result<Got, E> {
            Ok(Got::Unit)
        }
        fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Got, D::Error> {
            String::deserialize(d).map(Got::Newtype)
        }
        fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<Got, A::Error> {
            use serde::de::VariantAccess as _;
            let (name, variant) = data.variant::<String>()?;
            variant.unit_variant()?;
            Ok(Got::Variant(name))
        }
    }

    impl<'de, const M: u8> Deserialize<'de> for Asks<M> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let v = TakesAll;
            match M {
                0 => d.deserialize_f64(v),
                1 => d.deserialize_bool(v),
                2 => d.deserialize_ignored_any(v),
                3 => d.deserialize_struct("S", &["a"], v),
                4 => d.deserialize_seq(v),
                5 => d.deserialize_map(v),
                6 => d.deserialize_unit(v),
                7 => d.deserialize_tuple(1, v),
                8 => d.deserialize_u64(v),
                9 => d.deserialize_i128(v),
                10 => d.deserialize_newtype_struct(RAW_VALUE_TOKEN, v),
                11 => d.deserialize_newtype_struct("N", v),
                12 => d.deserialize_enum("E", &["a"], v),
                13 => d.deserialize_bytes(v),
                14 => d.deserialize_unit_struct("U", v),
                15 => d.deserialize_tuple_struct("T", 1, v),
                16 => d.deserialize_identifier(v),
                _ => d.deserialize_char(v),
            }
            .map(Asks)
        }
    }

    /// Every type the fast path for plain strings may meet decodes as through `serde_json`.
    fn decodes_as_serde(bytes: &[u8]) {
        same_as_serde::<Asks<0>>(bytes);
        same_as_serde::<Asks<1>>(bytes);
        same_as_serde::<Asks<2>>(bytes);
        same_as_serde::<Asks<3>>(bytes);
        same_as_serde::<Asks<4>>(bytes);
        same_as_serde::<Asks<5>>(bytes);
        same_as_serde::<Asks<6>>(bytes);
        same_as_serde::<Asks<7>>(bytes);
        same_as_serde::<Asks<8>>(bytes);
        same_as_serde::<Asks<9>>(bytes);
        same_as_serde::<Asks<10>>(bytes);
        same_as_serde::<Asks<11>>(bytes);
        same_as_serde::<Asks<12>>(bytes);
        same_as_serde::<Asks<13>>(bytes);
        same_as_serde::<Asks<14>>(bytes);
        same_as_serde::<Asks<15>>(bytes);
        same_as_serde::<Asks<16>>(bytes);
        same_as_serde::<Asks<17>>(bytes);
        same_as_serde::<String>(bytes);
        same_as_serde::<Option<String>>(bytes);
        same_as_serde::<Cow<'static, str>>(bytes);
        same_as_serde::<Box<str>>(bytes);
        same_as_serde::<char>(bytes);
        same_as_serde::<Theme>(bytes);
        same_as_serde::<Option<Theme>>(bytes);
        same_as_serde::<Name>(bytes);
        same_as_serde::<serde_json::Value>(bytes);
        same_as_serde::<std::net::IpAddr>(bytes);
        same_as_serde::<u64>(bytes);
        same_as_serde::<Option<u64>>(bytes);
        same_as_serde::<Vec<u8>>(bytes);
        same_as_serde::<()>(bytes);
        same_as_serde::<Pair>(bytes);
        same_as_serde::<(String,)>(bytes);
        let ours = JsonCodec::decode::<Box<RawValue>>(bytes).map(|raw| raw.get().to_owned());
        let theirs = serde_json::from_slice::<Box<RawValue>>(bytes).map(|raw| raw.get().to_owned());
        assert_eq!(ours.ok(), theirs.ok());
    }

    #[test]
    fn plain_strings_decode_as_through_serde() {
        for bytes in [
            &b"\"dark\""[..],
            b"\"Dark\"",
            b"\"light\"",
            b"\"Custom\"",
            b"\"\"",
            b"\"x\"",
            b"\"\xc3\xa9\"",
            b"\"127.0.0.1\"",
            b"\"::1\"",
            b"\"12\"",
            b"\"null\"",
            b"\"a\\nb\"",
            b"\"a\"b\"",
            b"\"a\tb\"",
            b"\"\xff\"",
            b"\"",
            b"\"dark\" ",
            b" \"dark\"",
            b"12",
            b"null",
            b"{\"a\":1}",
        ] {
            decodes_as_serde(bytes);
        }
        assert_eq!(plain_string(b"\"dark\""), Some("dark"));
        assert_eq!(plain_string(b"\"a\\nb\""), None);
        assert_eq!(plain_string(b"\"a\x01b\""), None);
        assert_eq!(plain_string(b"\""), None);
        // Each special byte at each place of a word and of the tail, beside every other byte.
        for len in 1..=19 {
            for at in 0..len {
                for byte in 0..=u8::MAX {
                    let mut text = vec![b'a'; len];
                    text[at] = byte;
                    let plain = (0x20..0x80).contains(&byte) && byte != b'"' && byte != b'\\';
                    let quoted = [&b"\""[..], &text, b"\""].concat();
                    assert_eq!(plain_string(&quoted).is_some(), plain, "{len} {at} {byte}");
                }
            }
        }
    }

    proptest! {
        #[test]
        fn decodes_strings_and_bytes_as_serde(
            text in "\\PC{0,40}|[\\x00-\\x7f]{0,40}|[a-zA-Z\"\\\\]{0,8}",
            raw in prop::collection::vec(any::<u8>(), 0..12),
        ) {
            decodes_as_serde(&serde_json::to_vec(&text).unwrap());
            decodes_as_serde(format!("\"{text}\"").as_bytes());
            let mut quoted = vec![b'"'];
            quoted.extend_from_slice(&raw);
            quoted.push(b'"');
            decodes_as_serde(&quoted);
            decodes_as_serde(&raw);
        }

        #[test]
        fn agrees_with_serde_on_envelopes_and_their_mutations(
            fields in prop::collection::vec(("[a-zé_]{1,8}", json_value()), 0..5),
            max_age in prop::option::of(any::<u64>()),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 0..4),
        ) {
            let values: Vec<(String, String)> = fields
                .iter()
                .map(|(name, value)| (name.clone(), serde_json::to_string(value).unwrap()))
                .collect();
            let pairs: Vec<(&str, &str)> =
                values.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            let mut bytes = envelope(max_age, &pairs);
            prop_assert!(agree(&bytes), "our own encoding is read directly");
            for (at, byte, kind) in edits {
                let at = at.index(bytes.len() + 1);
                match kind {
                    0 if at < bytes.len() => bytes[at] = byte,
                    1 => bytes.insert(at, byte),
                    _ if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ => {}
                }
                agree(&bytes);
            }
        }

        #[test]
        fn writes_envelopes_as_serde_json_would(
            fields in prop::collection::vec(
                (prop_oneof!["\\PC{0,8}", "[\\x00-\\x7f]{0,8}"], json_value()),
                0..5,
            ),
            created in any::<u64>(),
            updated in any::<u64>(),
            max_age in prop::option::of(any::<u64>()),
        ) {
            let fields: Vec<(&'static str, Vec<u8>)> = fields
                .into_iter()
                .map(|(name, value)| {
                    let name: &'static str = Box::leak(name.into_boxed_str());
                    (name, serde_json::to_vec(&value).unwrap())
                })
                .collect();
            let meta = Metadata { created, updated, max_age };
            let ours = JsonCodec::encode_record(RecordRef {
                metadata: &meta,
                encoded: &fields,
                kept: &[],
            })
            .unwrap();
            prop_assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(reference_envelope(&meta, &fields)).unwrap()
            );
        }
    }
}
