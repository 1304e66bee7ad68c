//! The `Cookie` and `Set-Cookie` headers: finding the session cookie among a request's cookies,
//! quoting and unquoting its value as the store's format says, and rendering the `Set-Cookie`
//! value with the configured attributes.

use std::borrow::Cow;
use std::fmt::Write as _;

use http::HeaderMap;
use http::header::COOKIE;

use crate::config::{SameSite, SessionConfig};

/// How many cookies of one name a request may carry that are tried as the session.
pub(crate) const MAX_CANDIDATES: usize = 4;

/// The values of the cookies named `name` in the request's `Cookie` headers, in order, with
/// surrounding quotes dropped; headers that are not visible ASCII are skipped.
#[inline]
fn cookie_values<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|header| header.split(';'))
        .filter_map(move |pair| {
            let (key, value) = pair.split_once('=')?;
            (key.trim() == name).then(|| {
                let value = value.trim();
                value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value)
            })
        })
}

/// Finds the distinct values of the cookies named `name`, in order, at most [`MAX_CANDIDATES`]
/// of them, without allocating.
#[inline]
pub(crate) fn find_cookies<'a>(
    headers: &'a HeaderMap,
    name: &str,
) -> ([&'a str; MAX_CANDIDATES], usize) {
    let mut found = [""; MAX_CANDIDATES];
    let mut count = 0;
    for value in cookie_values(headers, name) {
        if found[..count].contains(&value) {
            continue;
        }
        found[count] = value;
        count += 1;
        if count == MAX_CANDIDATES {
            break;
        }
    }
    (found, count)
}

/// What to do with the client's cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CookieAction {
    Set { value: String, max_age: u64 },
    Remove,
}

/// Renders a `Set-Cookie` value. The removal cookie repeats every attribute of the cookie it
/// removes, so `__Host-`/`__Secure-` cookies are really removed.
pub(crate) fn render(name: &str, action: &CookieAction, config: &SessionConfig) -> String {
    let (value, max_age) = match action {
        CookieAction::Set { value, max_age } => (value.as_str(), *max_age),
        CookieAction::Remove => ("", 0),
    };
    let mut out = String::with_capacity(rendered_len(name, value, max_age, action, config));
    out.push_str(name);
    out.push('=');
    out.push_str(value);
    out.push_str("; Path=");
    out.push_str(&config.path);
    if let Some(domain) = &config.domain {
        out.push_str("; Domain=");
        out.push_str(domain);
    }
    out.push_str("; Max-Age=");
    out.push_str(itoa::Buffer::new().format(max_age));
    if matches!(action, CookieAction::Remove) {
        out.push_str("; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
    }
    if config.http_only {
        out.push_str("; HttpOnly");
    }
    if config.secure {
        out.push_str("; Secure");
    }
    out.push_str(match config.same_site {
        SameSite::Strict => "; SameSite=Strict",
        SameSite::Lax => "; SameSite=Lax",
        SameSite::None => "; SameSite=None",
    });
    if config.partitioned {
        out.push_str("; Partitioned");
    }
    out
}

/// The exact length of what [`render`] writes: the header value then takes the `String`'s buffer
/// as it is (a `String` with spare capacity costs `http` one more allocation).
fn rendered_len(
    name: &str,
    value: &str,
    max_age: u64,
    action: &CookieAction,
    config: &SessionConfig,
) -> usize {
    let digits = max_age.checked_ilog10().map_or(1, |log| log as usize + 1);
    let same_site = match config.same_site {
        SameSite::Strict => "; SameSite=Strict".len(),
        SameSite::Lax => "; SameSite=Lax".len(),
        SameSite::None => "; SameSite=None".len(),
    };
    name.len()
        + 1
        + value.len()
        + "; Path=".len()
        + config.path.len()
        + config
            .domain
            .as_ref()
            .map_or(0, |domain| "; Domain=".len() + domain.len())
        + "; Max-Age=".len()
        + digits
        + if matches!(action, CookieAction::Remove) {
            "; Expires=Thu, 01 Jan 1970 00:00:00 GMT".len()
        } else {
            0
        }
        + if config.http_only {
            "; HttpOnly".len()
        } else {
            0
        }
        + if config.secure { "; Secure".len() } else { 0 }
        + same_site
        + if config.partitioned {
            "; Partitioned".len()
        } else {
            0
        }
}

/// How a store's cookie values are written into `Set-Cookie` and read back from `Cookie`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CookieQuoting {
    /// Values are written as they are (this crate's values need no quoting); one pair of
    /// surrounding double quotes is dropped on read. The default.
    #[default]
    Plain,
    /// Python's `http.cookies`, which aiohttp uses: a value with any character outside
    /// ``A-Z a-z 0-9 !#$%&'*+-.^_`|~:`` is written in double quotes, with `"` and `\` escaped by
    /// a backslash and every other character below U+0100 that is not also in `` ()/<=>?@[]{}``
    /// as a three-digit octal escape (`,` is `\054`, `;` is `\073`). Reading reverses it.
    Python,
}

