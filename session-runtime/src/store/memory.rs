//! The in-memory store.

use std::borrow::{Borrow, Cow};
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::ops::Range;
use std::sync::{Mutex, MutexGuard};

use super::{
    Delete, Immediate, ListOwned, Load, OwnedRecords, OwnerEntry, Revoke, Save, SaveOp,
    SaveOutcome, StoreError, StoreKind,
};
use crate::owner::SessionHandle;
use crate::record::{Bytes, Metadata, RENEWED_FIELD, Record, SessionId};

/// The end of a list: no slot.
const NIL: usize = usize::MAX;

/// The least time between two warnings that the store is full, in milliseconds.
const WARN_INTERVAL_MS: u64 = 60_000;

/// At most how many expired records an insert into a full store removes from the cold ends of
/// the two lists. Each record is removed once, so this is constant work per insert on average;
/// the limit only keeps a single insert short after many records expired at once.
const SWEEP_LIMIT: usize = 16;

/// How many slots an insert into a full store inspects, round robin, for an expired record
/// that is not at the cold end of its list (records with different lifetimes are not ordered
/// by expiry in their list). Two probes per insert visit every slot within `capacity / 2`
/// inserts.
const PROBES: usize = 2;

/// A record's key: its id, kept inline (no allocation per insert), looked up by its bytes (a
/// load's `&str` as bytes, a save's id without the UTF-8 check of `SessionId::as_str`), so it
/// hashes as its bytes do.
#[derive(Debug, PartialEq, Eq)]
struct Key(SessionId);

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.as_bytes().hash(state);
    }
}

impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// The index's hash of an id: a multiply-and-rotate over its bytes, eight at a time, from a
/// random seed per store.
///
/// A `HashMap` keyed by what clients send needs a keyed hash (the std's `SipHash`), or an
/// attacker who knows the function can fill the table with colliding keys. This index never
/// holds a key a client chose: records are inserted under ids the runtime generated from the
/// operating system's random source (a create, a regeneration, a renewal), and an update or a
/// touch of an id the store does not hold inserts nothing (it is `Missing`). What a client
/// could still do is keep alive, of many sessions it had created, those whose ids collide under
/// a known function: the seed, drawn from the std's randomly keyed `RandomState` when the store
/// is made, keeps the function unknown. `SipHash` cost about 275 instructions per lookup of a
/// 43-character id, and a request looks its session up once to load it and once to save it;
/// this costs about 40. (The request locks' table holds the ids clients send, and keeps
/// `SipHash`.)
struct IdHasher(u64);

/// Builds the index's [`IdHasher`]s from the store's seed.
#[derive(Clone)]
struct IdHashing {
    seed: u64,
}

impl IdHashing {
    fn new() -> Self {
        Self {
            seed: std::hash::RandomState::new().hash_one(0x5eed_u64),
        }
    }
}

impl BuildHasher for IdHashing {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher(self.seed)
    }
}

impl IdHasher {
    /// An odd constant with its bits spread (from `rustc-hash`).
    const K: u64 = 0xf135_7aea_2e62_a9c5;

    fn add(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(Self::K);
    }
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        // The product's high bits are its best mixed; the table takes its bucket from the low
        // ones.
        self.0.rotate_left(26)
    }
}

/// Keeps sessions in the process's memory: the embedded default for development, tests and
/// single-process apps. Sessions are lost on restart and not shared between processes.
///
/// Records expire at the time each save sets; expired records are never returned, and are
/// removed when they are read, and by every insert, which removes the expired records it finds
/// at the cold ends of its lists and in two more slots (so abandoned sessions do not pile up in
/// a store far from full).
///
/// The store is bounded: at [`MemoryStore::with_capacity`] records, an insert first removes the
/// expired records it finds cheaply, then drops a live one. The live ones are kept in two
/// least-recently-used lists (a segmented LRU): a new session starts in *probation* and moves
/// to the *protected* list, which holds at most 80% of the capacity, when it is used again
/// (loaded, updated or touched); room is made in probation first. A flood of sessions that are
/// never used again, such as requests without a cookie, so pushes out other new sessions and
/// not the sessions of returning users. (A client that sends each new cookie back once gets
/// its sessions protected too; limit the rate of such clients in front of the app.)
///
/// Every operation takes constant time on average, on a full store too: none scans the
/// records. Dropping live sessions is logged as a warning at most once a minute, with the
/// count of sessions dropped since the previous warning.
///
/// Sessions of a type with an owner field (`#[session(owner)]`) are indexed by owner, exactly:
/// a record leaves its owner's index when it is deleted, expires, is evicted or changes owner,
/// so the index never holds more than the records themselves.
///
/// # Examples
///
/// ```
/// use session_runtime::SessionLayer;
/// use session_runtime::store::MemoryStore;
///
/// let layer = SessionLayer::new(MemoryStore::new().with_capacity(10_000));
/// ```
pub struct MemoryStore {
    records: Mutex<Records>,
    capacity: usize,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// Creates an empty store holding up to 100,000 sessions.
    #[must_use]
    pub fn new() -> Self {
        Self {
            records: Mutex::new(Records::new()),
            capacity: 100_000,
        }
    }

