//! Layer configuration: cookie attributes, timeouts, rolling expiry and the clock.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use cookie::SameSite;

/// The source of time for expiry decisions. The default is the system clock; tests inject their
/// own to move time without sleeping.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use session_runtime::config::{Clock, SessionConfig};
///
/// #[derive(Debug, Default)]
/// struct TestClock(AtomicU64);
///
/// impl Clock for TestClock {
///     fn now_millis(&self) -> u64 {
///         self.0.load(Ordering::Relaxed)
///     }
/// }
///
/// let clock = Arc::new(TestClock::default());
/// let config = SessionConfig::default().with_clock(clock.clone());
/// clock.0.store(60_000, Ordering::Relaxed); // one minute later
/// ```
pub trait Clock: fmt::Debug + Send + Sync + 'static {
    /// Returns the current time in Unix milliseconds.
    fn now_millis(&self) -> u64;
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// How session cookies are written and how long sessions live. Shared by every session type the
/// layer serves; each type brings its own cookie name and timeouts from `#[derive(Session)]`.
///
/// Every setting has a safe default; see each `with_*` method.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use session_runtime::config::{SameSite, SessionConfig};
///
/// let config = SessionConfig::default()
///     .with_same_site(SameSite::Strict)
///     .with_default_max_age(Duration::from_secs(30 * 60))
///     .with_rolling(Some(Duration::from_secs(5 * 60)));
/// assert!(config.validate_for("__Host-id").is_ok());
/// ```
#[derive(Clone)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent cookie attributes and switches, each with its own builder"
)]
pub struct SessionConfig {
    pub(crate) secure: bool,
    pub(crate) http_only: bool,
    pub(crate) same_site: SameSite,
    pub(crate) path: String,
    pub(crate) domain: Option<String>,
    pub(crate) partitioned: bool,
    pub(crate) default_max_age: u64,
    pub(crate) rolling: Option<u64>,
    pub(crate) max_cookie_size: usize,
    pub(crate) serialize: bool,
    pub(crate) renewal: Option<Renewal>,
    pub(crate) clock: Arc<dyn Clock>,
}

/// Periodic id renewal of server-side sessions; see [`SessionConfig::with_renewal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Renewal {
    /// The renewal period, milliseconds.
    pub(crate) every: u64,
    /// How long a renewed-away id keeps leading to the session, milliseconds.
    pub(crate) grace: u64,
}

impl Renewal {
    /// Whether a session created at `created` and last saved at `updated` is due for a new id at
    /// `now`: a period boundary (`created + k × every`) lies after the last save.
    pub(crate) fn due(&self, created: u64, updated: u64, now: u64) -> bool {
        let period = |at: u64| at.saturating_sub(created) / self.every;
        period(now) > period(updated)
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            path: "/".to_owned(),
            domain: None,
            partitioned: false,
            default_max_age: 24 * 60 * 60,
            rolling: None,
            max_cookie_size: 4096,
            serialize: true,
            renewal: None,
            clock: Arc::new(SystemClock),
        }
    }
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("secure", &self.secure)
            .field("http_only", &self.http_only)
            .field("same_site", &self.same_site)
            .field("path", &self.path)
            .field("domain", &self.domain)
            .field("partitioned", &self.partitioned)
            .field("default_max_age", &self.default_max_age)
            .field("rolling", &self.rolling)
            .field("max_cookie_size", &self.max_cookie_size)
            .field("serialize", &self.serialize)
            .field("renewal", &self.renewal)
            .field("clock", &self.clock)
            .finish()
    }
}

