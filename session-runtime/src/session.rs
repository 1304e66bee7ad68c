//! The [`Session`] trait that `#[derive(Session)]` implements.
//!
//! The data model a store keeps ([`Record`], [`Metadata`], [`SessionId`], [`IdFormat`]) is
//! re-exported here.

use crate::codec::{Codec, CodecError};
use crate::state::Fields;

#[doc(inline)]
pub use crate::record::{Bytes, IdFormat, Metadata, Record, RecordRef, SessionId};
#[doc(inline)]
pub use crate::state::DirtySet;

/// A struct whose fields are kept in a session.
///
/// Implement it with `#[derive(Session)]`; the attribute reference is on the derive. The items of
/// this trait other than the constants are called by the runtime and are not meant for users.
///
/// # Examples
///
/// ```
/// use session_runtime::Session;
///
/// #[derive(Session)]
/// #[session(cookie_name = "shop", max_age = 3600)]
/// struct Shop {
///     user_id: Option<u64>,
///     cart: Vec<String>,
/// }
///
/// assert_eq!(Shop::COOKIE_NAME, "shop");
/// assert_eq!(Shop::MAX_AGE, Some(3600));
/// assert_eq!(Shop::FIELD_NAMES, ["user_id", "cart"]);
/// ```
pub trait Session: Sized + Send + Sync + 'static {
    /// The generated companion type that holds the session data and its dirty bits and carries
    /// the typed accessors; `TypedSession<Self>` dereferences to it.
    type Fields: Fields<Self>;

    /// The codec every field and the cookie envelope are encoded with.
    type Codec: Codec;

    /// The cookie name (`#[session(cookie_name = "...")]`, else the struct name in snake case).
    const COOKIE_NAME: &'static str;

    /// The idle timeout in seconds (`#[session(max_age = N)]`); `None` uses the layer's default.
    const MAX_AGE: Option<u64>;

    /// The absolute timeout in seconds, measured from creation (`#[session(absolute_max_age = N)]`).
    const ABSOLUTE_MAX_AGE: Option<u64>;

    /// The stored name of every field that is kept (not `skip`), in declaration order. The index
    /// of a name is the field's index in [`Session::encode_field`] and in the dirty set.
    const FIELD_NAMES: &'static [&'static str];

    /// Every name a load reads: the aliases (`#[session(alias = "...")]`), then the stored names
    /// of [`Session::FIELD_NAMES`]. A store may fetch only these fields (the Redis store names
    /// them in its `HMGET`); decoding in this order lets the current name win over an alias when
    /// a record holds both.
    const LOAD_NAMES: &'static [&'static str] = Self::FIELD_NAMES;

    /// Whether a save keeps the stored fields this type does not declare (`true`, the default),
    /// or purges them (`#[session(purge_undeclared)]`). Kept fields, and stored values that no
    /// longer decode, are written back byte-identical unless the handler set that field.
    const KEEP_UNDECLARED: bool = true;

    /// The index in [`Session::FIELD_NAMES`] of the owner field (`#[session(owner)]`), if the
    /// type has one; the type then implements [`OwnedSession`](crate::owner::OwnedSession).
    const OWNER_INDEX: Option<usize> = None;

    /// The owner field's value as a store indexes it ([`OwnerKey::index_key`](crate::owner::OwnerKey::index_key)),
    /// `None` when the type has no owner field or nobody owns the session.
    #[doc(hidden)]
    fn owner_key(&self) -> Option<String> {
        None
    }

    /// Builds the value of a new session: every field from its `default` function or
    /// [`Default::default`].
    #[doc(hidden)]
    fn new_default() -> Self;

    /// Encodes the stored field with index `index` (see [`Session::FIELD_NAMES`]).
    ///
    /// # Errors
    ///
    /// Returns the codec's error when the value cannot be encoded.
    #[doc(hidden)]
    fn encode_field(&self, index: usize) -> Result<Vec<u8>, CodecError>;

    /// Decodes a stored field by its stored name or one of its aliases into `self`.
    #[doc(hidden)]
    fn decode_field(&mut self, name: &str, bytes: &[u8]) -> FieldDecode;

    /// Decodes the stored field named `LOAD_NAMES[position]` into `self`: what
    /// [`Session::decode_field`] does with that name, without comparing names (the derive
    /// matches on the position).
    #[doc(hidden)]
    fn decode_loaded(&mut self, position: usize, bytes: &[u8]) -> FieldDecode {
        match Self::LOAD_NAMES.get(position) {
            Some(name) => self.decode_field(name, bytes),
            None => FieldDecode::Unknown,
        }
    }
}

/// A view of a session type: a struct of some of its fields, derived with
/// `#[session(view_of = Root)]`.
///
/// A view reads and writes the sessions of its root type: the same cookie, codec and timeouts.
/// A store that keeps fields one by one (Redis) loads only the view's fields, so a handler that
/// needs a few fields of a large session declares them in a view and pays for those alone.
/// Implemented by the derive, and only by it (the trait is sealed): a view shares its type's
/// cookie, which [`TypedSession::into_root`](crate::TypedSession::into_root) relies on. The
/// attribute reference is on the derive.
pub trait SessionView: Session + crate::private::ViewSealed {
    /// The session type this is a view of.
    type Root: Session;
}

/// What [`Session::decode_field`] did with one stored field.
#[doc(hidden)]
#[derive(Debug)]
pub enum FieldDecode {
    /// The field was decoded into the struct.
    Decoded,
    /// No field has this name or alias (a removed field): ignored.
    Unknown,
    /// The field exists but its stored value no longer decodes; it keeps its default.
    Failed(CodecError),
}
