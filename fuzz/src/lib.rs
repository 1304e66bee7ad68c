//! Fixtures shared by the fuzz targets and the corpus generator: fixed keys and clock, the
//! session types, the app (a handler behind the real `SessionLayer`) and a one-thread runtime.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arbitrary::Arbitrary;
use http::header::{COOKIE, SET_COOKIE};
use http::request::Parts;
use http::{HeaderValue, Request, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use session_runtime::codec::{Codec, CodecError};
use session_runtime::config::Clock;
use session_runtime::extract::SessionRejection;
use session_runtime::store::{EncryptedCookieStore, Key};
use session_runtime::{Session, SessionConfig, SessionLayer, TypedSession};
use tower::{Layer as _, ServiceExt as _};

/// The fixed "current time" of every fuzz run (2026-01-01T00:00:00Z), so sealed seeds never
/// expire.
pub const NOW: u64 = 1_767_225_600_000;
/// The primary key of the encrypted store (id [`KEY_ID`]).
pub const KEY: [u8; 32] = *b"session-fuzz-fixed-primary-key!!";
/// The primary key's id.
pub const KEY_ID: u8 = 2;
/// A retired key the store still opens with (id [`OLD_KEY_ID`]): cookies sealed with it are
/// re-sealed.
pub const OLD_KEY: [u8; 32] = *b"session-fuzz-fixed-retired-key!!";
/// The retired key's id.
pub const OLD_KEY_ID: u8 = 1;

/// A clock stopped at a fixed time.
#[derive(Debug)]
pub struct FixedClock(pub u64);

impl Clock for FixedClock {
    fn now_millis(&self) -> u64 {
        self.0
    }
}

/// The default configuration with the clock stopped at `now`.
pub fn config_at(now: u64) -> SessionConfig {
    SessionConfig::default().with_clock(Arc::new(FixedClock(now)))
}

/// The encrypted store: seals with [`KEY`], also opens [`OLD_KEY`].
pub fn encrypted_store() -> EncryptedCookieStore {
    EncryptedCookieStore::new(Key::from_bytes(KEY_ID, &KEY).unwrap())
        .with_fallback_key(Key::from_bytes(OLD_KEY_ID, &OLD_KEY).unwrap())
        .unwrap()
}

/// A store that seals with the retired key (for seeds that must be re-sealed on load).
pub fn retired_store() -> EncryptedCookieStore {
    EncryptedCookieStore::new(Key::from_bytes(OLD_KEY_ID, &OLD_KEY).unwrap())
}

/// A codec with JSON values and the default binary envelope (`codec/framing.rs`).
#[derive(Debug)]
pub struct Framed;

impl Codec for Framed {
    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
        serde_json::to_vec(value).map_err(CodecError::encode)
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
        serde_json::from_slice(bytes).map_err(CodecError::decode)
    }
}

/// A JSON session with a `__Host-` name and an idle timeout.
#[derive(Session, Debug, Clone, PartialEq)]
#[session(cookie_name = "__Host-s", max_age = 3600)]
pub struct Cart {
    pub user: Option<u64>,
    pub items: Vec<String>,
    #[session(alias = "remark")]
    pub note: String,
}

/// A `MessagePack` session with an absolute timeout.
#[derive(Session, Debug, Clone, PartialEq)]
#[session(cookie_name = "m", codec = "msgpack", absolute_max_age = 86400)]
pub struct Prefs {
    pub theme: String,
    pub count: u32,
    pub flags: BTreeMap<String, bool>,
}

/// A session with the default binary envelope.
#[derive(Session, Debug, Clone, PartialEq)]
#[session(cookie_name = "f", codec = Framed)]
pub struct Tagged {
    pub level: i64,
    pub tags: Vec<String>,
}

/// The single-threaded runtime every target drives its futures on.
pub fn block_on<F: Future>(future: F) -> F::Output {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
        })
        .block_on(future)
}

/// What the F1 handler does, carried in the request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct Action(pub u8);

/// Number of distinct handler actions.
pub const ACTIONS: u8 = 8;