impl CookieQuoting {
    /// Quotes a cookie value for a `Set-Cookie` header.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_runtime::store::CookieQuoting;
    ///
    /// assert_eq!(CookieQuoting::Python.quote("abc"), "abc");
    /// assert_eq!(CookieQuoting::Python.quote(r#"{"a": 1, "b": "x;y"}"#), r#""{\"a\": 1\054 \"b\": \"x\073y\"}""#);
    /// assert_eq!(CookieQuoting::Plain.quote("a,b"), "a,b");
    /// ```
    #[must_use]
    pub fn quote(self, value: &str) -> Cow<'_, str> {
        match self {
            Self::Plain => Cow::Borrowed(value),
            Self::Python => python_quote(value),
        }
    }

    /// Unquotes a cookie value from a `Cookie` header: drops one pair of surrounding double
    /// quotes, if any, and for [`CookieQuoting::Python`] resolves the backslash escapes.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_runtime::store::CookieQuoting;
    ///
    /// assert_eq!(CookieQuoting::Python.unquote(r#""{\"a\": 1\054 \"b\": 2}""#), r#"{"a": 1, "b": 2}"#);
    /// assert_eq!(CookieQuoting::Python.unquote("abc"), "abc");
    /// assert_eq!(CookieQuoting::Plain.unquote("\"abc\""), "abc");
    /// ```
    #[must_use]
    pub fn unquote(self, raw: &str) -> Cow<'_, str> {
        match self {
            Self::Plain => Cow::Borrowed(
                raw.strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(raw),
            ),
            Self::Python => python_unquote(raw),
        }
    }
}

/// `http.cookies._LegalChars`: values made only of these are written bare.
fn python_legal(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~:".contains(c)
}

/// `http.cookies._quote`.
fn python_quote(value: &str) -> Cow<'_, str> {
    if !value.is_empty() && value.chars().all(python_legal) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 16);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if python_legal(c) || " ()/<=>?@[]{}".contains(c) => out.push(c),
            // Writing into a String cannot fail.
            c if u32::from(c) < 256 => {
                let _ = write!(out, "\\{:03o}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    Cow::Owned(out)
}

/// `http.cookies._unquote`: drops the quotes and resolves `\ooo` (first digit 0-3) and `\c`.
/// The runtime may already have dropped the quotes, so escapes are resolved either way (a value
/// Python writes bare never holds a backslash).
fn python_unquote(raw: &str) -> Cow<'_, str> {
    let inner = raw
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(raw);
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut rest = inner;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let escaped = &rest[at + 1..];
        let octal = escaped.as_bytes().get(..3).filter(|d| {
            matches!(d[0], b'0'..=b'3') && d[1..].iter().all(|b| matches!(b, b'0'..=b'7'))
        });
        if let Some(digits) = octal {
            let code = digits
                .iter()
                .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
            out.extend(char::from_u32(code));
            rest = &escaped[3..];
        } else if let Some(c) = escaped.chars().next().filter(|c| *c != '\n') {
            out.push(c);
            rest = &escaped[c.len_utf8()..];
        } else {
            // A lone trailing backslash (or one before a newline) is kept, as Python keeps it.
            out.push('\\');
            rest = escaped;
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SessionConfig;
    use http::HeaderValue;

    /// The first value of the cookie `name`, as the layer picks it among the candidates.
    fn find_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
        let (found, count) = find_cookies(headers, name);
        found[..count].first().copied()
    }

    #[test]
    fn render_sizes_its_buffer_exactly() {
        let set = |max_age| CookieAction::Set {
            value: "v".repeat(43),
            max_age,
        };
        for config in [
            SessionConfig::default(),
            SessionConfig::default()
                .with_domain("example.com")
                .with_path("/app")
                .with_same_site(SameSite::Strict)
                .with_partitioned(true),
        ] {
            for action in [
                set(0),
                set(9),
                set(10),
                set(86_400),
                set(u64::MAX),
                CookieAction::Remove,
            ] {
                let out = render("session", &action, &config);
                assert_eq!(out.len(), out.capacity(), "{out}");
            }
        }
    }

    #[test]
    fn finds_cookies_across_headers() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; sess=\"x\" ; b=2"));
        headers.append(COOKIE, HeaderValue::from_static("other=3;sess=y"));
        assert_eq!(find_cookie(&headers, "sess"), Some("x"));
        assert_eq!(find_cookie(&headers, "other"), Some("3"));
        assert_eq!(find_cookie(&headers, "se"), None);
        headers.insert(COOKIE, HeaderValue::from_bytes(b"sess=\xff").unwrap());
        assert_eq!(find_cookie(&headers, "sess"), None);
    }

    #[test]
    fn finds_every_distinct_candidate_up_to_the_cap() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("s=a; s=b; t=z; s=a"));
        headers.append(COOKIE, HeaderValue::from_static("s=\"c\"; S=x; s=d; s=e"));
        let (found, count) = find_cookies(&headers, "s");
        assert_eq!(&found[..count], ["a", "b", "c", "d"]);
        let (_, count) = find_cookies(&headers, "none");
        assert_eq!(count, 0);
    }

    #[test]
    fn removal_mirrors_the_attributes() {
        let config = SessionConfig::default().with_domain("example.com");
        let set = render(
            "__Secure-s",
            &CookieAction::Set {
                value: "v".into(),
                max_age: 60,
            },
            &config,
        );
        assert_eq!(
            set,
            "__Secure-s=v; Path=/; Domain=example.com; Max-Age=60; HttpOnly; Secure; SameSite=Lax"
        );
        let removal = render("__Secure-s", &CookieAction::Remove, &config);
        assert_eq!(
            removal,
            "__Secure-s=; Path=/; Domain=example.com; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax"
        );
    }
}
