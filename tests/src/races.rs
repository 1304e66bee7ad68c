//! Races every server-side store must win, shared by the store test files: 64 concurrent
//! requests changing 64 different fields of one session ([`sixty_four_fields`]), and a save
//! that loaded a session before a logout elsewhere ([`logout_races`]).
#![allow(
    clippy::missing_panics_doc,
    reason = "test support: panicking is how a race is reported lost"
)]

use std::sync::Arc;

use axum::Router;
use axum::extract::{Extension, Path};
use axum::routing::get;
use session_runtime::{Session, SessionLayer, TypedSession};
use tokio::sync::{Barrier, Notify};

use crate::server::{TestServer, cookie_value, raw_client, send, set_cookies};
use crate::suite::{Suite, app_with};

/// A session with 64 fields, for [`sixty_four_fields`].
#[derive(Session, Debug)]
#[session(cookie_name = "wide")]
#[allow(missing_docs, reason = "64 counters, named by number")]
pub struct Wide {
    f0: u64,
    f1: u64,
    f2: u64,
    f3: u64,
    f4: u64,
    f5: u64,
    f6: u64,
    f7: u64,
    f8: u64,
    f9: u64,
    f10: u64,
    f11: u64,
    f12: u64,
    f13: u64,
    f14: u64,
    f15: u64,
    f16: u64,
    f17: u64,
    f18: u64,
    f19: u64,
    f20: u64,
    f21: u64,
    f22: u64,
    f23: u64,
    f24: u64,
    f25: u64,
    f26: u64,
    f27: u64,
    f28: u64,
    f29: u64,
    f30: u64,
    f31: u64,
    f32: u64,
    f33: u64,
    f34: u64,
    f35: u64,
    f36: u64,
    f37: u64,
    f38: u64,
    f39: u64,
    f40: u64,
    f41: u64,
    f42: u64,
    f43: u64,
    f44: u64,
    f45: u64,
    f46: u64,
    f47: u64,
    f48: u64,
    f49: u64,
    f50: u64,
    f51: u64,
    f52: u64,
    f53: u64,
    f54: u64,
    f55: u64,
    f56: u64,
    f57: u64,
    f58: u64,
    f59: u64,
    f60: u64,
    f61: u64,
    f62: u64,
    f63: u64,
}

/// Sets field `i` of [`Wide`] through its generated setter; one arm per field.
macro_rules! set_field {
    ($s:ident, $i:expr, $($n:literal => $setter:ident),* $(,)?) => {
        match $i {
            $($n => { $s.$setter(1); })*
            _ => return "no such field",
        }
    };
}

async fn set_one(
    mut s: TypedSession<Wide>,
    Path(i): Path<usize>,
    Extension(barrier): Extension<Arc<Barrier>>,
) -> &'static str {
    barrier.wait().await; // every request has loaded before any writes
    set_field!(s, i,
        0 => set_f0, 1 => set_f1, 2 => set_f2, 3 => set_f3, 4 => set_f4, 5 => set_f5,
        6 => set_f6, 7 => set_f7, 8 => set_f8, 9 => set_f9, 10 => set_f10, 11 => set_f11,
        12 => set_f12, 13 => set_f13, 14 => set_f14, 15 => set_f15, 16 => set_f16,
        17 => set_f17, 18 => set_f18, 19 => set_f19, 20 => set_f20, 21 => set_f21,
        22 => set_f22, 23 => set_f23, 24 => set_f24, 25 => set_f25, 26 => set_f26,
        27 => set_f27, 28 => set_f28, 29 => set_f29, 30 => set_f30, 31 => set_f31,
        32 => set_f32, 33 => set_f33, 34 => set_f34, 35 => set_f35, 36 => set_f36,
        37 => set_f37, 38 => set_f38, 39 => set_f39, 40 => set_f40, 41 => set_f41,
        42 => set_f42, 43 => set_f43, 44 => set_f44, 45 => set_f45, 46 => set_f46,
        47 => set_f47, 48 => set_f48, 49 => set_f49, 50 => set_f50, 51 => set_f51,
        52 => set_f52, 53 => set_f53, 54 => set_f54, 55 => set_f55, 56 => set_f56,
        57 => set_f57, 58 => set_f58, 59 => set_f59, 60 => set_f60, 61 => set_f61,
        62 => set_f62, 63 => set_f63,
    );
    "ok"
}