    /// Sets how many sessions the store holds at most. The default is 100,000.
    #[must_use]
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Returns how many records the store holds, expired ones not yet swept included.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Returns whether the store holds no record.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lock().len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(|poisoned| {
            // Nothing done under the lock panics but a bug in `Records`, which may have left
            // the lists half-linked: start over empty rather than follow broken links.
            let mut records = poisoned.into_inner();
            *records = Records::new();
            self.records.clear_poison();
            records
        })
    }

    /// The most records the protected list holds: 80% of the capacity.
    fn protected_capacity(&self) -> usize {
        self.capacity - self.capacity.div_ceil(5)
    }

    /// Does the save under the lock; also returns the count of live records dropped since the
    /// last warning when a warning is due, so that it is logged after the lock is released.
    fn save_locked(&self, save: &Save<'_>) -> (Result<SaveOutcome, StoreError>, Option<u64>) {
        let mut records = self.lock();
        let mut warning = None;
        let id = match save.op {
            SaveOp::Create { id }
            | SaveOp::Regenerate { new: id, .. }
            | SaveOp::Renew { new: id, .. } => {
                if let Some(slot) = records.slot(id.as_bytes()) {
                    if records.node(slot).expires_at > save.now {
                        return (Ok(SaveOutcome::IdTaken), None);
                    }
                    records.remove(slot);
                }
                // A session a logout deleted meanwhile, or another request renewed away, does
                // not move to a new id: that would bring it back.
                if let SaveOp::Regenerate { old, .. } | SaveOp::Renew { old, .. } = save.op {
                    let live = records.slot(old.as_bytes()).is_some_and(|slot| {
                        let node = records.node(slot);
                        node.expires_at > save.now && !node.record.is_renewed()
                    });
                    if !live {
                        return (Ok(SaveOutcome::Missing), None);
                    }
                }
                // A regenerated session is the same user's: it keeps its place.
                let mut segment = Segment::Probation;
                // A renewal leaves the old record in place (the runtime turns it into a
                // forward), so the new one starts in probation like any new record; its next
                // use promotes it.
                if let SaveOp::Regenerate { old, .. } = save.op {
                    if let Some(slot) = records.slot(old.as_bytes()) {
                        let node = records.remove(slot);
                        if node.expires_at > save.now {
                            segment = node.segment;
                        }
                    }
                }
                warning = records.make_room(self.capacity, save.now);
                // A regenerated record takes the place of the old one, so the protected list
                // does not grow past its capacity.
                let slot = records.insert(id.clone(), Stored::of(save), save.expires_at, segment);
                if let Some(entry) = save.owner {
                    records.set_owner(slot, save.cookie_name, entry);
                }
                id
            }
            SaveOp::Update { id } | SaveOp::Touch { id } => {
                let Some(slot) = records.slot(id.as_bytes()) else {
                    return (Ok(SaveOutcome::Missing), None);
                };
                let node = records.node(slot);
                if node.expires_at <= save.now {
                    records.remove(slot);
                    return (Ok(SaveOutcome::Missing), None);
                }
                if node.record.is_renewed() {
                    return (Ok(SaveOutcome::Missing), None);
                }
                let node = records.node_mut(slot);
                node.record.merge(save);
                node.expires_at = save.expires_at;
                if let Some(entry) = save.owner {
                    records.set_owner(slot, save.cookie_name, entry);
                }
                records.promote(slot, self.protected_capacity());
                id
            }
            SaveOp::Seal => {
                return (
                    Err(StoreError::backend(
                        "the memory store keeps records on the server and cannot seal a cookie",
                    )),
                    None,
                );
            }
        };
        (Ok(SaveOutcome::Saved(id.as_str().to_owned())), warning)
    }
}

immediate_store!(MemoryStore, StoreKind::Server);

/// The operations themselves: they never wait, so the layer calls them without a future.
impl Immediate for MemoryStore {
    fn load_now(&self, load: Load<'_>) -> Result<Option<Record>, StoreError> {
        let mut records = self.lock();
        let Some(slot) = records.slot(load.value.as_bytes()) else {
            return Ok(None);
        };
        if records.node(slot).expires_at <= load.now {
            records.remove(slot);
            return Ok(None);
        }
        records.promote(slot, self.protected_capacity());
        Ok(Some(records.node(slot).record.to_record()))
    }

    fn save_now(&self, save: Save<'_>) -> Result<SaveOutcome, StoreError> {
        let (outcome, warning) = self.save_locked(&save);
        if let Some(evicted) = warning {
            tracing::warn!(
                capacity = self.capacity,
                evicted,
                "memory session store is full: dropped `evicted` live sessions, least recently used first, since the last warning; raise its capacity or use a shared store"
            );
        }
        outcome
    }

    fn delete_now(&self, delete: Delete<'_>) -> Result<(), StoreError> {
        let mut records = self.lock();
        if let Some(slot) = records.slot(delete.id.as_bytes()) {
            records.remove(slot);
        }
        Ok(())
    }

    fn list_owned_now(&self, list: ListOwned<'_>) -> Result<OwnedRecords, StoreError> {
        let mut records = self.lock();
        let key = owner_key(list.cookie_name, list.owner);
        let Some(entries) = records.owners.get(&key) else {
            return Ok(Vec::new());
        };
        let entries: Vec<(SessionHandle, usize)> = entries
            .iter()
            .map(|(handle, slot)| (handle.clone(), *slot))
            .collect();
        Ok(entries
            .into_iter()
            .map(|(handle, slot)| {
                if records.node(slot).expires_at <= list.now {
                    records.remove(slot);
                    return (handle, None);
                }
                (handle, Some(records.node(slot).record.to_record()))
            })
            .collect())
    }

    fn revoke_now(&self, revoke: Revoke<'_>) -> Result<usize, StoreError> {
        let mut records = self.lock();
        let key = owner_key(revoke.cookie_name, revoke.owner);
        let mut revoked = 0;
        for (handle, owner_bytes) in revoke.sessions {
            let Some(slot) = records.owned_slot(&key, handle) else {
                continue;
            };
            let holds = records
                .node(slot)
                .record
                .iter()
                .find(|(name, _)| *name == revoke.field)
                .is_some_and(|(_, value)| value == owner_bytes);
            if holds {
                records.remove(slot);
                revoked += 1;
            }
        }
        // The runtime found these expired (or gone): the records go with their entries.
        for handle in revoke.stale {
            if let Some(slot) = records.owned_slot(&key, handle) {
                records.remove(slot);
            }
        }
        Ok(revoked)
    }
}

/// The key of an owner's index: the cookie name, prefixed with its length so that no cookie
/// name and owner key pair reads as another, and the owner's key.
fn owner_key(cookie_name: &str, owner: &str) -> String {
    format!("{}:{cookie_name}:{owner}", cookie_name.len())
}

/// The list a record is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    /// New records, and records pushed out of the protected list.
    Probation,
    /// Records used again after they were written.
    Protected,
}

