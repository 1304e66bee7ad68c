//! The app behind `examples/migrate.rs`: a Rust server that shares its sessions with a Python
//! aiohttp server using `aiohttp_session`, through the `aiohttp-compat` stores. The Python twin
//! is `tests/aiohttp/app.py`; both serve the same routes, and the cross-server tests
//! (`tests/aiohttp_compat.rs`) drive them with one cookie jar.
//!
//! Routes: `GET /visit` increments `visits` and answers it; `GET /show` answers the session as
//! JSON (`{"new", "visits", "userName", "profile", "user"}`); `POST /name` sets `userName` to
//! the body; `POST /profile` sets `profile` to the JSON body; `POST /lang` sets `profile.lang`
//! to the body, in place; `POST /login?user=N` regenerates the session and sets `user`;
//! `POST /logout` invalidates.
//!
//! Keys the Python side keeps that [`Legacy`] does not declare survive Rust's writes: the
//! runtime writes back the record as loaded, overlaid with the fields a handler changed. Keys
//! inside a declared field's value are that field's business: [`Profile`] keeps the ones it does
//! not model in [`Profile::extra`], so `POST /lang` keeps them too.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use session_runtime::config::SessionConfig;
use session_runtime::store::StoreError;
use session_runtime::store::aiohttp::{
    AiohttpEncryptedCookieStore, AiohttpKeyError, AiohttpRedisStore, AiohttpSimpleCookieStore,
};
use session_runtime::{Session, SessionLayer, TypedSession};

/// The Python app's `session` dict, typed: each field is one key (renames apply).
#[derive(Session, Debug)]
#[session(cookie_name = "AIOHTTP_SESSION")]
pub struct Legacy {
    /// `session["visits"]`, incremented by `GET /visit`.
    pub visits: u64,
    /// `session["userName"]`, set by `POST /name`.
    #[session(rename = "userName")]
    pub user_name: String,
    /// `session["profile"]`, a nested value set by `POST /profile`.
    pub profile: Profile,
    /// `session["user"]`, set by `POST /login?user=N`.
    pub user: Option<u64>,
}

/// A nested session value.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(default)]
pub struct Profile {
    /// A language tag.
    pub lang: String,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// A nested object, or `null`.
    pub address: Option<Address>,
    /// The keys of the Python side's `profile` dict that this struct does not model (a
    /// `theme`, say), kept as JSON values so a change of `profile` by Rust does not drop them.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A value nested two levels deep.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(default)]
pub struct Address {
    /// The city.
    pub city: String,
    /// The postal code.
    pub zip: String,
}

/// Which aiohttp_session storage format the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `SimpleCookieStorage`: plain JSON in the cookie.
    Simple,
    /// `EncryptedCookieStorage`: a Fernet token in the cookie.
    Encrypted,
    /// `RedisStorage`: an id in the cookie, the JSON in Redis.
    Redis,
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "simple" => Ok(Self::Simple),
            "encrypted" => Ok(Self::Encrypted),
            "redis" => Ok(Self::Redis),
            other => Err(format!(
                "unknown store `{other}`; expected simple, encrypted or redis"
            )),
        }
    }
}

/// Why the app could not be built.
#[derive(Debug)]
pub enum SetupError {
    /// The Fernet key is invalid.
    Key(AiohttpKeyError),
    /// Redis could not be reached.
    Redis(StoreError),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key(_) => f.write_str("invalid Fernet key"),
            Self::Redis(_) => f.write_str("cannot connect to Redis"),
        }
    }
}

impl std::error::Error for SetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Key(error) => Some(error),
            Self::Redis(error) => Some(error),
        }
    }
}

/// Builds the session layer for `format`, with `max_age` as the idle timeout (and the Fernet
/// TTL), as the Python side's `max_age`. `fernet_key` is the Python side's Fernet key (URL-safe
/// base64 of 32 bytes), used by [`Format::Encrypted`]; `redis_url` by [`Format::Redis`].
///
/// # Errors
///
/// [`SetupError`] for a bad key or an unreachable Redis.
pub async fn layer(
    format: Format,
    fernet_key: &str,
    redis_url: &str,
    max_age: Duration,
    config: SessionConfig,
) -> Result<SessionLayer, SetupError> {
    let layer = match format {
        Format::Simple => SessionLayer::new(AiohttpSimpleCookieStore::new()),
        Format::Encrypted => SessionLayer::new(
            AiohttpEncryptedCookieStore::from_fernet_key(fernet_key)
                .map_err(SetupError::Key)?
                .with_ttl(max_age),
        ),
        Format::Redis => SessionLayer::new(
            AiohttpRedisStore::connect(redis_url)
                .await
                .map_err(SetupError::Redis)?,
        ),
    };
    Ok(layer.with_config(config.with_default_max_age(max_age)))
}

/// Returns the routes, without the session layer.
pub fn routes() -> Router {
    Router::new()
        .route("/visit", get(visit))
        .route("/show", get(show))
        .route("/name", post(name))
        .route("/profile", post(profile))
        .route("/lang", post(lang))
        .route("/login", post(login))
        .route("/logout", post(logout))
}

async fn visit(mut session: TypedSession<Legacy>) -> String {
    *session.visits_mut() += 1;
    session.visits().to_string()
}

async fn show(session: TypedSession<Legacy>) -> String {
    serde_json::json!({
        "new": session.is_new(),
        "visits": session.visits(),
        "userName": session.user_name(),
        "profile": session.profile(),
        "user": session.user(),
    })
    .to_string()
}

async fn name(mut session: TypedSession<Legacy>, body: String) -> StatusCode {
    session.set_user_name(body);
    StatusCode::NO_CONTENT
}

async fn profile(mut session: TypedSession<Legacy>, body: String) -> StatusCode {
    match serde_json::from_str(&body) {
        Ok(profile) => {
            session.set_profile(profile);
            StatusCode::NO_CONTENT
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

async fn lang(mut session: TypedSession<Legacy>, body: String) -> StatusCode {
    session.profile_mut().lang = body;
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct LoginQuery {
    user: u64,
}

async fn login(mut session: TypedSession<Legacy>, Query(query): Query<LoginQuery>) -> StatusCode {
    session.regenerate();
    session.set_user(Some(query.user));
    StatusCode::NO_CONTENT
}

async fn logout(mut session: TypedSession<Legacy>) -> StatusCode {
    session.invalidate();
    StatusCode::NO_CONTENT
}