/// A configuration that browsers would reject or silently ignore.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A `__Host-` or `__Secure-` cookie without `Secure`.
    #[error(
        "cookie `{name}` has a `{prefix}` prefix and needs `Secure`; drop `with_secure(false)` or rename the cookie"
    )]
    PrefixNeedsSecure {
        /// The cookie name.
        name: String,
        /// `__Host-` or `__Secure-`.
        prefix: &'static str,
    },
    /// A `__Host-` cookie with a `Domain` or a `Path` other than `/`.
    #[error("cookie `{name}` has a `__Host-` prefix and needs `Path=/` and no `Domain`")]
    HostPrefixScope {
        /// The cookie name.
        name: String,
    },
    /// `SameSite=None` or `Partitioned` without `Secure`.
    #[error(
        "`SameSite=None` and `Partitioned` cookies need `Secure`; browsers drop them otherwise"
    )]
    NeedsSecure,
    /// A timeout of zero.
    #[error("the default max age must be at least one second")]
    ZeroMaxAge,
    /// A renewal period of zero, or a grace period not shorter than the renewal period.
    #[error(
        "the id renewal period must be at least one millisecond and longer than its grace period"
    )]
    InvalidRenewal,
    /// A cookie name, path or domain with a character that would end the attribute or the header
    /// (`;`, `,`, whitespace, control characters; `=` too in a name), or an empty name or domain.
    #[error(
        "cookie {attribute} `{value}` is empty or has a character that is not allowed there (`;`, `,`, whitespace, control characters; `=` in a name); use plain ASCII"
    )]
    InvalidAttribute {
        /// `name`, `path` or `domain`.
        attribute: &'static str,
        /// The offending value, with control characters escaped.
        value: String,
    },
}

/// Whether `value` may stand in a `Set-Cookie` attribute of kind `attribute` without ending it
/// or the header: visible ASCII other than `;` and `,` (`=` is allowed in a path or domain,
/// never in a name), and not empty (a path must start with `/`).
fn attribute_ok(attribute: &str, value: &str) -> bool {
    // RFC 6265 `token` separators, besides `;` and `,` which no attribute may hold.
    const NAME_SEPARATORS: &[u8] = b"=\"\\()<>@:/[]?{}";
    let chars_ok = value.bytes().all(|b| {
        b.is_ascii_graphic()
            && b != b';'
            && b != b','
            && (attribute != "name" || !NAME_SEPARATORS.contains(&b))
    });
    chars_ok
        && match attribute {
            "path" => value.starts_with('/'),
            _ => !value.is_empty(),
        }
}

fn check_attribute(attribute: &'static str, value: &str) -> Result<(), ConfigError> {
    if attribute_ok(attribute, value) {
        Ok(())
    } else {
        Err(ConfigError::InvalidAttribute {
            attribute,
            value: value.escape_default().to_string(),
        })
    }
}

