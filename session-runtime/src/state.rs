//! What a session holds during a request: its data and which of its fields changed ([`State`]),
//! the per-field [`DirtySet`], and the [`Fields`] contract of the companion type that
//! `#[derive(Session)]` generates.

use std::fmt;

/// The data of a session and which of its fields changed. The generated companion type wraps
/// one and exposes typed accessors on it.
pub struct State<T> {
    data: T,
    dirty: DirtySet,
}

impl<T> State<T> {
    /// Wraps freshly loaded or created data with nothing dirty.
    pub fn new(data: T) -> Self {
        Self {
            data,
            dirty: DirtySet::default(),
        }
    }

    /// Returns the data.
    #[inline]
    pub fn data(&self) -> &T {
        &self.data
    }

    /// Returns the data and marks field `index` dirty.
    #[inline]
    pub fn field_mut(&mut self, index: usize) -> &mut T {
        self.dirty.insert(index);
        &mut self.data
    }

    /// Returns the data without marking anything (for `skip` fields, which are never stored).
    #[inline]
    pub fn data_unmarked(&mut self) -> &mut T {
        &mut self.data
    }

    /// Returns the dirty set.
    pub fn dirty(&self) -> &DirtySet {
        &self.dirty
    }

    /// Returns the dirty set for the runtime to mark or clear.
    pub fn dirty_mut(&mut self) -> &mut DirtySet {
        &mut self.dirty
    }

    /// Returns the data and dirty set.
    pub fn into_parts(self) -> (T, DirtySet) {
        (self.data, self.dirty)
    }
}

impl<T> fmt::Debug for State<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Session data may be personal: show only which fields changed.
        f.debug_struct("State")
            .field("dirty", &self.dirty)
            .finish_non_exhaustive()
    }
}

/// The companion type of a session struct: owns its [`State`] and carries the generated
/// accessors.
pub trait Fields<T>: Send + Sync + 'static + Sized {
    /// Wraps a state.
    fn from_state(state: State<T>) -> Self;
    /// Returns the state.
    fn state(&self) -> &State<T>;
    /// Returns the state mutably.
    fn state_mut(&mut self) -> &mut State<T>;
    /// Unwraps the state.
    fn into_state(self) -> State<T>;
}

/// A companion without accessors, used by the derive's error fallback.
#[derive(Debug)]
pub struct Plain<T>(State<T>);

impl<T: Send + Sync + 'static> Fields<T> for Plain<T> {
    fn from_state(state: State<T>) -> Self {
        Self(state)
    }
    fn state(&self) -> &State<T> {
        &self.0
    }
    fn state_mut(&mut self) -> &mut State<T> {
        &mut self.0
    }
    fn into_state(self) -> State<T> {
        self.0
    }
}

/// The per-field dirty set: one bit per stored field, for any number of fields. Sessions with up
/// to 64 stored fields never allocate.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct DirtySet {
    low: u64,
    high: Vec<u64>,
}

impl DirtySet {
    /// Marks the field with index `index` as changed.
    pub fn insert(&mut self, index: usize) {
        if index < 64 {
            self.low |= 1 << index;
        } else {
            let word = index / 64 - 1;
            if self.high.len() <= word {
                self.high.resize(word + 1, 0);
            }
            self.high[word] |= 1 << (index % 64);
        }
    }

    /// Returns whether the field with index `index` has changed.
    #[must_use]
    pub fn contains(&self, index: usize) -> bool {
        if index < 64 {
            self.low & (1 << index) != 0
        } else {
            self.high
                .get(index / 64 - 1)
                .is_some_and(|word| word & (1 << (index % 64)) != 0)
        }
    }

    /// Marks the first `len` fields as changed.
    pub fn insert_all(&mut self, len: usize) {
        for index in 0..len {
            self.insert(index);
        }
    }

    /// Returns whether any field has changed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.low == 0 && self.high.iter().all(|word| *word == 0)
    }

    /// Forgets every change.
    pub fn clear(&mut self) {
        self.low = 0;
        self.high.clear();
    }
}

impl fmt::Debug for DirtySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut set = f.debug_set();
        for (word_index, word) in std::iter::once(&self.low).chain(&self.high).enumerate() {
            for bit in 0..64 {
                if word & (1 << bit) != 0 {
                    set.entry(&(word_index * 64 + bit));
                }
            }
        }
        set.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirty_set_grows_past_64_fields() {
        let mut set = DirtySet::default();
        assert!(set.is_empty());
        set.insert(3);
        set.insert(64);
        set.insert(200);
        assert!(set.contains(3) && set.contains(64) && set.contains(200));
        assert!(!set.contains(4) && !set.contains(65) && !set.contains(1000));
        assert_eq!(format!("{set:?}"), "{3, 64, 200}");
        set.clear();
        assert!(set.is_empty());
        set.insert_all(130);
        assert!(set.contains(0) && set.contains(129) && !set.contains(130));
    }
}
