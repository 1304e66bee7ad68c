//! The typed session handle, its axum extractor and the rejection.

use std::any::TypeId;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::request::Parts;

use crate::error::Error;
use crate::execute::execute;
use crate::lifecycle::Inner;
use crate::record::{SessionId, system_time};
#[doc(inline)]
pub use crate::rejection::SessionRejection;
use crate::request::{Checkout, RequestSessions};
use crate::session::{Session, SessionView};
use crate::state::Fields;

/// The session of type `T` for the current request: an axum extractor.
///
/// It dereferences to the accessors `#[derive(Session)]` generates (`field()`, `field_mut()`,
/// `set_field()`), with no trait to import. Changes are saved when the handler returns, for
/// every kind of response; nothing is written if nothing changed.
///
/// Extract it as `TypedSession<T>` (a store failure rejects the request with 503),
/// `Result<TypedSession<T>, SessionRejection>` to handle that yourself, or
/// `Option<TypedSession<T>>` to peek: `None` when the client has no live session, and nothing
/// is created.
///
/// # Examples
///
/// ```
/// use session_runtime::{Session, TypedSession};
///
/// #[derive(Session)]
/// #[session(cookie_name = "shop", max_age = 3600)]
/// struct Shop {
///     user_id: Option<u64>,
///     cart: Vec<String>,
/// }
///
/// async fn add(mut session: TypedSession<Shop>) -> String {
///     session.cart_mut().push("apple".to_owned()); // marks only `cart` as changed
///     format!("{} items", session.cart().len())
/// }
///
/// async fn login(mut session: TypedSession<Shop>) {
///     session.regenerate(); // new id, data kept, old record deleted
///     session.set_user_id(Some(42));
/// }
///
/// async fn logout(mut session: TypedSession<Shop>) {
///     session.invalidate(); // data cleared, record deleted, cookie removed
/// }
///
/// async fn has_session(session: Option<TypedSession<Shop>>) -> &'static str {
///     if session.is_some() { "yes" } else { "no" }
/// }
/// ```
pub struct TypedSession<T: Session> {
    inner: Option<Box<Inner<T>>>,
    request: Arc<RequestSessions>,
}

impl<T: Session> TypedSession<T> {
    /// Loads the session of type `T` for a request that went through a
    /// [`SessionLayer`](crate::SessionLayer). The axum extractor calls this; use it directly in
    /// a plain tower service.
    ///
    /// # Errors
    ///
    /// See [`SessionRejection`].
    pub async fn from_parts(parts: &Parts) -> Result<Self, SessionRejection> {
        // One `async fn` from here to the store's load: each layer of `async fn` that awaits
        // another adds about the other's size to the extractor's future, which axum allocates
        // for every request.
        let request = parts
            .extensions
            .get::<Arc<RequestSessions>>()
            .ok_or(SessionRejection::MissingLayer)?;
        let inner = match request.checkout::<T>() {
            Checkout::Busy => {
                return Err(SessionRejection::AlreadyExtracted {
                    cookie_name: T::COOKIE_NAME,
                });
            }
            Checkout::CookieTaken => {
                return Err(SessionRejection::CookieShared {
                    cookie_name: T::COOKIE_NAME,
                });
            }
            Checkout::Returned(inner) => inner,
            Checkout::Load { may_wait } => {
                match Inner::<T>::load(&parts.headers, &request.shared, may_wait).await {
                    Ok(inner) => Box::new(inner),
                    Err(rejection) => {
                        request.cancel::<T>();
                        return Err(rejection);
                    }
                }
            }
        };
        Ok(Self {
            inner: Some(inner),
            request: Arc::clone(request),
        })
    }

    /// Loads the session of type `T` only if the client has a live one.
    ///
    /// # Errors
    ///
    /// See [`SessionRejection`].
    pub async fn peek(parts: &Parts) -> Result<Option<Self>, SessionRejection> {
        let session = Self::from_parts(parts).await?;
        let inner = session.inner();
        if inner.is_new() && !inner.is_dirty() {
            // Dropping hands the fresh session back, for a later extractor of this request.
            drop(session);
            return Ok(None);
        }
        Ok(Some(session))
    }

