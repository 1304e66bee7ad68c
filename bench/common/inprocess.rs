//! Sending requests through an axum app in process (no network), shared by the `request/*`
//! criterion group (`benches/micro.rs`), the callgrind workload (`examples/requests.rs`) and the
//! memory-per-session measurement (`examples/footprint.rs`).

use axum::Router;
use http::header::{COOKIE, SET_COOKIE};
use tower::ServiceExt as _;

/// Readies `app` for serving, as `axum::serve` does for each connection (`Router`'s make-service
/// calls `with_state(())`): its handlers become routes with their layers applied, once. Without
/// it a `Router` called as a `Service` converts the matched handler and applies its layers again
/// on every request (a boxed clone, a layer call and their allocations), which no server pays.
pub(crate) fn served(app: Router) -> Router {
    app.with_state(())
}

/// Sends one `GET path` through `app` on `runtime` and returns the response's first `Set-Cookie`
/// pair (`name=value`), if any. Panics on a status other than 2xx: a benchmark of failing
/// requests would measure the wrong thing.
pub(crate) fn send(
    runtime: &tokio::runtime::Runtime,
    app: &Router,
    path: &str,
    cookie: Option<&str>,
) -> Option<String> {
    let mut request = http::Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    let request = request
        .body(axum::body::Body::empty())
        .expect("valid request");
    let response = runtime
        .block_on(app.clone().oneshot(request))
        .expect("infallible");
    assert!(
        response.status().is_success(),
        "status {}",
        response.status()
    );
    response
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}
