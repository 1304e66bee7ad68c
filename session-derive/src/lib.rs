//! The `#[derive(Session)]` macro of session-runtime; use it through `session_runtime::Session`,
//! which re-exports it beside the trait of the same name.

mod ast;
mod attr;
mod companion;
mod ctxt;
mod expand;
mod fallback;
mod model;
mod valid;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

use crate::ast::Input;
use crate::ctxt::Ctxt;

/// Derives `session_runtime::Session` for a struct with named fields, and generates typed
/// accessors that `TypedSession<T>` dereferences to.
///
/// ```text
/// use serde::{Deserialize, Serialize};
/// use session_runtime::Session;
///
/// #[derive(Session)]
/// #[session(cookie_name = "shop", codec = "msgpack", max_age = 3600)]
/// pub struct Shop {
///     pub user_id: Option<u64>,
///     pub cart: Vec<Item>,
///     #[session(default = "default_theme", alias = "colour")]
///     pub theme: String,
///     #[session(skip)]
///     pub scratch: u8,
/// }
///
/// fn default_theme() -> String {
///     "light".to_owned()
/// }
/// ```
///
/// # What is generated
///
/// For every field `f: F` (including `skip` fields), with the visibility of the field:
///
/// | accessor | does |
/// |---|---|
/// | `f(&self) -> &F` | returns the value |
/// | `f_mut(&mut self) -> &mut F` | returns the value for changing it in place, and marks `f` changed |
/// | `set_f(&mut self, value: F) -> F` | replaces the value, marks `f` changed, and returns the old value |
///
/// Only the changed fields are written back by stores that write single fields. The accessors of
/// a `skip` field never mark anything changed. A raw identifier keeps its `r#` only where it needs
/// it: field `r#type` gets `r#type()`, `type_mut()` and `set_type()`, and is stored as `type`.
///
/// Every stored field type must implement `Serialize`, `DeserializeOwned`, `Send`, `Sync` and
/// `'static`; every field without `default = "..."` must implement `Default`. Type parameters
/// are supported (the impl gets the bounds it needs); lifetime parameters are not, because
/// sessions are `'static`.
///
/// # Container attributes
///
/// Written as `#[session(...)]` on the struct.
///
/// | key | value | default | example |
/// |---|---|---|---|
/// | `cookie_name` | the cookie's name: visible ASCII without spaces and without `()<>@,;:\"/[]?={}` | the struct name in snake case (`UserSession` → `user_session`) | `#[session(cookie_name = "shop")]` |
/// | `codec` | `"json"`, `"msgpack"` (feature `msgpack`), or the unquoted path of a type that implements `session_runtime::Codec` | `"json"` | `#[session(codec = "msgpack")]`, `#[session(codec = my::PrettyJson)]` |
/// | `max_age` | the idle timeout in seconds, greater than zero | the layer's default | `#[session(max_age = 3600)]` |
/// | `absolute_max_age` | the absolute timeout in seconds, counted from the session's creation, greater than zero | none | `#[session(absolute_max_age = 86400)]` |
/// | `purge_undeclared` | none | stored fields the struct does not declare are kept | `#[session(purge_undeclared)]` |
/// | `view_of` | the unquoted path of another session type: this struct is a view of it (see below) | none | `#[session(view_of = Shop)]` |
/// | `crate` | the path of the session-runtime crate, for code that renames or re-exports it | `"::session_runtime"` | `#[session(crate = "my_web::sessions")]` |
///
/// A save writes the record as it was loaded, overlaid with the fields the handler changed. Stored
/// fields that the struct does not declare (a field since removed from the struct, or one that
/// another version of the app or a Python aiohttp_session app writes) are written back
/// byte-identical, and so are stored values that no longer decode, unless the handler set that
/// field. With `purge_undeclared`, the next save removes the stored fields the struct does not
/// declare instead (the generated `Session::KEEP_UNDECLARED` is `false`): use it when a field was
/// removed so that its stored value goes away, like a field dropped for privacy reasons, and no
/// other app reading the same sessions needs it. Such a type's saves write the record whole on
/// every store, so two requests of one session that change different fields at the same time
/// are not merged (the layer serializes one process's requests by default); a rolling-expiry
/// touch, which writes no field, does not purge, and a renewed-away id keeps the old fields until
/// its grace period ends. Keys inside a field's value belong to the field's
/// type: serde drops the unknown keys of a nested struct unless it keeps them with
/// `#[serde(flatten)]` (see `docs/nested-values.md`).
///
/// # Views
///
/// `#[session(view_of = Shop)]` declares a *view*: a struct of some of `Shop`'s fields, with the
/// same names, types and `rename`s. `TypedSession<ShopCart>` reads and writes the same sessions
/// as `TypedSession<Shop>` (the same cookie, codec and timeouts, taken from `Shop`), and
/// implements `session_runtime::session::SessionView`. A store that keeps fields one by one
/// (Redis) loads only the view's fields, so a handler that needs two fields of a large session
/// declares them in a view and pays for those two alone; the cookie stores still open the whole
/// cookie. A view's saves keep the fields it does not declare, as for any type; a session created
/// through a view holds the view's fields, and `Shop` reads its other fields as their defaults.
/// Requests through a view and through its type take the same per-session lock. One request uses
/// one type per cookie: extracting a view and the type it views in the same request is rejected
/// (`SessionRejection::CookieShared`, a 500).
///
/// ```text
/// #[derive(Session)]
/// #[session(view_of = Shop)]
/// pub struct ShopCart {
///     pub cart: Vec<Item>,
/// }
/// ```
///
/// A view takes no `cookie_name`, `codec`, `max_age`, `absolute_max_age` or `purge_undeclared`
/// (they are the viewed type's), has no type parameters and no `owner` field, and a type with an
/// `owner` field has no views (its saves keep the owner's index). A view's field has the type's
/// name, type (exactly: no coercion), stored name and every alias the type reads under; anything
/// else is a compile error on that field. Give it the type's `default` too, so that both read a
/// missing value the same way.
///
/// # Field attributes
///
/// Written as `#[session(...)]` on a field.
///
/// | key | value | effect | example |
/// |---|---|---|---|
/// | `rename` | a non-empty string not starting with `__` | the name the field is stored under (the default is the field name) | `#[session(rename = "uid")]` |
/// | `alias` | a non-empty string not starting with `__`; may be given several times | an older stored name that is still read when loading a session | `#[session(alias = "colour")]` |
/// | `default` | the path of a function `fn() -> F` | the value of the field in a new session, and when the stored value is missing or no longer decodes (instead of `Default::default()`) | `#[session(default = "default_theme")]` |
/// | `skip` | none | the field is not stored; it starts from its default in every request, and its accessors never mark it changed; can be combined with `default`, not with `rename` or `alias` | `#[session(skip)]` |
/// | `owner` | none | the field holds the user the session belongs to: on one stored field of type `Option<K>`, `K` an integer type or `String`. Server-side stores then index sessions by owner, and the type implements `session_runtime::owner::OwnedSession`, which gives `TypedSession<T>` the per-user API (list the user's sessions, revoke one, all, or all but the current one; see the `owner` module) | `#[session(owner)]` |
///
/// Stored names and aliases are unique across the struct. Several keys can share one attribute
/// (`#[session(default = "light", alias = "colour")]`).
///
/// # Reserved names
///
/// `TypedSession<T>` has methods of its own that would hide an accessor: a field must not
/// generate one of `id`, `is_new`, `created`, `max_age`, `set_max_age`, `regenerate`,
/// `invalidate`, `data`, `data_mut`, `replace`, `is_dirty`, `save`, `into_root`, `user_sessions`,
/// `revoke_session`, `revoke_all_sessions` or `revoke_other_sessions` (so fields `data` and
/// `max_age` are refused, because of `data()` and `set_max_age()`). Keep the stored name and
/// rename the Rust field:
///
/// ```text
/// #[session(rename = "data")]
/// pub payload: Vec<u8>,
/// ```
///
/// Two fields must not generate the same accessor (fields `x` and `x_mut`). Field names, stored
/// names and aliases that start with `__` are reserved for generated code and the runtime.
///
/// # Errors
///
/// Every misuse is a compile error that points at the offending token and says how to fix it;
/// all of them are reported at once. Setting `SESSION_DERIVE_DEBUG` in the environment of the
/// compiler prints the generated code.
#[proc_macro_derive(Session, attributes(session))]
pub fn derive_session(input: TokenStream) -> TokenStream {
    let node = parse_macro_input!(input as DeriveInput);
    let cx = Ctxt::new();
    let input = Input::from_syn(&cx, &node);
    // On errors, emit a stub impl as well, so that users see only the real errors and not a
    // second one wherever the type is used as a `Session`.
    let tokens = derive(cx, &input).unwrap_or_else(|error| fallback::expand(&input, &error));
    debug_print(&tokens);
    tokens.into()
}

/// Validates the parsed `input` and expands it; returns every error recorded in `cx` while
/// parsing and validating instead, if there is one.
fn derive(cx: Ctxt, input: &Input<'_>) -> syn::Result<proc_macro2::TokenStream> {
    valid::check(&cx, input);
    cx.check()?;
    Ok(expand::impl_session(input))
}

/// Prints the expansion when `SESSION_DERIVE_DEBUG` is set (like axum-macros'
/// `AXUM_MACROS_DEBUG`).
#[expect(
    clippy::print_stderr,
    reason = "a debugging aid the user asks for with SESSION_DERIVE_DEBUG"
)]
fn debug_print(tokens: &proc_macro2::TokenStream) {
    if std::env::var_os("SESSION_DERIVE_DEBUG").is_some() {
        eprintln!("{tokens}");
    }
}