    /// What the layer shares: the store and the configuration.
    pub(crate) fn shared(&self) -> &crate::shared::Shared {
        &self.request.shared
    }

    fn inner(&self) -> &Inner<T> {
        // `inner` is only `None` during `drop`.
        self.inner.as_deref().unwrap_or_else(unreachable_none)
    }

    fn inner_mut(&mut self) -> &mut Inner<T> {
        self.inner.as_deref_mut().unwrap_or_else(unreachable_none)
    }

    /// Returns the session's id, for server-side stores, once the session has been stored.
    /// Cookie stores have no id: the session lives in the cookie.
    ///
    /// The id is a bearer secret: do not log it.
    #[must_use]
    pub fn id(&self) -> Option<&SessionId> {
        self.inner().id()
    }

    /// Returns whether no stored session backs this one yet: the client had none, it expired, or
    /// it was invalidated.
    #[must_use]
    pub fn is_new(&self) -> bool {
        self.inner().is_new()
    }

    /// Returns when the session was created. It never changes, not even on `regenerate`.
    #[must_use]
    pub fn created(&self) -> SystemTime {
        system_time(self.inner().created())
    }

    /// Returns the idle timeout: set with [`TypedSession::set_max_age`], else the type's
    /// `max_age`, else the layer's default.
    #[must_use]
    pub fn max_age(&self) -> Duration {
        let inner = self.inner();
        Duration::from_secs(inner.idle_secs(&self.request.shared.config))
    }

    /// Sets this session's idle timeout ("remember me"). It is stored with the session and
    /// applies on every later request. Whole seconds; at least one.
    pub fn set_max_age(&mut self, max_age: Duration) {
        self.inner_mut().set_max_age(max_age.as_secs().max(1));
    }

    /// Gives the session a new id while keeping its data, and deletes the record under the old
    /// id: call it on login and on any privilege change (session fixation defence). The new
    /// record is written before the old one is deleted, so there is no moment where neither
    /// exists.
    pub fn regenerate(&mut self) {
        self.inner_mut().regenerate();
    }

    /// Ends the session: clears the data, deletes the stored record and removes the cookie.
    /// Data set afterwards in the same request starts a new session with a new id.
    pub fn invalidate(&mut self) {
        let now = self.request.shared.config.now();
        self.inner_mut().invalidate(now);
    }

    /// Returns the whole session struct.
    #[must_use]
    pub fn data(&self) -> &T {
        self.inner().fields().state().data()
    }

    /// Returns the whole session struct for changing, and marks every field as changed.
    pub fn data_mut(&mut self) -> &mut T {
        let state = self.inner_mut().fields_mut().state_mut();
        state.dirty_mut().insert_all(T::FIELD_NAMES.len());
        state.data_unmarked()
    }

    /// Replaces the whole session struct, marks every field as changed and returns the old one.
    pub fn replace(&mut self, data: T) -> T {
        std::mem::replace(self.data_mut(), data)
    }

    /// Returns whether anything will be saved: a changed field or a changed `max_age`.
    #[must_use]
    pub fn is_dirty(&self) -> bool {
        self.inner().is_dirty()
    }

    /// Saves now instead of after the handler, so the handler can answer a failure itself.
    ///
    /// On success the cookie is sent with the response. On failure the changes so far are
    /// dropped (the layer will not retry them, so it does not replace your response with a 500)
    /// and the client keeps its previous cookie.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails, [`Error::CookieTooLarge`] when the cookie would be
    /// too large, [`Error::Codec`] when a field does not encode.
    pub async fn save(&mut self) -> Result<(), Error> {
        let shared = Arc::clone(&self.request.shared);
        let result = match self.inner().plan(&shared) {
            Ok(plan) => execute(plan, &shared).await,
            Err(error) => Err(error),
        };
        let inner = self.inner_mut();
        match result {
            Ok(executed) => {
                inner.applied(executed);
                Ok(())
            }
            Err(error) => {
                inner.discard_writes();
                Err(error)
            }
        }
    }
}

