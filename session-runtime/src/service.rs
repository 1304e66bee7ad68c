//! The middleware service: gives each request a place to hand sessions back, then saves them
//! once the inner service has produced its response.

use std::any::{Any, TypeId};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, ready};

use http::header::{CACHE_CONTROL, SET_COOKIE, VARY};
use http::{HeaderValue, Request, Response, StatusCode};
use tower_service::Service;

use crate::config::{ConfigError, SessionConfig};
use crate::error::Error;
use crate::lifecycle::{self, CookieAction, Inner, Plan};
use crate::lock::Locks;
use crate::session::Session;
use crate::store::{BoxFuture, DynStore};

/// What the layer shares with every request: the store and the configuration.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn DynStore>,
    pub(crate) config: SessionConfig,
    pub(crate) locks: Arc<Locks>,
    /// The first cookie name `config` was found valid for (see [`Shared::validate_for`]).
    validated: OnceLock<&'static str>,
}

impl Shared {
    pub(crate) fn new(store: Arc<dyn DynStore>, config: SessionConfig, locks: Arc<Locks>) -> Self {
        Self {
            store,
            config,
            locks,
            validated: OnceLock::new(),
        }
    }

    /// [`SessionConfig::validate_for`] for `cookie_name`. The configuration never changes, so a
    /// success is remembered for the first cookie name (nearly every app has one session type)
    /// and not checked again on every request; other names and failures are checked each time.
    pub(crate) fn validate_for(&self, cookie_name: &'static str) -> Result<(), ConfigError> {
        if self
            .validated
            .get()
            .is_some_and(|name| *name == cookie_name)
        {
            return Ok(());
        }
        self.config.validate_for(cookie_name)?;
        let _ = self.validated.set(cookie_name);
        Ok(())
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A session handed back by its `TypedSession` when the handler dropped it.
pub(crate) trait Pending: Send + 'static {
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
    fn plan(&self, shared: &Shared) -> Result<Plan, Error>;
    fn is_dirty(&self) -> bool;
    fn cookie_name(&self) -> &'static str;
}

impl<T: Session> Pending for Inner<T> {
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
    fn plan(&self, shared: &Shared) -> Result<Plan, Error> {
        Inner::plan(self, shared)
    }
    fn is_dirty(&self) -> bool {
        Inner::is_dirty(self) || self.delete.is_some() || self.regenerate || self.remove_cookie
    }
    fn cookie_name(&self) -> &'static str {
        T::COOKIE_NAME
    }
}

enum Slot {
    /// A `TypedSession` of this type is alive in the handler.
    CheckedOut,
    /// The handler dropped it; its state waits here for a re-extraction or the final save.
    Returned(Box<dyn Pending>),
}

/// The per-request place where sessions are checked out and handed back, one slot per session
/// type. It lives in the request's extensions.
pub(crate) struct RequestSessions {
    pub(crate) shared: Arc<Shared>,
    slots: Mutex<Slots>,
}

#[derive(Default)]
struct Slots {
    /// Set when the response has been taken: sessions handed back later are too late.
    closed: bool,
    list: List<(TypeId, Slot)>,
}

/// A list that keeps its first item inline: nearly every request uses one session type, and
/// then the slots, the sessions to save, their plans and their cookies need no heap
/// allocation.
pub(crate) struct List<T> {
    first: Option<T>,
    rest: Vec<T>,
}

impl<T> Default for List<T> {
    fn default() -> Self {
        Self {
            first: None,
            rest: Vec::new(),
        }
    }
}

impl<T> List<T> {
    fn push(&mut self, item: T) {
        if self.first.is_none() {
            self.first = Some(item);
        } else {
            self.rest.push(item);
        }
    }

    fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.first.iter().chain(&self.rest)
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.first.iter_mut().chain(&mut self.rest)
    }

    /// Keeps the items `keep` accepts, in order.
    fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        self.rest.retain(&mut keep);
        if self.first.as_ref().is_some_and(|first| !keep(first)) {
            self.first = (!self.rest.is_empty()).then(|| self.rest.remove(0));
        }
    }
}

impl<T> IntoIterator for List<T> {
    type Item = T;
    type IntoIter = std::iter::Chain<std::option::IntoIter<T>, std::vec::IntoIter<T>>;

    fn into_iter(self) -> Self::IntoIter {
        self.first.into_iter().chain(self.rest)
    }
}

impl<T> FromIterator<T> for List<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        let mut items = items.into_iter();
        Self {
            first: items.next(),
            rest: items.collect(),
        }
    }
}

