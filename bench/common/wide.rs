//! Our handlers of the scaling rows (`session_bench::Wide`), shared by the load benchmark and
//! the in-process workload (`examples/requests.rs`).

use axum::http::StatusCode;
use session_bench::Wide;
use session_runtime::TypedSession;

/// The filler strings' length on Redis: 39 of them make about 4 KB.
pub(crate) const WIDE_REDIS_LEN: usize = 100;
/// The filler strings' length in the cookies, which must stay under the browsers' 4,096 bytes
/// once sealed: about 2 KB of data.
pub(crate) const WIDE_COOKIE_LEN: usize = 50;

/// Ours: a new session gets every field; then each write changes `visits` only.
pub(crate) async fn wide_visit<const LEN: usize>(mut session: TypedSession<Wide>) -> String {
    if session.is_new() {
        session.data_mut().fill(LEN);
    }
    *session.visits_mut() += 1;
    session.visits().to_string()
}

/// The answer of a wide read: the counter, once the filler read is there (a read reads two
/// fields, and the harness checks the counter).
pub(crate) fn wide_answer(visits: u64, f01: &str) -> Result<String, StatusCode> {
    if f01.is_empty() {
        return Err(StatusCode::INTERNAL_SERVER_ERROR);
    }
    Ok(visits.to_string())
}

/// Ours: reads two fields.
pub(crate) async fn wide_read(session: TypedSession<Wide>) -> Result<String, StatusCode> {
    wide_answer(*session.visits(), session.f01())
}
