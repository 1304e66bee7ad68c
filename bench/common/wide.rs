//! Our handlers of the scaling rows (`session_bench::Wide`), shared by the load benchmark and
//! the in-process workload (`examples/requests.rs`).

use axum::http::StatusCode;
use session_bench::{Wide, WideHead, WideVisits};
use session_runtime::TypedSession;

/// The filler strings' length on Redis: 39 of them make about 4 KB.
pub(crate) const WIDE_REDIS_LEN: usize = 100;
/// The filler strings' length in the cookies, which must stay under the browsers' 4,096 bytes
/// once sealed: about 2 KB of data.
pub(crate) const WIDE_COOKIE_LEN: usize = 50;

/// Ours, through the whole type: a new session gets every field; then each write changes
/// `visits` only, but every request loads all 40 fields.
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

/// Ours, through the whole type: reads two fields of the 40 it loads.
pub(crate) async fn wide_read(session: TypedSession<Wide>) -> Result<String, StatusCode> {
    wide_answer(*session.visits(), session.f01())
}

/// Ours, through the view [`WideVisits`]: a new session is turned into the whole type and gets
/// every field (no store I/O: nothing is stored yet); then each write loads and changes
/// `visits` alone.
pub(crate) async fn wide_view_visit<const LEN: usize>(
    mut session: TypedSession<WideVisits>,
) -> Result<String, StatusCode> {
    if session.is_new() {
        let mut wide = session
            .into_root()
            .await
            .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
        wide.data_mut().fill(LEN);
        *wide.visits_mut() += 1;
        return Ok(wide.visits().to_string());
    }
    *session.visits_mut() += 1;
    Ok(session.visits().to_string())
}

/// Ours, through the view [`WideHead`]: loads and reads the two fields.
pub(crate) async fn wide_view_read(session: TypedSession<WideHead>) -> Result<String, StatusCode> {
    wide_answer(*session.visits(), session.f01())
}
