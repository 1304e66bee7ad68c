//! The middleware service: gives each request a place to hand sessions back, then saves them
//! once the inner service has produced its response.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::header::{CACHE_CONTROL, SET_COOKIE, VARY};
use http::{HeaderValue, Request, Response, StatusCode};
use tower_service::Service;

use crate::config::SessionConfig;
use crate::cookie_header::{CookieAction, render};
use crate::error::Error;
use crate::execute::{execute, execute_sealed};
use crate::plan::Plan;
use crate::request::{List, Pending, RequestSessions};
use crate::shared::Shared;
use crate::store::erased::BoxFuture;
use crate::store::{Immediate, StoreError};

/// The middleware that [`SessionLayer`](crate::SessionLayer) wraps around a service.
pub struct SessionService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> SessionService<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        Self { inner, shared }
    }
}

impl<S: Clone> Clone for SessionService<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for SessionService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionService")
            .field("inner", &self.inner)
            .field("shared", &self.shared)
            .finish()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let sessions = Arc::new(RequestSessions::new(Arc::clone(&self.shared)));
        request.extensions_mut().insert(Arc::clone(&sessions));
        ResponseFuture {
            state: State::Inner {
                future: self.inner.call(request),
                sessions: Some(sessions),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`SessionService`].
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Inner {
            #[pin]
            future: F,
            sessions: Option<Arc<RequestSessions>>,
        },
        Saving {
            future: BoxFuture<'static, Response<B>>,
        },
    }
}

impl<F, B> fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default + Send + 'static,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Inner { future, sessions } => {
                    let mut response = ready!(future.poll(cx))?;
                    let Some(sessions) = sessions.take() else {
                        return Poll::Ready(Ok(response));
                    };
                    let (pending, used) = sessions.close();
                    if used {
                        response
                            .headers_mut()
                            .append(VARY, HeaderValue::from_static("Cookie"));
                    }
                    if pending.is_empty() {
                        return Poll::Ready(Ok(response));
                    }
                    let shared = Arc::clone(&sessions.shared);
                    match plan_all(&pending, &shared) {
                        Err(error) => return Poll::Ready(Ok(save_failed(&error))),
                        Ok(plans) if plans.iter().all(Plan::is_empty) => {
                            for plan in plans.iter() {
                                if let Some(cookie) = plan.previous_cookie() {
                                    set_cookie(
                                        &mut response,
                                        plan.cookie_name(),
                                        cookie,
                                        &shared.config,
                                    );
                                }
                            }
                            return Poll::Ready(Ok(response));
                        }
                        Ok(plans) => {
                            if plans.iter().all(Plan::seals_only)
                                && let Some(store) = shared.store.immediate()
                            {
                                // A cookie store's saves, on a store that never waits: plain
                                // calls, no future at all.
                                return Poll::Ready(Ok(seal_all(
                                    plans, pending, store, &shared, response,
                                )));
                            }
                            if shared.store.immediate().is_some() {
                                // The memory and cookie stores never wait, so the saves finish
                                // in this one poll: no need to box their future. It is built
                                // where it is polled: it is large, and a move is a copy.
                                let mut future =
                                    std::pin::pin!(save_all(plans, pending, shared, response));
                                if let Poll::Ready(response) = future.as_mut().poll(cx) {
                                    return Poll::Ready(Ok(response));
                                }
                                tracing::error!(
                                    "a session store that never waits was pending; answering 500"
                                );
                                return Poll::Ready(Ok(internal_error()));
                            }
                            this.state.set(State::Saving {
                                future: Box::pin(save_all(plans, pending, shared, response)),
                            });
                        }
                    }
                }
                StateProj::Saving { future } => {
                    return future.as_mut().poll(cx).map(Ok);
                }
            }
        }
    }
}

fn plan_all(pending: &List<Box<dyn Pending>>, shared: &Shared) -> Result<List<Plan>, Error> {
    let mut plans = List::default();
    for pending in pending.iter() {
        plans.push(pending.plan(shared)?);
    }
    Ok(plans)
}

/// Executes the plans; `pending` is kept alive until the writes are done because it holds the
/// sessions' request locks.
async fn save_all<B: Default>(
    plans: List<Plan>,
    pending: List<Box<dyn Pending>>,
    shared: Arc<Shared>,
    response: Response<B>,
) -> Response<B> {
    let mut cookies = List::default();
    for plan in plans {
        let name = plan.cookie_name();
        match execute(plan, &shared).await {
            Ok(executed) => cookies.push((name, executed.cookie)),
            Err(error) => return save_failed(&error),
        }
    }
    drop(pending);
    with_cookies(response, &cookies, &shared.config)
}

/// [`save_all`] for plans that only seal records into cookies (see [`Plan::seals_only`]), on a
/// store that never waits: the same, without a future.
fn seal_all<B: Default>(
    plans: List<Plan>,
    pending: List<Box<dyn Pending>>,
    store: &dyn Immediate,
    shared: &Shared,
    response: Response<B>,
) -> Response<B> {
    let mut cookies = List::default();
    for plan in plans {
        let name = plan.cookie_name();
        match execute_sealed(plan, store, shared) {
            Ok(executed) => cookies.push((name, executed.cookie)),
            Err(error) => return save_failed(&error),
        }
    }
    drop(pending);
    with_cookies(response, &cookies, &shared.config)
}

/// The response with the executed plans' cookies.
fn with_cookies<B>(
    mut response: Response<B>,
    cookies: &List<(&'static str, Option<CookieAction>)>,
    config: &SessionConfig,
) -> Response<B> {
    for (name, cookie) in cookies.iter() {
        if let Some(cookie) = cookie {
            set_cookie(&mut response, name, cookie, config);
        }
    }
    response
}

fn set_cookie<B>(
    response: &mut Response<B>,
    name: &str,
    cookie: &CookieAction,
    config: &SessionConfig,
) {
    if let Ok(value) = HeaderValue::try_from(render(name, cookie, config)) {
        let headers = response.headers_mut();
        headers.append(SET_COOKIE, value);
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    } else {
        tracing::error!(
            cookie = name,
            "session cookie attributes are not a valid header; check the configured path and domain"
        );
    }
}

/// The response that replaces the handler's when a session cannot be saved, without any
/// `Set-Cookie`, so the client keeps its previous, still valid cookie: 503 when the store is
/// out (unreachable, timed out, or refusing writes for now: a replica, a cluster that is down),
/// which a retry may cure; 500 for everything else.
fn save_failed<B: Default>(error: &Error) -> Response<B> {
    let outage = matches!(
        error,
        Error::Store(StoreError::Unavailable(_) | StoreError::Timeout)
    );
    let mut response = internal_error();
    if outage {
        tracing::error!(
            error = error as &dyn std::error::Error,
            "session store unavailable; the session was not saved; answering 503"
        );
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    } else {
        tracing::error!(
            error = error as &dyn std::error::Error,
            "failed to save session; answering 500"
        );
    }
    response
}

/// A 500 without any `Set-Cookie`.
fn internal_error<B: Default>() -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