impl SessionConfig {
    /// Sets the `Secure` attribute. The default is `true`.
    ///
    /// # Security
    ///
    /// Without `Secure` the cookie travels over plain HTTP, where anyone on the path can copy it.
    /// Turn it off only for local development over `http://`.
    #[must_use]
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Sets the `HttpOnly` attribute. The default is `true`.
    ///
    /// # Security
    ///
    /// Without `HttpOnly`, script injected into a page can read the session cookie.
    #[must_use]
    pub fn with_http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// Sets the `SameSite` attribute. The default is [`SameSite::Lax`].
    #[must_use]
    pub fn with_same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self
    }

    /// Sets the `Path` attribute. The default is `/`.
    #[must_use]
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Sets the `Domain` attribute. The default is none: a host-only cookie.
    ///
    /// # Security
    ///
    /// A domain cookie is sent to every subdomain too; any of them can read or overwrite it.
    #[must_use]
    pub fn with_domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Sets the `Partitioned` attribute (CHIPS). The default is `false`.
    #[must_use]
    pub fn with_partitioned(mut self, partitioned: bool) -> Self {
        self.partitioned = partitioned;
        self
    }

    /// Sets the idle timeout of session types that declare no `max_age`. The default is one day.
    /// Every session has an idle timeout: no record and no cookie lives forever.
    #[must_use]
    pub fn with_default_max_age(mut self, max_age: Duration) -> Self {
        self.default_max_age = max_age.as_secs();
        self
    }

    /// Enables rolling expiry: a request that reads a session last saved more than `after` ago
    /// refreshes its expiry without rewriting its data (a *touch*: a new cookie for cookie stores,
    /// an expiry update for server stores). The default is `None`: only saves move the expiry.
    #[must_use]
    pub fn with_rolling(mut self, after: Option<Duration>) -> Self {
        self.rolling = after.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// Sets the largest cookie, name and value together, that is read or written. The default
    /// is 4096 bytes, what every browser keeps; larger incoming values are discarded before any
    /// decoding, and a save that would exceed it fails instead of being dropped by the browser.
    #[must_use]
    pub fn with_max_cookie_size(mut self, bytes: usize) -> Self {
        self.max_cookie_size = bytes;
        self
    }

    /// Sets whether requests that use the same server-side session run one at a time within
    /// this process, from loading the session to saving it. The default is `true`: two
    /// concurrent requests that both increment a counter then both count, instead of one
    /// overwriting the other.
    ///
    /// Only requests that extract the session wait, and only for each other; cookie stores are
    /// not affected (their state travels with each request). Across several processes, changes to
    /// *different* fields still never overwrite each other in a store that writes single fields
    /// (Redis), but two processes changing the *same* field concurrently are last-write-wins.
    /// Turn it off for sessions held open by long-running handlers (streams, long polls).
    #[must_use]
    pub fn with_serialized_requests(mut self, serialize: bool) -> Self {
        self.serialize = serialize;
        self
    }

    /// Renews the id of every server-side session periodically (OWASP's *renewal timeout*): the
    /// first request after each `every` since the session was created moves the session to a
    /// fresh id and answers with the new cookie, read-only requests included. The old id keeps
    /// leading to the session for `grace`, so requests the client sent concurrently with the old
    /// cookie still find it (and move to the new cookie too); after that the old id is refused. A
    /// copied id thus stops working at most `every` plus the time to the client's next request
    /// plus `grace` after it was issued, unless the attacker keeps using it — and then the
    /// legitimate client's id dies instead, which it notices as a logout. The default is `None`.
    ///
    /// Renewal costs one write per session and period (a store round trip for the new record and
    /// one for the old id's forward). Until the grace period ends, the old record keeps its data
    /// and gains the forward to the new id, masked with a pad derived from the old id, so a store
    /// dump or Redis `MONITOR` does not reveal the new id. The grace period must be shorter than
    /// the period. A request that loaded the old record before the renewal (in another process,
    /// or with [`with_serialized_requests(false)`](Self::with_serialized_requests)) and then
    /// saves is sent on to the new id by the store's refusal to update a renewed-away record;
    /// a logout that loaded the old id ends the renewed session too.
    ///
    /// Cookie stores have no id to renew: every save already seals a new value. Stores that write
    /// whole records (the `aiohttp-compat` ones) cannot hold a forward beside the data the other
    /// server reads. The setting does not apply to either. Explicit
    /// [`regenerate`](crate::TypedSession::regenerate) (at login) is separate and kills the old
    /// id at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_runtime::config::SessionConfig;
    ///
    /// let config = SessionConfig::default()
    ///     .with_renewal(Some((Duration::from_secs(15 * 60), Duration::from_secs(30))));
    /// assert!(config.validate().is_ok());
    /// ```
    #[must_use]
    pub fn with_renewal(mut self, renewal: Option<(Duration, Duration)>) -> Self {
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.renewal = renewal.map(|(every, grace)| Renewal {
            every: millis(every),
            grace: millis(grace),
        });
        self
    }

    /// Sets the clock used for expiry. The default is [`SystemClock`].
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Checks the parts of the configuration that do not depend on a cookie name: the path and
    /// domain hold no character that would end the attribute or the header (`;`, `,`,
    /// whitespace, control characters), `SameSite=None` and `Partitioned` have `Secure`, and
    /// neither the default max age nor a renewal period is zero, and a renewal's grace period is
    /// shorter than its period. [`SessionLayer::try_with_config`](crate::SessionLayer::try_with_config)
    /// runs it when the layer is built.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_runtime::config::{ConfigError, SameSite, SessionConfig};
    ///
    /// assert!(SessionConfig::default().validate().is_ok());
    /// let leaky = SessionConfig::default().with_path("/app; Domain=evil.example");
    /// assert!(matches!(leaky.validate(), Err(ConfigError::InvalidAttribute { .. })));
    /// let dropped = SessionConfig::default().with_secure(false).with_same_site(SameSite::None);
    /// assert_eq!(dropped.validate(), Err(ConfigError::NeedsSecure));
    /// ```
    ///
    /// # Errors
    ///
    /// Returns the first rule the configuration breaks.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.default_max_age == 0 {
            return Err(ConfigError::ZeroMaxAge);
        }
        if self
            .renewal
            .is_some_and(|renewal| renewal.every == 0 || renewal.grace >= renewal.every)
        {
            return Err(ConfigError::InvalidRenewal);
        }
        check_attribute("path", &self.path)?;
        if let Some(domain) = &self.domain {
            check_attribute("domain", domain)?;
        }
        if !self.secure && (self.same_site == SameSite::None || self.partitioned) {
            return Err(ConfigError::NeedsSecure);
        }
        Ok(())
    }

    /// Checks the configuration for a cookie named `cookie_name` against the rules browsers
    /// apply (RFC 6265bis): everything [`SessionConfig::validate`] checks, a name that is an
    /// RFC 6265 token, `__Secure-` needs `Secure`, and `__Host-` also needs `Path=/` and no
    /// `Domain` (prefixes match case-insensitively, as browsers do).
    ///
    /// # Errors
    ///
    /// Returns the first rule the configuration breaks.
    pub fn validate_for(&self, cookie_name: &str) -> Result<(), ConfigError> {
        self.validate()?;
        check_attribute("name", cookie_name)?;
        for prefix in ["__Host-", "__Secure-"] {
            let has_prefix = cookie_name
                .get(..prefix.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(prefix));
            if !has_prefix {
                continue;
            }
            if !self.secure {
                return Err(ConfigError::PrefixNeedsSecure {
                    name: cookie_name.to_owned(),
                    prefix,
                });
            }
            if prefix == "__Host-" && (self.domain.is_some() || self.path != "/") {
                return Err(ConfigError::HostPrefixScope {
                    name: cookie_name.to_owned(),
                });
            }
        }
        Ok(())
    }

    pub(crate) fn now(&self) -> u64 {
        self.clock.now_millis()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_rules() {
        let insecure = SessionConfig::default().with_secure(false);
        assert!(insecure.validate_for("id").is_ok());
        assert!(matches!(
            insecure.validate_for("__host-id"),
            Err(ConfigError::PrefixNeedsSecure { .. })
        ));
        assert!(insecure.validate_for("__Secure-id").is_err());
        let scoped = SessionConfig::default().with_domain("example.com");
        assert!(scoped.validate_for("__Secure-id").is_ok());
        assert_eq!(
            scoped.validate_for("__Host-id"),
            Err(ConfigError::HostPrefixScope {
                name: "__Host-id".to_owned()
            })
        );
        assert_eq!(
            insecure.with_same_site(SameSite::None).validate_for("id"),
            Err(ConfigError::NeedsSecure)
        );
    }

    #[test]
    fn attributes_that_would_break_the_header_are_refused() {
        let ok = SessionConfig::default();
        for name in [
            "", "a;b", "a,b", "a=b", "a b", "a\tb", "a\r\nb", "a\u{7f}", "a\"b", "é",
        ] {
            assert!(
                matches!(
                    ok.validate_for(name),
                    Err(ConfigError::InvalidAttribute {
                        attribute: "name",
                        ..
                    })
                ),
                "name {name:?}"
            );
        }
        for path in [
            "",
            "app",
            "/a;b",
            "/a,b",
            "/a b",
            "/a\r\nSet-Cookie: x=1",
            "/\u{0}",
        ] {
            let config = SessionConfig::default().with_path(path);
            assert!(
                matches!(
                    config.validate(),
                    Err(ConfigError::InvalidAttribute {
                        attribute: "path",
                        ..
                    })
                ),
                "path {path:?}"
            );
        }
        for domain in ["", "a.example; Secure", "a.example,b", "a .example", "a\nb"] {
            let config = SessionConfig::default().with_domain(domain);
            assert!(config.validate().is_err(), "domain {domain:?}");
        }
        assert!(
            SessionConfig::default()
                .with_path("/a=b/c")
                .validate()
                .is_ok()
        );
        assert!(
            SessionConfig::default()
                .with_domain("shop.example.com")
                .validate_for("__Secure-id")
                .is_ok()
        );
    }
}
