//! Parsing of `#[session(...)]` attributes. Only problems visible inside one attribute list are
//! reported here (unknown key, missing or wrong value, empty string, same key twice); relations
//! between options and fields are checked in `valid.rs`.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned as _;
use syn::{Attribute, ExprPath, Lit, LitInt, LitStr, Token};

use crate::ctxt::Ctxt;

/// The keys of `#[session(...)]` on the struct.
pub(crate) const CONTAINER_KEYS: &[&str] = &[
    "cookie_name",
    "codec",
    "max_age",
    "absolute_max_age",
    "purge_undeclared",
    "view_of",
    "crate",
];

/// The keys of `#[session(...)]` on a field.
pub(crate) const FIELD_KEYS: &[&str] = &["rename", "alias", "default", "skip", "owner"];

/// The characters RFC 6265 (via RFC 2616 `separators`) forbids in a cookie name, besides
/// spaces, control characters and non-ASCII characters.
const COOKIE_NAME_SEPARATORS: &str = "()<>@,;:\\\"/[]?={}";

/// What `codec = ...` accepts, for error messages.
const CODEC_CHOICES: &str = "`\"json\"`, `\"msgpack\"`, or the unquoted path of a type that implements `session_runtime::Codec`, like `codec = my::Codec`";

/// The options of `#[session(...)]` on the struct. A key whose value was wrong is `None`; its
/// error is already in the [`Ctxt`].
#[derive(Default)]
pub(crate) struct ContainerAttrs {
    pub(crate) cookie_name: Option<LitStr>,
    pub(crate) codec: Option<CodecAttr>,
    pub(crate) max_age: Option<Seconds>,
    pub(crate) absolute_max_age: Option<Seconds>,
    /// The span of the `purge_undeclared` key.
    pub(crate) purge_undeclared: Option<Span>,
    /// `view_of = path::To::Session`: the type declares some fields of that session type.
    pub(crate) view_of: Option<syn::Path>,
    pub(crate) krate: Option<syn::Path>,
}

/// The codec chosen with `codec = ...`.
pub(crate) enum CodecAttr {
    /// `codec = "json"`.
    Json(LitStr),
    /// `codec = "msgpack"`.
    Msgpack(LitStr),
    /// `codec = path::To::Codec`.
    Path(syn::Path),
}

/// A positive number of seconds, with the literal it came from.
pub(crate) struct Seconds {
    pub(crate) value: u64,
    pub(crate) lit: LitInt,
}

/// The options of `#[session(...)]` on one field.
#[derive(Default)]
pub(crate) struct FieldAttrs {
    pub(crate) rename: Option<LitStr>,
    pub(crate) aliases: Vec<LitStr>,
    pub(crate) default: Option<DefaultFn>,
    /// The span of the `skip` key.
    pub(crate) skip: Option<Span>,
    /// The span of the `owner` key.
    pub(crate) owner: Option<Span>,
}

/// `default = "path::to::function"`.
pub(crate) struct DefaultFn {
    pub(crate) path: ExprPath,
    pub(crate) lit: LitStr,
}

/// Which attribute list is being parsed, for error messages.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Container,
    Field,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Container => "container",
            Kind::Field => "field",
        }
    }

    fn keys(self) -> &'static [&'static str] {
        match self {
            Kind::Container => CONTAINER_KEYS,
            Kind::Field => FIELD_KEYS,
        }
    }
}

/// Parses every `#[session(...)]` on the struct.
pub(crate) fn container(cx: &Ctxt, attrs: &[Attribute]) -> ContainerAttrs {
    let mut out = ContainerAttrs::default();
    for_each_key(cx, attrs, Kind::Container, |key, meta| match key {
        "cookie_name" => {
            out.cookie_name = value(cx, meta, key)
                .and_then(|tokens| lit_str(cx, tokens))
                .filter(|lit| check_cookie_name(cx, lit));
        }
        "codec" => out.codec = codec(cx, meta),
        "max_age" => out.max_age = value(cx, meta, key).and_then(|v| seconds(cx, key, v)),
        "absolute_max_age" => {
            out.absolute_max_age = value(cx, meta, key).and_then(|v| seconds(cx, key, v));
        }
        "purge_undeclared" => {
            if no_value(cx, meta, key) {
                out.purge_undeclared = Some(meta.path.span());
            }
        }
        "view_of" => out.view_of = value(cx, meta, key).and_then(|tokens| type_path(cx, tokens)),
        "crate" => {
            out.krate = value(cx, meta, key)
                .and_then(|tokens| lit_str(cx, tokens))
                .and_then(|lit| path_in_str::<syn::Path>(cx, key, &lit));
        }
        _ => unknown_key(cx, meta, Kind::Container, key),
    });
    out
}