async fn act(action: u8, parts: &Parts) -> Result<StatusCode, SessionRejection> {
    match action % ACTIONS {
        0 => {
            let cart = TypedSession::<Cart>::from_parts(parts).await?;
            std::hint::black_box(cart.data());
        }
        1 => {
            if let Some(prefs) = TypedSession::<Prefs>::peek(parts).await? {
                std::hint::black_box(prefs.data());
            }
        }
        2 => {
            let mut cart = TypedSession::<Cart>::from_parts(parts).await?;
            cart.items_mut().push("apple".to_owned());
        }
        3 => {
            let mut cart = TypedSession::<Cart>::from_parts(parts).await?;
            cart.invalidate();
        }
        4 => {
            let mut cart = TypedSession::<Cart>::from_parts(parts).await?;
            cart.regenerate();
            cart.set_user(Some(7));
        }
        5 => {
            let mut cart = TypedSession::<Cart>::from_parts(parts).await?;
            cart.set_max_age(Duration::from_secs(u64::from(action) * 977));
            if cart.save().await.is_err() {
                return Ok(StatusCode::INTERNAL_SERVER_ERROR);
            }
        }
        6 => {
            let cart = TypedSession::<Cart>::from_parts(parts).await?;
            std::hint::black_box(cart.items());
            let mut prefs = TypedSession::<Prefs>::from_parts(parts).await?;
            *prefs.count_mut() = prefs.count().wrapping_add(1);
            let mut tagged = TypedSession::<Tagged>::from_parts(parts).await?;
            tagged.tags_mut().push("t".to_owned());
        }
        _ => {
            if let Some(tagged) = TypedSession::<Tagged>::peek(parts).await? {
                std::hint::black_box(tagged.level());
            }
            let prefs = TypedSession::<Prefs>::from_parts(parts).await?;
            std::hint::black_box(prefs.flags());
        }
    }
    Ok(StatusCode::OK)
}

async fn handle(request: Request<()>) -> Result<Response<()>, Infallible> {
    let (parts, ()) = request.into_parts();
    let action = parts.extensions.get::<Action>().map_or(0, |a| a.0);
    let status = act(action, &parts)
        .await
        .unwrap_or_else(|rejection| rejection.status());
    let mut response = Response::new(());
    *response.status_mut() = status;
    Ok(response)
}

/// Sends one request with the given `Cookie` header values through `layer` and the F1 handler.
/// Header values that HTTP cannot carry are dropped, as a server's parser would.
pub fn send(layer: &SessionLayer, cookies: &[&[u8]], action: u8) -> Response<()> {
    let mut request = Request::new(());
    for value in cookies {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            request.headers_mut().append(COOKIE, value);
        }
    }
    request.extensions_mut().insert(Action(action));
    let service = layer.layer(tower::service_fn(handle));
    block_on(service.oneshot(request)).unwrap()
}

/// The `name=value` pairs of a response's `Set-Cookie` headers.
pub fn set_cookies<B>(response: &Response<B>) -> Vec<(String, String)> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|value| {
            let text = value.to_str().expect("Set-Cookie is ASCII");
            let cookie = cookie::Cookie::parse(text).expect("Set-Cookie parses");
            (cookie.name().to_owned(), cookie.value().to_owned())
        })
        .collect()
}

macro_rules! payload {
    ($(#[$doc:meta])* $name:ident, $cookie:literal, $codec:tt) => {
        $(#[$doc])*
        #[derive(Session, Arbitrary, Debug, Clone, PartialEq)]
        #[session(cookie_name = $cookie, codec = $codec)]
        pub struct $name {
            pub text: String,
            pub bytes: Vec<u8>,
            pub number: Option<u64>,
            pub signed: i64,
            pub flag: bool,
            pub map: BTreeMap<String, u32>,
            pub list: Vec<Option<String>>,
            pub pairs: Vec<(u8, String)>,
            pub character: char,
            pub nothing: (),
            #[session(rename = "ünïcode name")]
            pub renamed: Option<Vec<i32>>,
        }
    };
}

payload!(
    /// F3's session data, JSON envelope.
    JsonData,
    "__Host-j",
    "json"
);
payload!(
    /// F3's session data, `MessagePack` envelope.
    MsgpackData,
    "__Secure-m",
    "msgpack"
);
payload!(
    /// F3's session data, binary framing envelope.
    FramedData,
    "f",
    Framed
);
