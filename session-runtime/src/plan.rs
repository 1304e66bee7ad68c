//! The writes one session needs at the end of a request, as [`Inner::plan`](crate::lifecycle::Inner)
//! encodes them, and what executing them did.

use std::borrow::Cow;

use crate::codec::RecordCodec;
use crate::cookie_header::CookieAction;
use crate::record::{Bytes, Metadata, RecordRef, SessionId};
use crate::store::{OwnerEntry, Save, SaveOp};

/// The writes one session needs at the end of a request (or on `save().await`).
pub(crate) struct Plan {
    pub(crate) cookie_name: &'static str,
    pub(crate) codec: RecordCodec,
    pub(crate) now: u64,
    pub(crate) delete: Option<SessionId>,
    /// Boxed: a plan is moved several times on its way to the store, and most requests'
    /// plans (reads) have none.
    pub(crate) write: Option<Box<Write>>,
    pub(crate) remove_cookie: bool,
    pub(crate) previous: Option<CookieAction>,
}

/// The one store write of a plan: what to do, and the record it carries.
pub(crate) struct Write {
    pub(crate) op: WriteOp,
    pub(crate) metadata: Metadata,
    pub(crate) fields: Vec<(&'static str, Vec<u8>)>,
    /// The loaded fields the save carries as they are (see [`RecordRef::kept`]).
    pub(crate) kept: Vec<(Cow<'static, str>, Bytes)>,
    /// The session type's names, when it purges what it does not declare (see [`Save::purge`]).
    pub(crate) purge: Option<&'static [&'static str]>,
    pub(crate) expires_at: u64,
    pub(crate) codec: RecordCodec,
    /// The per-owner index entry the save keeps (see [`OwnerEntry`]): the owner's index key,
    /// `None` for no owner, and the entry's horizon.
    pub(crate) owner: Option<(Option<String>, u64)>,
}

impl Write {
    /// The save of this write, with its own fields.
    pub(crate) fn save<'a>(&'a self, cookie_name: &'a str, op: SaveOp<'a>, now: u64) -> Save<'a> {
        Save {
            record: RecordRef {
                metadata: &self.metadata,
                encoded: &self.fields,
                kept: &self.kept,
            },
            purge: self.purge,
            ..self.save_fields(cookie_name, op, now, &[])
        }
    }

    /// A save of this write's metadata and expiry with other fields, nothing kept.
    pub(crate) fn save_fields<'a>(
        &'a self,
        cookie_name: &'a str,
        op: SaveOp<'a>,
        now: u64,
        fields: &'a [(&'static str, Vec<u8>)],
    ) -> Save<'a> {
        Save {
            cookie_name,
            op,
            record: RecordRef::new(&self.metadata, fields),
            expires_at: self.expires_at,
            purge: None,
            now,
            codec: self.codec,
            owner: self.owner.as_ref().map(|(owner, until)| OwnerEntry {
                owner: owner.as_deref(),
                until: *until,
            }),
        }
    }
}

/// What a [`Write`] does to the store.
pub(crate) enum WriteOp {
    Create,
    Update(SessionId),
    Touch(SessionId),
    Regenerate(SessionId),
    /// A periodic renewal: the whole record under a new id, then a forward in the old record.
    Renew(SessionId),
    Seal,
}

impl Plan {
    /// Whether executing this plan touches the store or the cookie at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.delete.is_none() && self.write.is_none() && !self.remove_cookie
    }

    /// Whether the plan's one store call, if any, seals the record into the cookie: nothing to
    /// delete, no id. A cookie store's plans are such.
    pub(crate) fn seals_only(&self) -> bool {
        self.delete.is_none()
            && self
                .write
                .as_ref()
                .is_none_or(|write| matches!(write.op, WriteOp::Seal))
    }

    /// The cookie to send if nothing is executed.
    pub(crate) fn previous_cookie(&self) -> Option<&CookieAction> {
        self.previous.as_ref()
    }

    pub(crate) fn cookie_name(&self) -> &'static str {
        self.cookie_name
    }
}

/// What an executed write left in the store.
pub(crate) enum Saved {
    Stored(Option<SessionId>),
    Missing,
    Nothing,
}

/// The result of executing a plan.
pub(crate) struct Executed {
    pub(crate) cookie: Option<CookieAction>,
    pub(crate) saved: Saved,
    pub(crate) metadata: Option<Metadata>,
    /// The fields the save encoded and wrote, for the session to carry into its next save.
    pub(crate) written: Vec<(&'static str, Vec<u8>)>,
    /// The save purged the stored fields the type does not declare.
    pub(crate) purged: bool,
}