/// A record as the store keeps it: every field's value in one buffer, where a [`Record`] holds
/// a buffer per value. An idle session then costs two allocations (the values, the names) and
/// not one more per field: about 150 bytes less for the example's four fields. A save builds
/// the buffer again (the fields it does not change are copied: they are small, and a save of
/// the memory store copies the changed ones anyway); a load hands out slices of it, which
/// share it.
struct Stored {
    metadata: Metadata,
    /// The values, one after another.
    values: Bytes,
    /// Each field's stored name and where its value ends in `values`, in order.
    fields: Box<[(Cow<'static, str>, usize)]>,
}

impl Stored {
    /// The record a save of a new id writes: its fields, kept and encoded.
    fn of(save: &Save<'_>) -> Self {
        Self::pack(*save.record.metadata, || save_fields(save))
    }

    /// Applies `save`: its metadata and fields replace the stored ones by name, the other
    /// stored fields stay (except those [`Save::purge`] drops), new names come last. The same
    /// result as [`Save::merge_into`] on a [`Record`].
    fn merge(&mut self, save: &Save<'_>) {
        self.metadata = *save.record.metadata;
        let stored = |name: Name<'_>| self.fields.iter().any(|(old, _)| old == name.as_str());
        if save.purge.is_some() || !save_fields(save).all(|(name, _)| stored(name)) {
            *self = self.merged(save);
            return;
        }
        // The usual save: the same names, some values changed. Only the values are built again.
        let changed = |name: &str| {
            save_fields(save)
                .find(|(new, _)| new.as_str() == name)
                .map(|(_, value)| value)
        };
        let size = self
            .iter()
            .map(|(name, value)| changed(name).unwrap_or(value).len())
            .sum();
        let mut values = Vec::with_capacity(size);
        let mut start = 0;
        for (name, end) in &mut self.fields {
            values.extend_from_slice(changed(name).unwrap_or(&self.values[start..*end]));
            start = *end;
            *end = values.len();
        }
        self.values = Bytes::from(values);
    }

    /// This record with `save` applied, built anew: see [`Stored::merge`].
    fn merged(&self, save: &Save<'_>) -> Self {
        let stays = |name: &str| save.purge.is_none_or(|names| names.contains(&name));
        let changed = |name: &str| save_fields(save).find(|(new, _)| new.as_str() == name);
        let old = || {
            self.names()
                .filter(|(name, _)| stays(name.as_str()))
                .map(|(name, value)| changed(name.as_str()).unwrap_or((name, value)))
        };
        let new = || {
            save_fields(save).filter(|(name, _)| {
                !self
                    .iter()
                    .any(|(old, _)| stays(old) && old == name.as_str())
            })
        };
        Self::pack(*save.record.metadata, || old().chain(new()))
    }

    /// Packs the fields `fields()` yields (called twice: once to size, once to copy).
    fn pack<'a, I>(metadata: Metadata, fields: impl Fn() -> I) -> Self
    where
        I: Iterator<Item = (Name<'a>, &'a [u8])>,
    {
        let (count, size) = fields().fold((0, 0), |(count, size), (_, value)| {
            (count + 1, size + value.len())
        });
        let mut values = Vec::with_capacity(size);
        let mut names = Vec::with_capacity(count);
        for (name, value) in fields() {
            values.extend_from_slice(value);
            names.push((name.to_cow(), values.len()));
        }
        Self {
            metadata,
            values: Bytes::from(values),
            fields: names.into_boxed_slice(),
        }
    }

    /// The fields: stored name and value.
    fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.names().map(|(name, value)| (name.as_str(), value))
    }

    /// The fields, with their names as [`pack`](Self::pack) takes them.
    fn names(&self) -> impl Iterator<Item = (Name<'_>, &[u8])> {
        self.spans()
            .map(|(name, span)| (Name::Stored(name), &self.values[span]))
    }

    /// Each field's name and where its value lies in `values`.
    fn spans(&self) -> impl Iterator<Item = (&Cow<'static, str>, Range<usize>)> {
        let mut start = 0;
        self.fields.iter().map(move |(name, end)| {
            let span = start..*end;
            start = *end;
            (name, span)
        })
    }

    /// The record a load hands out: the values share this record's buffer.
    fn to_record(&self) -> Record {
        let fields = self
            .spans()
            .map(|(name, span)| (name.clone(), self.values.slice(span)))
            .collect();
        Record::from_parts(self.metadata, fields)
    }

    /// See [`Record::is_renewed`].
    fn is_renewed(&self) -> bool {
        self.fields.iter().any(|(name, _)| name == RENEWED_FIELD)
    }
}

/// The fields a save writes, kept then encoded, borrowed.
fn save_fields<'a>(save: &'a Save<'_>) -> impl Iterator<Item = (Name<'a>, &'a [u8])> {
    save.record
        .kept
        .iter()
        .map(|(name, value)| (Name::Stored(name), &value[..]))
        .chain(
            save.record
                .encoded
                .iter()
                .map(|(name, value)| (Name::Static(name), &value[..])),
        )
}

/// A field's name on its way into a [`Stored`]: borrowed until the record is built, so that
/// sizing it clones nothing.
#[derive(Clone, Copy)]
enum Name<'a> {
    /// A name of the session type.
    Static(&'static str),
    /// A name a record holds (the session type's, or one it does not declare).
    Stored(&'a Cow<'static, str>),
}

impl<'a> Name<'a> {
    fn as_str(self) -> &'a str {
        match self {
            Self::Static(name) => name,
            Self::Stored(name) => name,
        }
    }

    /// The name as a record holds it: the session type's `&'static` names stay borrowed.
    fn to_cow(self) -> Cow<'static, str> {
        match self {
            Self::Static(name) => Cow::Borrowed(name),
            Self::Stored(name) => name.clone(),
        }
    }
}