impl<V: SessionView> TypedSession<V> {
    /// Turns this view (`#[session(view_of = ...)]`) into the session type it views, with every
    /// field: for a handler that finds it needs more than the view's fields.
    ///
    /// The view's changes so far carry over. A session that is not stored yet costs nothing (a
    /// new session is created with all its fields); a stored one costs one store round trip on
    /// a server store, which loads the other fields (a cookie store has them already). The
    /// session keeps its id, its request lock and its pending operations.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_runtime::{Error, Session, TypedSession};
    ///
    /// #[derive(Session)]
    /// struct Shop {
    ///     visits: u64,
    ///     cart: Vec<String>,
    /// }
    ///
    /// #[derive(Session)]
    /// #[session(view_of = Shop)]
    /// struct ShopVisits {
    ///     visits: u64,
    /// }
    ///
    /// async fn visit(mut session: TypedSession<ShopVisits>) -> Result<String, Error> {
    ///     if session.is_new() {
    ///         // The first visit fills the whole session; the others touch `visits` alone.
    ///         let mut shop = session.into_root().await?;
    ///         shop.set_cart(vec!["welcome gift".to_owned()]);
    ///         *shop.visits_mut() += 1;
    ///         return Ok(shop.visits().to_string());
    ///     }
    ///     *session.visits_mut() += 1;
    ///     Ok(session.visits().to_string())
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails to load the other fields, [`Error::Codec`] when a
    /// changed field does not encode. The view is then dropped with its changes, which the
    /// layer saves as usual.
    pub async fn into_root(self) -> Result<TypedSession<V::Root>, Error> {
        let parts = self.inner().root_parts(&self.request.shared).await?;
        let mut view = self;
        let inner = view.inner.take().unwrap_or_else(unreachable_none);
        let request = Arc::clone(&view.request);
        drop(view);
        request.retype(TypeId::of::<V>(), TypeId::of::<V::Root>());
        Ok(TypedSession {
            inner: Some(Box::new(inner.into_root(parts))),
            request,
        })
    }
}

#[cold]
fn unreachable_none<T>() -> T {
    // `inner` is only taken in `drop`.
    unreachable!("session state accessed after drop")
}

impl<T: Session> Deref for TypedSession<T> {
    type Target = T::Fields;

    fn deref(&self) -> &T::Fields {
        self.inner().fields()
    }
}

impl<T: Session> DerefMut for TypedSession<T> {
    fn deref_mut(&mut self) -> &mut T::Fields {
        self.inner_mut().fields_mut()
    }
}

impl<T: Session> Drop for TypedSession<T> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            self.request.give_back(TypeId::of::<T>(), inner);
        }
    }
}

impl<T: Session> fmt::Debug for TypedSession<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the id or the data: both may be secret.
        let inner = self.inner();
        f.debug_struct("TypedSession")
            .field("cookie_name", &T::COOKIE_NAME)
            .field("is_new", &inner.is_new())
            .field("dirty", inner.fields().state().dirty())
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "axum")]
mod axum_impls {
    use std::future::Future;

    use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
    use http::request::Parts;

    use super::{SessionRejection, TypedSession};
    use crate::session::Session;

    impl<S: Send + Sync, T: Session> FromRequestParts<S> for TypedSession<T> {
        type Rejection = SessionRejection;

        // The future of `from_parts` itself, not an `async` block around it: a block that only
        // awaits another future is one more layer of state, about as large again.
        fn from_request_parts(
            parts: &mut Parts,
            _: &S,
        ) -> impl Future<Output = Result<Self, Self::Rejection>> + Send {
            Self::from_parts(parts)
        }
    }

    impl<S: Send + Sync, T: Session> OptionalFromRequestParts<S> for TypedSession<T> {
        type Rejection = SessionRejection;

        fn from_request_parts(
            parts: &mut Parts,
            _: &S,
        ) -> impl Future<Output = Result<Option<Self>, Self::Rejection>> + Send {
            Self::peek(parts)
        }
    }
}