/// Parses every `#[session(...)]` on one field.
pub(crate) fn field(cx: &Ctxt, attrs: &[Attribute]) -> FieldAttrs {
    let mut out = FieldAttrs::default();
    for_each_key(cx, attrs, Kind::Field, |key, meta| match key {
        "rename" => {
            out.rename = value(cx, meta, key)
                .and_then(|tokens| lit_str(cx, tokens))
                .filter(|lit| check_key(cx, lit));
        }
        "alias" => {
            let alias = value(cx, meta, key)
                .and_then(|tokens| lit_str(cx, tokens))
                .filter(|lit| check_key(cx, lit));
            out.aliases.extend(alias);
        }
        "default" => {
            out.default = value(cx, meta, key)
                .and_then(|tokens| lit_str(cx, tokens))
                .and_then(|lit| {
                    let path = path_in_str::<ExprPath>(cx, key, &lit)?;
                    Some(DefaultFn { path, lit })
                });
        }
        "skip" => {
            if no_value(cx, meta, key) {
                out.skip = Some(meta.path.span());
            }
        }
        "owner" => {
            if no_value(cx, meta, key) {
                out.owner = Some(meta.path.span());
            }
        }
        _ => unknown_key(cx, meta, Kind::Field, key),
    });
    out
}

/// Calls `handle` with every key of every `#[session(...)]` in `attrs`. Reports a key that was
/// already seen (except `alias`, which may repeat) and skips its value. `handle` must consume
/// the key's value up to the next comma.
fn for_each_key(
    cx: &Ctxt,
    attrs: &[Attribute],
    kind: Kind,
    mut handle: impl FnMut(&str, &ParseNestedMeta<'_>),
) {
    let mut seen: Vec<String> = Vec::new();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("session")) {
        let result = attr.parse_nested_meta(|meta| {
            let key = key_name(&meta.path);
            let known = kind.keys().contains(&key.as_str());
            if known && key != "alias" && seen.contains(&key) {
                cx.error_spanned_by(
                    &meta.path,
                    format!(
                        "duplicate session {} attribute `{key}`; remove one of them",
                        kind.name()
                    ),
                );
                rest_of_item(meta.input);
            } else {
                if known {
                    seen.push(key.clone());
                }
                handle(&key, &meta);
            }
            Ok(())
        });
        if let Err(error) = result {
            cx.syn_error(error);
        }
    }
}

/// Returns the key as the user wrote it (`crate`, `rename`, or `a::b` for a path).
fn key_name(path: &syn::Path) -> String {
    match path.get_ident() {
        Some(ident) => ident.to_string(),
        None => path.to_token_stream().to_string().replace(' ', ""),
    }
}