/// One record and its links in its list.
struct Node {
    id: SessionId,
    record: Stored,
    /// The owner index this record is in ([`owner_key`]) and its handle there.
    owner: Option<Box<(String, SessionHandle)>>,
    expires_at: u64,
    segment: Segment,
    /// The slot of the next more recently used record of the list, or [`NIL`].
    prev: usize,
    /// The slot of the next less recently used record of the list, or [`NIL`].
    next: usize,
}

/// A doubly linked list of slots, most recently used at the head.
#[derive(Debug, Clone, Copy)]
struct List {
    head: usize,
    tail: usize,
    len: usize,
}

impl List {
    const EMPTY: Self = Self {
        head: NIL,
        tail: NIL,
        len: 0,
    };
}

/// The records, in a slab of slots linked into two lists by index, under the store's lock.
///
/// Every method takes constant time: no method scans the records.
struct Records {
    /// Each record's slot, by id.
    index: HashMap<Key, usize, IdHashing>,
    /// The slots of each owner's records, by owner index key ([`owner_key`]) and handle.
    owners: HashMap<String, HashMap<SessionHandle, usize>>,
    /// The records; `None` for a free slot.
    slots: Vec<Option<Node>>,
    /// The free slots.
    free: Vec<usize>,
    probation: List,
    protected: List,
    /// The slot the next probe for an expired record looks at.
    hand: usize,
    /// Live records dropped since the last warning.
    evicted: u64,
    /// When the last warning was due (Unix milliseconds).
    warned_at: Option<u64>,
}

impl Records {
    fn new() -> Self {
        Self {
            index: HashMap::with_hasher(IdHashing::new()),
            owners: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            probation: List::EMPTY,
            protected: List::EMPTY,
            hand: 0,
            evicted: 0,
            warned_at: None,
        }
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    fn slot(&self, id: &[u8]) -> Option<usize> {
        self.index.get(id).copied()
    }

    fn node(&self, slot: usize) -> &Node {
        self.slots[slot]
            .as_ref()
            .unwrap_or_else(|| unreachable!("a linked slot holds a record"))
    }

    fn node_mut(&mut self, slot: usize) -> &mut Node {
        self.slots[slot]
            .as_mut()
            .unwrap_or_else(|| unreachable!("a linked slot holds a record"))
    }

    fn list_mut(&mut self, segment: Segment) -> &mut List {
        match segment {
            Segment::Probation => &mut self.probation,
            Segment::Protected => &mut self.protected,
        }
    }

    /// Takes the record in `slot` out of its list.
    fn unlink(&mut self, slot: usize) {
        let Node {
            prev,
            next,
            segment,
            ..
        } = *self.node(slot);
        match prev {
            NIL => self.list_mut(segment).head = next,
            prev => self.node_mut(prev).next = next,
        }
        match next {
            NIL => self.list_mut(segment).tail = prev,
            next => self.node_mut(next).prev = prev,
        }
        self.list_mut(segment).len -= 1;
    }

    /// Puts the unlinked record in `slot` at the head of `segment`.
    fn push_front(&mut self, slot: usize, segment: Segment) {
        let head = self.list_mut(segment).head;
        let node = self.node_mut(slot);
        node.prev = NIL;
        node.next = head;
        node.segment = segment;
        if head != NIL {
            self.node_mut(head).prev = slot;
        }
        let list = self.list_mut(segment);
        list.head = slot;
        if list.tail == NIL {
            list.tail = slot;
        }
        list.len += 1;
    }

    /// Stores a record at the head of `segment`; there must be no record with this id. Returns
    /// its slot.
    fn insert(
        &mut self,
        id: SessionId,
        record: Stored,
        expires_at: u64,
        segment: Segment,
    ) -> usize {
        let node = Node {
            id: id.clone(),
            record,
            owner: None,
            expires_at,
            segment,
            prev: NIL,
            next: NIL,
        };
        let slot = if let Some(slot) = self.free.pop() {
            self.slots[slot] = Some(node);
            slot
        } else {
            self.slots.push(Some(node));
            self.slots.len() - 1
        };
        self.index.insert(Key(id), slot);
        self.push_front(slot, segment);
        slot
    }

    /// Moves the record in `slot` to the index of the owner `entry` names (out of every index
    /// when it names none).
    fn set_owner(&mut self, slot: usize, cookie_name: &str, entry: OwnerEntry<'_>) {
        self.unindex_owner(slot);
        let Some(owner) = entry.owner else {
            return;
        };
        let key = owner_key(cookie_name, owner);
        let handle = SessionHandle::of(&self.node(slot).id);
        self.owners
            .entry(key.clone())
            .or_default()
            .insert(handle.clone(), slot);
        self.node_mut(slot).owner = Some(Box::new((key, handle)));
    }

    /// Takes the record in `slot` out of its owner's index, if it is in one.
    fn unindex_owner(&mut self, slot: usize) {
        let Some(owner) = self.node_mut(slot).owner.take() else {
            return;
        };
        let (key, handle) = *owner;
        if let Some(entries) = self.owners.get_mut(&key) {
            entries.remove(&handle);
            if entries.is_empty() {
                self.owners.remove(&key);
            }
        }
    }

    /// The slot of the record `handle` in the index `key`.
    fn owned_slot(&self, key: &str, handle: &SessionHandle) -> Option<usize> {
        self.owners.get(key)?.get(handle).copied()
    }

    /// Removes the record in `slot` (and its owner index entry) and returns it.
    fn remove(&mut self, slot: usize) -> Node {
        self.unindex_owner(slot);
        self.unlink(slot);
        let node = self.slots[slot]
            .take()
            .unwrap_or_else(|| unreachable!("a linked slot holds a record"));
        self.index.remove(node.id.as_bytes());
        self.free.push(slot);
        node
    }

    /// Records a use of the record in `slot`: it moves to the head of the protected list.
    fn promote(&mut self, slot: usize, protected_capacity: usize) {
        self.unlink(slot);
        self.push_front(slot, Segment::Protected);
        self.shrink_protected(protected_capacity);
    }

    /// Moves the least recently used protected records to the head of probation until the
    /// protected list fits `protected_capacity` (at most one move after a promotion).
    fn shrink_protected(&mut self, protected_capacity: usize) {
        while self.protected.len > protected_capacity {
            let tail = self.protected.tail;
            self.unlink(tail);
            self.push_front(tail, Segment::Probation);
        }
    }

    /// Makes room for one more record in a store of `capacity`: removes the expired records it
    /// finds at the cold ends of the lists and in [`PROBES`] slots (on every insert, so that
    /// expired sessions do not pile up in a store that is far from full), then, if the store is
    /// still full, drops the least recently used live record of probation (of the protected
    /// list if probation is empty). Returns the count to warn with when a warning is due.
    fn make_room(&mut self, capacity: usize, now: u64) -> Option<u64> {
        let mut swept = 0;
        for segment in [Segment::Probation, Segment::Protected] {
            while swept < SWEEP_LIMIT {
                let tail = self.list_mut(segment).tail;
                if tail == NIL || self.node(tail).expires_at > now {
                    break;
                }
                self.remove(tail);
                swept += 1;
            }
        }
        for _ in 0..PROBES {
            if self.slots.is_empty() {
                break;
            }
            self.hand = (self.hand + 1) % self.slots.len();
            if self.slots[self.hand]
                .as_ref()
                .is_some_and(|node| node.expires_at <= now)
            {
                self.remove(self.hand);
            }
        }
        if self.len() < capacity {
            return None;
        }
        let mut evicted = 0;
        while self.len() >= capacity {
            let victim = match self.probation.tail {
                NIL => self.protected.tail,
                tail => tail,
            };
            self.remove(victim);
            evicted += 1;
        }
        self.note_evictions(evicted, now)
    }

    /// Counts `evicted` dropped live records; returns the count since the last warning when a
    /// warning is due: on the first eviction, then at most once per [`WARN_INTERVAL_MS`] (or
    /// at once if the clock went back).
    fn note_evictions(&mut self, evicted: u64, now: u64) -> Option<u64> {
        if evicted == 0 {
            return None;
        }
        self.evicted += evicted;
        let due = self
            .warned_at
            .is_none_or(|at| now < at || now - at >= WARN_INTERVAL_MS);
        if !due {
            return None;
        }
        self.warned_at = Some(now);
        Some(std::mem::take(&mut self.evicted))
    }
}

#[cfg(all(test, feature = "json"))]
mod tests {
    use std::fmt::Write as _;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::codec::JsonCodec;
    use crate::record::IdFormat;
    use crate::session::{Metadata, RecordRef};
    use crate::store::{RENEWED_FIELD, RecordCodec};

