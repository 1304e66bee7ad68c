//! `codec = path::To::Codec`, including a generic codec type.

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;
use session_runtime::Session;
use session_runtime::codec::{Codec, CodecError, JsonCodec};

mod codecs {
    use super::*;

    /// JSON, pretty-printed.
    pub struct PrettyJson;

    impl Codec for PrettyJson {
        fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
            serde_json::to_vec_pretty(value).map_err(CodecError::encode)
        }

        fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
            serde_json::from_slice(bytes).map_err(CodecError::decode)
        }
    }

    /// Delegates to another codec.
    pub struct Wrapped<C>(PhantomData<C>);

    impl<C: Codec> Codec for Wrapped<C> {
        fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
            C::encode(value)
        }

        fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
            C::decode(bytes)
        }
    }
}

#[derive(Session)]
#[session(codec = codecs::PrettyJson)]
pub struct Prefs {
    tags: Vec<String>,
}

#[derive(Session)]
#[session(codec = crate::codecs::Wrapped<JsonCodec>, max_age = 60)]
pub struct Cart {
    items: Vec<u64>,
}

fn main() {
    let prefs = Prefs {
        tags: vec!["a".to_owned()],
    };
    assert_eq!(prefs.encode_field(0).unwrap(), b"[\n  \"a\"\n]");
    assert_eq!(Cart::new_default().encode_field(0).unwrap(), b"[]");
    assert_eq!(Cart::MAX_AGE, Some(60));
}