async fn count(s: TypedSession<Wide>) -> String {
    (s.f0()
        + s.f1()
        + s.f2()
        + s.f3()
        + s.f4()
        + s.f5()
        + s.f6()
        + s.f7()
        + s.f8()
        + s.f9()
        + s.f10()
        + s.f11()
        + s.f12()
        + s.f13()
        + s.f14()
        + s.f15()
        + s.f16()
        + s.f17()
        + s.f18()
        + s.f19()
        + s.f20()
        + s.f21()
        + s.f22()
        + s.f23()
        + s.f24()
        + s.f25()
        + s.f26()
        + s.f27()
        + s.f28()
        + s.f29()
        + s.f30()
        + s.f31()
        + s.f32()
        + s.f33()
        + s.f34()
        + s.f35()
        + s.f36()
        + s.f37()
        + s.f38()
        + s.f39()
        + s.f40()
        + s.f41()
        + s.f42()
        + s.f43()
        + s.f44()
        + s.f45()
        + s.f46()
        + s.f47()
        + s.f48()
        + s.f49()
        + s.f50()
        + s.f51()
        + s.f52()
        + s.f53()
        + s.f54()
        + s.f55()
        + s.f56()
        + s.f57()
        + s.f58()
        + s.f59()
        + s.f60()
        + s.f61()
        + s.f62()
        + s.f63())
    .to_string()
}

async fn create(mut s: TypedSession<Wide>) -> &'static str {
    s.set_f0(0);
    "ok"
}

/// 64 requests on one session (of [`Wide`], behind `layer`) load, wait until all have loaded,
/// then each changes a different field; returns how many of the 64 changes landed (64 with
/// field-level writes; turn serialization off in `layer` to race them as other processes would).
pub async fn sixty_four_fields(layer: SessionLayer) -> u64 {
    let app = Router::new()
        .route("/set/{i}", get(set_one))
        .route("/count", get(count))
        .route("/create", get(create))
        .layer(Extension(Arc::new(Barrier::new(64))))
        .layer(layer);
    let server = TestServer::start(app).await;
    let c = raw_client();
    let (_, headers, _) = send(c.get(server.url("/create"))).await;
    let cookie = format!("wide={}", cookie_value(&headers, "wide").unwrap());
    let requests: Vec<_> = (0..64)
        .map(|i| {
            tokio::spawn(send(
                c.get(server.url(&format!("/set/{i}")))
                    .header("cookie", &cookie),
            ))
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.unwrap().0, 200);
    }
    let (_, _, body) = send(c.get(server.url("/count")).header("cookie", &cookie)).await;
    body.parse().unwrap()
}

async fn slow_write(
    mut s: TypedSession<Suite>,
    Extension(signals): Extension<Arc<(Notify, Notify)>>,
) -> &'static str {
    signals.0.notify_one(); // loaded
    signals.1.notified().await; // the logout has happened
    *s.visits_mut() += 1;
    "written"
}

/// Runs `rounds` races of a save against a logout on the suite's app behind `layer`: a request
/// loads the session, a logout ends it, then the request saves. Returns how many sessions came
/// back (0 when saves never resurrect a deleted record); every late save must answer without a
/// cookie.
pub async fn logout_races(layer: SessionLayer, rounds: usize) -> usize {
    let signals = Arc::new((Notify::new(), Notify::new()));
    let routes = Router::new()
        .route("/slow-write", get(slow_write))
        .layer(Extension(Arc::clone(&signals)));
    let server = TestServer::start(app_with(layer, routes)).await;
    let c = raw_client();
    let mut resurrected = 0;
    for _ in 0..rounds {
        let (_, headers, _) = send(c.post(server.url("/login?user=1"))).await;
        let id = cookie_value(&headers, "suite").unwrap();
        let cookie = format!("suite={id}");
        let writer = tokio::spawn(send(
            c.get(server.url("/slow-write")).header("cookie", &cookie),
        ));
        signals.0.notified().await;
        let (status, _, _) = send(c.post(server.url("/logout")).header("cookie", &cookie)).await;
        assert_eq!(status, 204);
        signals.1.notify_one();
        let (status, headers, body) = writer.await.unwrap();
        assert_eq!((status, body.as_str()), (200, "written"));
        assert!(
            set_cookies(&headers).is_empty(),
            "the late save must not send a cookie"
        );
        let (_, _, who) = send(c.get(server.url("/whoami")).header("cookie", &cookie)).await;
        if who != "anonymous" {
            resurrected += 1;
        }
    }
    resurrected
}