    /// How long the test records live unless a test says otherwise: one hour.
    const LIFETIME: u64 = 3_600_000;

    /// The id of test session `n`: 43 base64url characters.
    fn id(n: usize) -> SessionId {
        SessionId::parse(&format!("{n:0>43}")).unwrap()
    }

    /// The index's hash spreads generated ids of both formats over a table's buckets
    /// (its low bits) and its control bytes (the top 7 bits) as random values would: 100,000
    /// ids fill about 69,900 of 2^17 buckets, and each of the 128 top values gets about 781.
    #[test]
    fn generated_ids_spread_over_the_index() {
        for format in [IdFormat::Base64Url256, IdFormat::Hex128] {
            let hasher = IdHashing::new();
            let mut buckets = std::collections::HashSet::new();
            let mut tops = [0u32; 128];
            for _ in 0..100_000 {
                let id = format.generate().unwrap();
                let hash = hasher.hash_one(Key(id));
                buckets.insert(hash & ((1 << 17) - 1));
                tops[usize::try_from(hash >> 57).unwrap()] += 1;
            }
            assert!(
                buckets.len() > 68_000,
                "{format:?}: {} buckets",
                buckets.len()
            );
            let (min, max) = (tops.iter().min().unwrap(), tops.iter().max().unwrap());
            assert!(
                *min > 650 && *max < 920,
                "{format:?}: top bits {min}..{max}"
            );
        }
    }

