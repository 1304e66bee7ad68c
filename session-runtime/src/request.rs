//! The per-request registry: where a request's sessions are checked out by their handles and
//! handed back, one slot per session type, until the response saves them.

use std::any::{Any, TypeId};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::error::Error;
use crate::lifecycle::Inner;
use crate::plan::Plan;
use crate::session::Session;
use crate::shared::Shared;

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
        Inner::has_writes(self)
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
    /// Each session type used, with its cookie name and slot.
    list: List<(TypeId, &'static str, Slot)>,
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
    pub(crate) fn push(&mut self, item: T) {
        if self.first.is_none() {
            self.first = Some(item);
        } else {
            self.rest.push(item);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
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
    /// Another session type with the same cookie name (a view and the type it views) is used in
    /// this request: both would write one cookie.
    CookieTaken,
}

impl RequestSessions {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            slots: Mutex::new(Slots::default()),
        }
    }

    #[inline]
    fn lock(&self) -> MutexGuard<'_, Slots> {
        // Every critical section is a single push, swap or take: a panic cannot leave it torn.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn checkout<T: Session>(&self) -> Checkout<T> {
        let mut slots = self.lock();
        let key = TypeId::of::<T>();
        let found = slots.list.iter_mut().find(|(id, _, _)| *id == key);
        match found {
            None => {
                if slots
                    .list
                    .iter()
                    .any(|(_, cookie, _)| *cookie == T::COOKIE_NAME)
                {
                    return Checkout::CookieTaken;
                }
                // A request that already uses another session may hold that session's lock, so it
                // must not wait for this one (see `Inner::load`).
                let may_wait = slots.list.is_empty();
                slots.list.push((key, T::COOKIE_NAME, Slot::CheckedOut));
                Checkout::Load { may_wait }
            }
            Some((_, _, Slot::CheckedOut)) => Checkout::Busy,
            Some((_, _, slot)) => match std::mem::replace(slot, Slot::CheckedOut) {
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

    /// Moves the checked-out slot of session type `from` to type `to`, which shares its cookie
    /// (a view becoming the type it views).
    pub(crate) fn retype(&self, from: TypeId, to: TypeId) {
        if let Some(slot) = self.lock().list.iter_mut().find(|(id, _, _)| *id == from) {
            slot.0 = to;
        }
    }

    /// Forgets a checkout that produced no session (a failed load). A peek that finds none hands
    /// its fresh session back instead, for a later extractor of the same request.
    pub(crate) fn cancel<T: Session>(&self) {
        let key = TypeId::of::<T>();
        self.lock().list.retain(|(id, _, _)| *id != key);
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
        if let Some((_, _, slot)) = slots.list.iter_mut().find(|(id, _, _)| *id == key) {
            *slot = Slot::Returned(pending);
        }
    }

    /// Closes the request and returns the sessions to save, and whether any session was used.
    pub(crate) fn close(&self) -> (List<Box<dyn Pending>>, bool) {
        let mut slots = self.lock();
        slots.closed = true;
        let used = !slots.list.is_empty();
        let pending = std::mem::take(&mut slots.list)
            .into_iter()
            .filter_map(|(_, _, slot)| match slot {
                Slot::Returned(pending) => Some(pending),
                Slot::CheckedOut => None,
            })
            .collect();
        (pending, used)
    }
}
