//! The `PrivateCookieJar` peer (axum-extra): its handlers for the counter and for the scaling
//! rows, shared by the load benchmark (`examples/load.rs`) and the in-process workload
//! (`examples/requests.rs`).

use axum::Router;
use axum::extract::FromRef;
use axum::http::StatusCode;
use axum::routing::get;
use axum_extra::extract::cookie::{Cookie, Key as JarKey, PrivateCookieJar, SameSite};
use session_bench::WideData;

use crate::wide::{WIDE_COOKIE_LEN, wide_answer};

#[derive(Clone)]
struct JarState {
    key: JarKey,
}

impl FromRef<JarState> for JarKey {
    fn from_ref(state: &JarState) -> Self {
        state.key.clone()
    }
}

fn jar_visits(jar: &PrivateCookieJar) -> u64 {
    jar.get("visits")
        .and_then(|cookie| cookie.value().parse().ok())
        .unwrap_or(0)
}

async fn jar_visit(jar: PrivateCookieJar) -> (PrivateCookieJar, String) {
    let visits = jar_visits(&jar) + 1;
    let cookie = Cookie::build(("visits", visits.to_string()))
        .path("/")
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Lax);
    (jar.add(cookie), visits.to_string())
}

async fn jar_read(jar: PrivateCookieJar) -> String {
    jar_visits(&jar).to_string()
}

/// `PrivateCookieJar` holding the same data: one cookie, the JSON of [`WideData`].
fn jar_wide(jar: &PrivateCookieJar) -> Option<WideData> {
    jar.get("wide")
        .and_then(|cookie| serde_json::from_str(cookie.value()).ok())
}

async fn jar_wide_visit(jar: PrivateCookieJar) -> Result<(PrivateCookieJar, String), StatusCode> {
    let mut data = jar_wide(&jar).unwrap_or_else(|| {
        let mut data = WideData::default();
        data.fill(WIDE_COOKIE_LEN);
        data
    });
    data.visits += 1;
    let value = serde_json::to_string(&data).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    let cookie = Cookie::build(("wide", value))
        .path("/")
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Lax);
    Ok((jar.add(cookie), data.visits.to_string()))
}

async fn jar_wide_read(jar: PrivateCookieJar) -> Result<String, StatusCode> {
    let data = jar_wide(&jar).ok_or(StatusCode::INTERNAL_SERVER_ERROR)?;
    wide_answer(data.visits, &data.f01)
}

/// The jar's routes with a key of their own.
fn with_key(routes: Router<JarState>) -> Router {
    routes.with_state(JarState {
        key: JarKey::generate(),
    })
}

/// The jar's `GET /` (write) and `GET /read` routes: the counter, or with `wide` the scaling
/// rows' data (one cookie, the JSON of [`WideData`]).
pub(crate) fn app(wide: bool) -> Router {
    let routes = if wide {
        Router::new()
            .route("/", get(jar_wide_visit))
            .route("/read", get(jar_wide_read))
    } else {
        Router::new()
            .route("/", get(jar_visit))
            .route("/read", get(jar_read))
    };
    with_key(routes)
}