    fn save_at(
        store: &MemoryStore,
        op: SaveOp<'_>,
        fields: &[(&'static str, Vec<u8>)],
        now: u64,
        expires_at: u64,
    ) -> SaveOutcome {
        let metadata = Metadata::new(now);
        store
            .save_now(Save {
                purge: None,
                cookie_name: "s",
                op,
                record: RecordRef::new(&metadata, fields),
                expires_at,
                now,
                codec: RecordCodec::of::<JsonCodec>(),
                owner: None,
            })
            .unwrap()
    }

    /// A save of `kept` and `encoded` dropping what `purge` does not name, as the runtime
    /// builds one.
    fn save_of<'a>(
        id: &'a SessionId,
        metadata: &'a Metadata,
        kept: &'a [(Cow<'static, str>, Bytes)],
        encoded: &'a [(&'static str, Vec<u8>)],
        purge: Option<&'a [&'static str]>,
    ) -> Save<'a> {
        Save {
            purge,
            cookie_name: "s",
            op: SaveOp::Update { id },
            record: RecordRef {
                metadata,
                encoded,
                kept,
            },
            expires_at: LIFETIME,
            now: 0,
            codec: RecordCodec::of::<JsonCodec>(),
            owner: None,
        }
    }

    /// A record packed into one buffer, then saved over, reads back as a [`Record`] the same
    /// save merges into: every subset of kept and encoded fields, with and without a purge,
    /// names of the type and undeclared ones.
    #[test]
    fn a_stored_record_merges_as_a_record_does() {
        let id = id(1);
        let first = Metadata::new(1);
        let later = Metadata::new(2);
        let kept_pool: [(Cow<'static, str>, Bytes); 2] = [
            (Cow::Owned("x".to_owned()), Bytes::from_static(b"X1")),
            (Cow::Borrowed("k"), Bytes::from_static(b"")),
        ];
        let encoded_pool: [(&'static str, Vec<u8>); 3] = [
            ("a", b"A1".to_vec()),
            ("b", b"B1".to_vec()),
            ("c", b"C1".to_vec()),
        ];
        let purges: [Option<&[&'static str]>; 4] =
            [None, Some(&[]), Some(&["a"]), Some(&["x", "b", "k"])];
        let initial_kept = [
            (Cow::Owned("x".to_owned()), Bytes::from_static(b"X0")),
            (Cow::Borrowed("a"), Bytes::from_static(b"A0")),
        ];
        let initial_encoded = [("b", b"B00".to_vec())];
        let initial = save_of(&id, &first, &initial_kept, &initial_encoded, None);
        let stored = Stored::of(&initial);
        assert_eq!(stored.to_record(), initial.to_record());
        for kept_mask in 0..4 {
            for encoded_mask in 0..8 {
                for purge in purges {
                    let kept: Vec<_> = (0..2)
                        .filter(|i| kept_mask & (1 << i) != 0)
                        .map(|i| kept_pool[i].clone())
                        .collect();
                    let encoded: Vec<_> = (0..3)
                        .filter(|i| encoded_mask & (1 << i) != 0)
                        .map(|i| encoded_pool[i].clone())
                        .collect();
                    let save = save_of(&id, &later, &kept, &encoded, purge);
                    let mut expected = initial.to_record();
                    save.merge_into(&mut expected);
                    let mut merged = Stored::of(&initial);
                    merged.merge(&save);
                    assert_eq!(
                        merged.to_record(),
                        expected,
                        "kept {kept_mask:b}, encoded {encoded_mask:b}, purge {purge:?}"
                    );
                    assert_eq!(merged.is_renewed(), expected.is_renewed());
                }
            }
        }
    }

    fn create(store: &MemoryStore, n: usize, now: u64) -> SaveOutcome {
        create_until(store, n, now, now + LIFETIME)
    }

    fn create_until(store: &MemoryStore, n: usize, now: u64, expires_at: u64) -> SaveOutcome {
        let id = id(n);
        save_at(
            store,
            SaveOp::Create { id: &id },
            &[("n", b"0".to_vec())],
            now,
            expires_at,
        )
    }

    fn update(store: &MemoryStore, n: usize, now: u64) -> SaveOutcome {
        let id = id(n);
        save_at(
            store,
            SaveOp::Update { id: &id },
            &[("n", b"1".to_vec())],
            now,
            now + LIFETIME,
        )
    }

    fn load(store: &MemoryStore, n: usize, now: u64) -> Option<Record> {
        let id = id(n);
        store
            .load_now(Load {
                cookie_name: "s",
                value: id.as_str(),
                now,
                codec: RecordCodec::of::<JsonCodec>(),
                names: &["n"],
            })
            .unwrap()
    }

    /// Uses session `n` as a request does: loads it and writes a changed field.
    fn use_session(store: &MemoryStore, n: usize, now: u64) -> bool {
        load(store, n, now).is_some() && matches!(update(store, n, now), SaveOutcome::Saved(_))
    }

    /// Checks the links, the index and the bounds of the lists.
    fn check_invariants(store: &MemoryStore) {
        let records = store.lock();
        let mut seen = 0;
        for (segment, list) in [
            (Segment::Probation, records.probation),
            (Segment::Protected, records.protected),
        ] {
            let mut prev = NIL;
            let mut slot = list.head;
            let mut len = 0;
            while slot != NIL {
                let node = records.node(slot);
                assert_eq!(node.segment, segment);
                assert_eq!(node.prev, prev);
                assert_eq!(records.index.get(node.id.as_bytes()), Some(&slot));
                prev = slot;
                slot = node.next;
                len += 1;
            }
            assert_eq!(list.tail, prev);
            assert_eq!(list.len, len);
            seen += len;
        }
        assert_eq!(seen, records.index.len());
        assert_eq!(
            records.slots.iter().filter(|slot| slot.is_none()).count(),
            records.free.len()
        );
        assert!(records.len() <= store.capacity);
        assert!(records.protected.len <= store.protected_capacity());
        // The owner index names exactly the records that say they are in it.
        let mut indexed = 0;
        for (key, entries) in &records.owners {
            assert!(!entries.is_empty(), "an empty owner index is removed");
            for (handle, slot) in entries {
                let node = records.node(*slot);
                let (node_key, node_handle) = &**node.owner.as_ref().expect("indexed node");
                assert_eq!((node_key, node_handle), (key, handle));
                assert_eq!(*handle, SessionHandle::of(&node.id));
                indexed += 1;
            }
        }
        let owned = records
            .slots
            .iter()
            .flatten()
            .filter(|n| n.owner.is_some())
            .count();
        assert_eq!(indexed, owned);
    }

    /// Creates session `n` owned by `owner`.
    fn create_owned(store: &MemoryStore, n: usize, owner: &str, now: u64) -> SaveOutcome {
        let metadata = Metadata::new(now);
        let fields = [("user", owner.as_bytes().to_vec())];
        store
            .save_now(Save {
                purge: None,
                cookie_name: "s",
                op: SaveOp::Create { id: &id(n) },
                record: RecordRef::new(&metadata, &fields),
                expires_at: now + LIFETIME,
                now,
                codec: RecordCodec::of::<JsonCodec>(),
                owner: Some(OwnerEntry {
                    owner: Some(owner),
                    until: now + 2 * LIFETIME,
                }),
            })
            .unwrap()
    }

    fn listed(store: &MemoryStore, owner: &str, now: u64) -> usize {
        store
            .list_owned_now(ListOwned {
                cookie_name: "s",
                owner,
                now,
                codec: RecordCodec::of::<JsonCodec>(),
            })
            .unwrap()
            .len()
    }

    /// The owner index follows evictions, expiry and deletes: it never names a record that is
    /// gone, and never outgrows the store.
    #[test]
    fn the_owner_index_follows_the_records() {
        let store = MemoryStore::new().with_capacity(10);
        for n in 0..25 {
            create_owned(&store, n, if n % 2 == 0 { "ann" } else { "bob" }, 0);
            check_invariants(&store);
        }
        assert_eq!(listed(&store, "ann", 1) + listed(&store, "bob", 1), 10);
        store
            .delete_now(Delete {
                cookie_name: "s",
                id: &id(24),
            })
            .unwrap();
        check_invariants(&store);
        assert_eq!(listed(&store, "ann", 1) + listed(&store, "bob", 1), 9);
        // Past their expiry, a listing drops them.
        assert_eq!(
            store
                .list_owned_now(ListOwned {
                    cookie_name: "s",
                    owner: "ann",
                    now: LIFETIME + 1,
                    codec: RecordCodec::of::<JsonCodec>(),
                })
                .unwrap()
                .iter()
                .filter(|(_, record)| record.is_some())
                .count(),
            0
        );
        check_invariants(&store);
        assert_eq!(listed(&store, "ann", LIFETIME + 1), 0);
        // Revoking checks the owner field's bytes.
        let bob = store
            .list_owned_now(ListOwned {
                cookie_name: "s",
                owner: "bob",
                now: 1,
                codec: RecordCodec::of::<JsonCodec>(),
            })
            .unwrap();
        let (handle, _) = bob[0].clone();
        let wrong = [(handle.clone(), Bytes::from_static(b"ann"))];
        let right = [(handle, Bytes::from_static(b"bob"))];
        let revoke = |sessions| Revoke {
            cookie_name: "s",
            owner: "bob",
            field: "user",
            sessions,
            stale: &[],
            now: 1,
        };
        assert_eq!(store.revoke_now(revoke(&wrong)).unwrap(), 0);
        assert_eq!(store.revoke_now(revoke(&right)).unwrap(), 1);
        assert_eq!(store.revoke_now(revoke(&right)).unwrap(), 0);
        check_invariants(&store);
    }

    /// 1,000 sessions in steady use keep their place while new sessions that are never used
    /// again arrive, 10 times the capacity of them. Each active session is used once per 4,000
    /// new sessions, twice the capacity, so a plain LRU (or the old "closest to expiry" rule)
    /// would have dropped every one of them.
    #[test]
    fn a_flood_of_new_sessions_keeps_the_active_ones() {
        const CAPACITY: usize = 2_000;
        const ACTIVE: usize = 1_000;
        const FLOOD: usize = 10 * CAPACITY;
        let store = MemoryStore::new().with_capacity(CAPACITY);
        let mut now = 0;
        for n in 0..ACTIVE {
            assert!(matches!(create(&store, n, now), SaveOutcome::Saved(_)));
            now += 1;
        }
        for n in 0..ACTIVE {
            assert!(
                use_session(&store, n, now),
                "active session {n} before the flood"
            );
            now += 1;
        }
        let mut lost = 0;
        for k in 0..FLOOD {
            assert!(matches!(
                create(&store, ACTIVE + k, now),
                SaveOutcome::Saved(_)
            ));
            if k % 4 == 0 && !use_session(&store, (k / 4) % ACTIVE, now) {
                lost += 1;
            }
            assert!(store.len() <= CAPACITY);
            now += 1;
        }
        let survivors = (0..ACTIVE)
            .filter(|&n| load(&store, n, now).is_some())
            .count();
        assert!(
            survivors * 100 >= ACTIVE * 99,
            "{survivors} of {ACTIVE} active sessions survived ({lost} uses found theirs gone)"
        );
        assert_eq!(store.len(), CAPACITY);
        check_invariants(&store);
    }

    /// A deterministic mix of every operation never takes the store past its capacity, and
    /// keeps the lists consistent.
    #[test]
    fn never_exceeds_capacity() {
        for capacity in [1, 2, 5, 16] {
            let store = MemoryStore::new().with_capacity(capacity);
            let mut state = 0x9e37_79b9_7f4a_7c15_u64;
            let mut next = |bound: u64| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                usize::try_from(state % bound).unwrap()
            };
            for step in 0..5_000u64 {
                let now = step * 1_000;
                let n = next(40);
                match next(6) {
                    0 | 1 => {
                        // Some records expire during the run.
                        let lifetime = if next(3) == 0 { 2_000 } else { LIFETIME };
                        create_until(&store, n, now, now + lifetime);
                    }
                    2 => {
                        load(&store, n, now);
                    }
                    3 => {
                        update(&store, n, now);
                    }
                    4 => {
                        let (old, new) = (id(n), id(next(40)));
                        let fields = [("n", b"2".to_vec())];
                        let op = SaveOp::Regenerate {
                            old: &old,
                            new: &new,
                        };
                        save_at(&store, op, &fields, now, now + LIFETIME);
                    }
                    _ => {
                        let id = id(n);
                        store
                            .delete_now(Delete {
                                cookie_name: "s",
                                id: &id,
                            })
                            .unwrap();
                    }
                }
                assert!(store.len() <= capacity, "capacity {capacity}, step {step}");
                check_invariants(&store);
            }
        }
    }

    /// A full store drops expired records before live ones: those at the cold end of a list at
    /// once, those in the middle within `capacity / PROBES` inserts.
    #[test]
    fn expired_records_go_before_live_ones() {
        // Expired at the cold ends: the first two records, one of them used (protected).
        let store = MemoryStore::new().with_capacity(4);
        create_until(&store, 0, 0, 10_000);
        create_until(&store, 1, 0, 10_000);
        create(&store, 2, 0);
        create(&store, 3, 0);
        assert!(load(&store, 1, 1).is_some());
        create(&store, 4, 20_000);
        assert_eq!(store.len(), 3);
        for n in 2..=4 {
            assert!(load(&store, n, 20_000).is_some(), "live session {n}");
        }
        assert_eq!(store.lock().evicted, 0, "no live record was dropped");

        // Expired in the middle: live and expiring records alternate, oldest first.
        let store = MemoryStore::new().with_capacity(10);
        for n in 0..10 {
            let expires_at = if n % 2 == 0 { LIFETIME } else { 10_000 };
            create_until(&store, n, 0, expires_at);
        }
        for n in 10..15 {
            create(&store, n, 20_000);
            check_invariants(&store);
        }
        for n in (0..15).filter(|n| n % 2 == 0 || *n >= 10) {
            assert!(load(&store, n, 20_000).is_some(), "live session {n}");
        }
        assert_eq!(store.lock().evicted, 0, "no live record was dropped");
    }

    /// A panic under the lock (only a bug can cause one) may leave the lists half-linked: the
    /// next operation starts over with an empty store instead of following them.
    #[test]
    fn a_poisoned_lock_starts_over_empty() {
        let store = MemoryStore::new();
        create(&store, 1, 0);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _records = store.lock();
            panic!("a bug while the lock is held");
        }));
        assert!(panicked.is_err() && store.records.is_poisoned());
        assert_eq!(store.len(), 0);
        assert!(!store.records.is_poisoned());
        assert!(matches!(create(&store, 1, 0), SaveOutcome::Saved(_)));
        check_invariants(&store);
    }

    /// A tracing subscriber that keeps every event of the thread it is the default of.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<String>>>);

    impl tracing::Subscriber for Captured {
        fn register_callsite(
            &self,
            _: &'static tracing::Metadata<'static>,
        ) -> tracing::subscriber::Interest {
            tracing::subscriber::Interest::sometimes()
        }
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let mut line = event.metadata().level().to_string();
            event.record(
                &mut |field: &tracing::field::Field, value: &dyn fmt::Debug| {
                    let _ = write!(line, " {}={value:?}", field.name());
                },
            );
            self.0.lock().unwrap().push(line);
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    /// Dropping live records is logged at the first eviction, then at most once a minute by the
    /// clock of the saves, with the count since the last warning and without any session id.
    #[test]
    fn capacity_warning_once_a_minute_with_a_count() {
        let captured = Captured::default();
        let store = MemoryStore::new().with_capacity(2);
        tracing::subscriber::with_default(captured.clone(), || {
            create(&store, 0, 0);
            create(&store, 1, 0);
            // 1 s apart: the first eviction warns, the next 58 (up to 59 s) do not.
            for n in 2..=60 {
                create(&store, n, (n as u64 - 1) * 1_000);
            }
            // 60 s after the first warning: the 59 evictions since it.
            create(&store, 61, 61_000);
            create(&store, 62, 62_000);
            // A clock that goes back warns at once rather than never.
            create(&store, 63, 1_000);
        });
        let lines = captured.0.lock().unwrap().clone();
        let counts: Vec<&str> = lines
            .iter()
            .map(|line| {
                assert!(line.starts_with("WARN"), "{line}");
                assert!(line.contains(" capacity=2"), "{line}");
                line.split(" evicted=")
                    .nth(1)
                    .unwrap()
                    .split(' ')
                    .next()
                    .unwrap()
            })
            .collect();
        assert_eq!(counts, ["1", "59", "2"], "{lines:#?}");
        for n in 0..=63 {
            let id = id(n);
            assert!(lines.iter().all(|line| !line.contains(id.as_str())));
        }
    }

    /// The contract of a server store, on the new structure: `Create` never overwrites a live
    /// record, `Update` and `Touch` never resurrect one or write into a renewed-away one,
    /// `Regenerate` moves the record, expired records are never returned.
    #[test]
    fn contract() {
        let store = MemoryStore::new().with_capacity(8);
        assert!(matches!(create(&store, 1, 0), SaveOutcome::Saved(_)));
        assert_eq!(create(&store, 1, 0), SaveOutcome::IdTaken);
        assert_eq!(update(&store, 2, 0), SaveOutcome::Missing);
        let touch = id(3);
        let op = SaveOp::Touch { id: &touch };
        assert_eq!(save_at(&store, op, &[], 0, LIFETIME), SaveOutcome::Missing);

        // Expired: not returned, not updated, and its id may be taken again.
        create_until(&store, 4, 0, 1_000);
        assert!(load(&store, 4, 999).is_some());
        assert_eq!(update(&store, 4, 1_000), SaveOutcome::Missing);
        assert!(load(&store, 4, 1_000).is_none());
        create_until(&store, 5, 0, 1_000);
        assert!(matches!(create(&store, 5, 2_000), SaveOutcome::Saved(_)));

        // Renewed away: a forward that is read but never written into.
        let renewed = id(6);
        let op = SaveOp::Create { id: &renewed };
        save_at(
            &store,
            op,
            &[(RENEWED_FIELD, b"\"x\"".to_vec())],
            0,
            LIFETIME,
        );
        assert!(load(&store, 6, 0).unwrap().is_renewed());
        assert_eq!(update(&store, 6, 0), SaveOutcome::Missing);

        // Regenerate: the new id holds the record, the old one is gone, and a used session
        // stays protected.
        assert!(use_session(&store, 1, 10));
        let (old, new) = (id(1), id(7));
        let op = SaveOp::Regenerate {
            old: &old,
            new: &new,
        };
        let fields = [("n", b"9".to_vec())];
        assert!(matches!(
            save_at(&store, op, &fields, 10, LIFETIME),
            SaveOutcome::Saved(_)
        ));
        assert!(load(&store, 1, 10).is_none());
        let record = load(&store, 7, 10).unwrap();
        assert_eq!(&record.fields[0].1[..], b"9");
        let slot = store.lock().slot(new.as_bytes()).unwrap();
        assert_eq!(store.lock().node(slot).segment, Segment::Protected);
        let taken = SaveOp::Regenerate {
            old: &new,
            new: &new,
        };
        assert_eq!(
            save_at(&store, taken, &fields, 10, LIFETIME),
            SaveOutcome::IdTaken
        );

        // A session deleted meanwhile (a logout), or renewed away, never moves to a new id.
        let (gone, fresh) = (id(40), id(41));
        for old in [&gone, &renewed] {
            for op in [
                SaveOp::Regenerate { old, new: &fresh },
                SaveOp::Renew { old, new: &fresh },
            ] {
                assert_eq!(
                    save_at(&store, op, &fields, 10, LIFETIME),
                    SaveOutcome::Missing
                );
                assert!(load(&store, 41, 10).is_none(), "nothing written");
            }
        }
        check_invariants(&store);
    }
}