/// The outcome of asking for a session type's slot.
pub(crate) enum Checkout<T: Session> {
    /// No session of this type was used yet in this request: load it. `may_wait` is false when
    /// the request already uses another session, whose lock it may hold.
    Load { may_wait: bool },
    /// The handler (or a middleware) used it before and handed it back.
    Returned(Box<Inner<T>>),
    /// It is checked out right now.
    Busy,
}

impl RequestSessions {
    fn lock(&self) -> MutexGuard<'_, Slots> {
        // Every critical section is a single push, swap or take: a panic cannot leave it torn.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn checkout<T: Session>(&self) -> Checkout<T> {
        let mut slots = self.lock();
        let key = TypeId::of::<T>();
        let found = slots.list.iter_mut().find(|(id, _)| *id == key);
        match found {
            None => {
                // A request that already uses another session may hold that session's lock, so it
                // must not wait for this one (see `Inner::load`).
                let may_wait = slots.list.is_empty();
                slots.list.push((key, Slot::CheckedOut));
                Checkout::Load { may_wait }
            }
            Some((_, Slot::CheckedOut)) => Checkout::Busy,
            Some((_, slot)) => match std::mem::replace(slot, Slot::CheckedOut) {
                Slot::Returned(pending) => match pending.into_any().downcast::<Inner<T>>() {
                    Ok(inner) => Checkout::Returned(inner),
                    // The slot is keyed by `TypeId::of::<T>()`, so this cannot happen; loading
                    // afresh is the safe answer if it ever did.
                    Err(_) => Checkout::Load { may_wait: false },
                },
                Slot::CheckedOut => Checkout::Busy,
            },
        }
    }

    /// Forgets a checkout that produced no session (a failed load, or a peek that found none).
    pub(crate) fn cancel<T: Session>(&self) {
        let key = TypeId::of::<T>();
        self.lock().list.retain(|(id, _)| *id != key);
    }

    pub(crate) fn give_back(&self, key: TypeId, pending: Box<dyn Pending>) {
        let mut slots = self.lock();
        if slots.closed {
            drop(slots);
            if pending.is_dirty() {
                tracing::error!(
                    cookie = pending.cookie_name(),
                    "session changed after the response was sent; the change was not saved; drop the session before the handler returns"
                );
            }
            return;
        }
        if let Some((_, slot)) = slots.list.iter_mut().find(|(id, _)| *id == key) {
            *slot = Slot::Returned(pending);
        }
    }

    /// Closes the request and returns the sessions to save, and whether any session was used.
    fn close(&self) -> (List<Box<dyn Pending>>, bool) {
        let mut slots = self.lock();
        slots.closed = true;
        let used = !slots.list.is_empty();
        let pending = std::mem::take(&mut slots.list)
            .into_iter()
            .filter_map(|(_, slot)| match slot {
                Slot::Returned(pending) => Some(pending),
                Slot::CheckedOut => None,
            })
            .collect();
        (pending, used)
    }
}

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
        let sessions = Arc::new(RequestSessions {
            shared: Arc::clone(&self.shared),
            slots: Mutex::new(Slots::default()),
        });
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
                            let immediate = shared.store.is_immediate();
                            let future = save_all(plans, pending, shared, response);
                            if immediate {
                                // The memory and cookie stores never wait, so the saves finish
                                // in this one poll: no need to box their future.
                                let mut future = std::pin::pin!(future);
                                if let Poll::Ready(response) = future.as_mut().poll(cx) {
                                    return Poll::Ready(Ok(response));
                                }
                                tracing::error!(
                                    "a session store that never waits was pending; answering 500"
                                );
                                return Poll::Ready(Ok(internal_error()));
                            }
                            this.state.set(State::Saving {
                                future: Box::pin(future),
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
    mut response: Response<B>,
) -> Response<B> {
    let mut cookies = List::default();
    for plan in plans {
        let name = plan.cookie_name();
        match lifecycle::execute(plan, &shared).await {
            Ok(executed) => cookies.push((name, executed.cookie)),
            Err(error) => return save_failed(&error),
        }
    }
    drop(pending);
    for (name, cookie) in cookies.iter() {
        if let Some(cookie) = cookie {
            set_cookie(&mut response, name, cookie, &shared.config);
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
    if let Ok(value) = HeaderValue::try_from(lifecycle::render(name, cookie, config)) {
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

/// The response that replaces the handler's when a session cannot be saved: a 500 without any
/// `Set-Cookie`, so the client keeps its previous, still valid cookie.
fn save_failed<B: Default>(error: &Error) -> Response<B> {
    tracing::error!(
        error = error as &dyn std::error::Error,
        "failed to save session; answering 500"
    );
    internal_error()
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