/// Reports an unknown key and skips its value.
fn unknown_key(cx: &Ctxt, meta: &ParseNestedMeta<'_>, kind: Kind, key: &str) {
    let message = match kind {
        Kind::Container if FIELD_KEYS.contains(&key) => format!(
            "`{key}` is a session field attribute, not a container attribute; move it to the field it applies to"
        ),
        Kind::Field if CONTAINER_KEYS.contains(&key) => format!(
            "`{key}` is a session container attribute, not a field attribute; move it to the #[session(...)] on the struct"
        ),
        _ => format!(
            "unknown session {} attribute `{key}`; expected one of {}",
            kind.name(),
            kind.keys()
                .iter()
                .map(|key| format!("`{key}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    cx.error_spanned_by(&meta.path, message);
    rest_of_item(meta.input);
}

/// An example of a key with a value, for error messages.
fn example(key: &str) -> &'static str {
    match key {
        "cookie_name" => "cookie_name = \"name\"",
        "codec" => "codec = \"json\"",
        "max_age" => "max_age = 3600",
        "absolute_max_age" => "absolute_max_age = 86400",
        "view_of" => "view_of = path::to::Session",
        "crate" => "crate = \"path::to::session_runtime\"",
        "rename" => "rename = \"name\"",
        "alias" => "alias = \"old_name\"",
        "default" => "default = \"path::to::function\"",
        _ => "key = value",
    }
}

/// The error for a key written without its value.
fn missing_value(key: &str) -> String {
    format!("`{key}` needs a value; write #[session({})]", example(key))
}

/// Parses `= <value>` and returns the value's tokens up to the next comma, or reports that the
/// value is missing.
fn value(cx: &Ctxt, meta: &ParseNestedMeta<'_>, key: &str) -> Option<TokenStream> {
    let missing = missing_value(key);
    let Ok(eq) = meta.input.parse::<Token![=]>() else {
        cx.error_spanned_by(&meta.path, missing);
        rest_of_item(meta.input);
        return None;
    };
    let tokens = rest_of_item(meta.input);
    if tokens.is_empty() {
        cx.error(eq.span, missing);
        return None;
    }
    Some(tokens)
}

/// What to write instead of a flag with a value, for error messages. `purge_undeclared = false`
/// must not be answered with only `write #[session(purge_undeclared)]`, the opposite of what was
/// meant.
fn flag_fix(key: &str) -> String {
    match key {
        "purge_undeclared" => format!(
            "write #[session({key})] to purge the stored fields the struct does not declare, or remove it to keep them (the default)"
        ),
        "owner" => format!(
            "write #[session({key})] on the one `Option<K>` field that holds the user the session belongs to"
        ),
        _ => format!("write #[session({key})]"),
    }
}

/// Checks that a flag key has no value.
fn no_value(cx: &Ctxt, meta: &ParseNestedMeta<'_>, key: &str) -> bool {
    let tokens = rest_of_item(meta.input);
    if tokens.is_empty() {
        return true;
    }
    cx.error_spanned_by(tokens, format!("`{key}` takes no value; {}", flag_fix(key)));
    false
}

/// Consumes and returns the tokens up to the next top-level comma of the attribute list.
fn rest_of_item(input: syn::parse::ParseStream<'_>) -> TokenStream {
    input
        .step(|cursor| {
            let mut tokens = TokenStream::new();
            let mut rest = *cursor;
            while let Some((tree, next)) = rest.token_tree() {
                if matches!(&tree, TokenTree::Punct(punct) if punct.as_char() == ',') {
                    break;
                }
                tokens.extend([tree]);
                rest = next;
            }
            Ok((tokens, rest))
        })
        .unwrap_or_default()
}

/// Parses a value that must be one string literal (syn's own error otherwise).
fn lit_str(cx: &Ctxt, tokens: TokenStream) -> Option<LitStr> {
    syn::parse2::<LitStr>(tokens)
        .map_err(|error| cx.syn_error(error))
        .ok()
}

/// Parses the path inside a string literal (`crate = "..."`, `default = "..."`).
fn path_in_str<T: syn::parse::Parse>(cx: &Ctxt, key: &str, lit: &LitStr) -> Option<T> {
    let value = lit.value();
    if value.trim().is_empty() {
        cx.error(
            lit.span(),
            format!(
                "`{key}` must not be empty; write #[session({})]",
                example(key)
            ),
        );
        return None;
    }
    let path = lit.parse::<T>().ok();
    if path.is_none() {
        cx.error(
            lit.span(),
            format!(
                "invalid path `{value}` in `{key}`; write #[session({})]",
                example(key)
            ),
        );
    }
    path
}

/// Parses the value of `view_of`: the unquoted path of a session type.
fn type_path(cx: &Ctxt, tokens: TokenStream) -> Option<syn::Path> {
    if let Ok(lit) = syn::parse2::<LitStr>(tokens.clone()) {
        cx.error(
            lit.span(),
            format!(
                "`view_of` takes the session type without quotes; write #[session(view_of = {})]",
                lit.value()
            ),
        );
        return None;
    }
    syn::parse2::<syn::Path>(tokens.clone())
        .map_err(|_| {
            cx.error_spanned_by(
                tokens,
                "expected the path of a session type; write #[session(view_of = path::to::Session)]",
            );
        })
        .ok()
}

/// Parses `codec = "json" | "msgpack" | path::To::Codec`.
fn codec(cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> Option<CodecAttr> {
    let input = meta.input;
    if !input.peek(Token![=]) {
        // Reports the missing value.
        value(cx, meta, "codec");
        return None;
    }
    let eq = input.parse::<Token![=]>().ok()?;
    if input.is_empty() || input.peek(Token![,]) {
        cx.error(eq.span, missing_value("codec"));
        return None;
    }
    if input.peek(Lit) {
        let tokens = rest_of_item(input);
        let Ok(lit) = syn::parse2::<LitStr>(tokens.clone()) else {
            cx.error_spanned_by(tokens, format!("invalid codec; expected {CODEC_CHOICES}"));
            return None;
        };
        return match lit.value().as_str() {
            "json" => Some(CodecAttr::Json(lit)),
            "msgpack" => Some(CodecAttr::Msgpack(lit)),
            other => {
                cx.error(
                    lit.span(),
                    format!("unknown codec `{other}`; expected {CODEC_CHOICES}"),
                );
                None
            }
        };
    }
    match input.parse::<syn::Path>() {
        Ok(path) => {
            if let Some(ident) = path.get_ident() {
                let name = ident.to_string();
                if name == "json" || name == "msgpack" {
                    cx.error(
                        ident.span(),
                        format!(
                            "`{name}` is not a codec type; write `codec = \"{name}\"` with quotes to use the built-in codec"
                        ),
                    );
                    return None;
                }
            }
            Some(CodecAttr::Path(path))
        }
        Err(error) => {
            cx.syn_error(error);
            rest_of_item(input);
            None
        }
    }
}

/// Parses a number of seconds greater than zero.
fn seconds(cx: &Ctxt, key: &str, tokens: TokenStream) -> Option<Seconds> {
    let not_a_number = format!("expected a number of seconds for `{key}`, like `{key} = 3600`");
    let Ok(Lit::Int(lit)) = syn::parse2::<Lit>(tokens.clone()) else {
        cx.error_spanned_by(tokens, not_a_number);
        return None;
    };
    match lit.base10_digits().parse::<u64>() {
        Ok(0) => {}
        Ok(value) => return Some(Seconds { value, lit }),
        Err(_) if !lit.base10_digits().starts_with('-') => {
            cx.error(lit.span(), not_a_number);
            return None;
        }
        Err(_) => {}
    }
    cx.error_spanned_by(
        tokens,
        format!(
            "`{key}` must be greater than zero; it is a number of seconds, like `{key} = 3600`"
        ),
    );
    None
}

/// Checks a stored name given with `rename` or `alias`.
fn check_key(cx: &Ctxt, lit: &LitStr) -> bool {
    let value = lit.value();
    if value.is_empty() {
        cx.error(lit.span(), "session key must not be empty");
        false
    } else if value.starts_with("__") {
        cx.error(
            lit.span(),
            format!(
                "session key `{value}` starts with `__`, which is reserved; choose another name"
            ),
        );
        false
    } else {
        true
    }
}

/// Checks `cookie_name = "..."`.
fn check_cookie_name(cx: &Ctxt, lit: &LitStr) -> bool {
    let name = lit.value();
    if name.is_empty() {
        cx.error(
            lit.span(),
            "cookie name must not be empty; remove `cookie_name` to use the struct name in snake case",
        );
        return false;
    }
    match cookie_name_problem(&name) {
        Some(problem) => {
            cx.error(
                lit.span(),
                format!(
                    "invalid cookie name `{}`: it contains {problem}; use only letters, digits and `-`, `_` or `.`",
                    name.escape_debug()
                ),
            );
            false
        }
        None => true,
    }
}

/// Returns a description of the first character that RFC 6265 does not allow in a cookie name
/// (a `token`: visible ASCII except separators), or `None` if the name is valid.
pub(crate) fn cookie_name_problem(name: &str) -> Option<String> {
    name.chars().find_map(|c| {
        if c == ' ' {
            Some("a space".to_owned())
        } else if c.is_ascii_control() {
            Some("a control character".to_owned())
        } else if !c.is_ascii() {
            Some(format!("the non-ASCII character `{c}`"))
        } else if COOKIE_NAME_SEPARATORS.contains(c) {
            Some(format!("`{c}`"))
        } else {
            None
        }
    })
}
