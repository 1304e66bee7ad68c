//! Why a [`TypedSession`](crate::TypedSession) could not be extracted.

use http::StatusCode;

use crate::config::ConfigError;
use crate::store::StoreError;

/// Why a [`TypedSession`](crate::TypedSession) could not be extracted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionRejection {
    /// The route is not wrapped in a [`SessionLayer`](crate::SessionLayer).
    #[error("missing session layer; add `.layer(SessionLayer::new(store))` around this route")]
    MissingLayer,
    /// The store could not load the session. The client's cookie is left as it is.
    #[error("failed to load the session")]
    StoreUnavailable(#[source] StoreError),
    /// The same session type is already extracted and alive in this request.
    #[error(
        "session `{cookie_name}` is already extracted in this request; extract it once per handler, or drop the first before extracting again"
    )]
    AlreadyExtracted {
        /// The session type's cookie name.
        cookie_name: &'static str,
    },
    /// Another session type with the same cookie name (a view and the type it views, see
    /// `#[session(view_of = ...)]`) is already used in this request: both would write the one
    /// cookie. A handler (with its middleware) uses one type per cookie.
    #[error(
        "session cookie `{cookie_name}` is already used in this request by another session type (a view and the type it views share their cookie); extract one of them per request, and turn a view into its type with `into_root()`"
    )]
    CookieShared {
        /// The cookie name both types use.
        cookie_name: &'static str,
    },
    /// The layer's configuration does not suit this session type's cookie name.
    #[error("session layer misconfigured")]
    Misconfigured(#[source] ConfigError),
}

impl SessionRejection {
    /// Returns the status code the rejection answers with: 503 for a store outage, 500 for
    /// programming errors.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::MissingLayer
            | Self::AlreadyExtracted { .. }
            | Self::CookieShared { .. }
            | Self::Misconfigured(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Returns the body text the rejection answers with. It names no internals for outages.
    #[must_use]
    pub fn body_text(&self) -> String {
        match self {
            Self::StoreUnavailable(_) => "session store unavailable".to_owned(),
            other => other.to_string(),
        }
    }
}

#[cfg(feature = "axum")]
mod axum_impls {
    use axum_core::response::{IntoResponse, Response};
    use http::header::{CACHE_CONTROL, HeaderValue};

    use super::SessionRejection;

    impl IntoResponse for SessionRejection {
        fn into_response(self) -> Response {
            tracing::error!(
                error = &self as &dyn std::error::Error,
                "session extraction rejected"
            );
            let mut response = (self.status(), self.body_text()).into_response();
            response
                .headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
    }
}
