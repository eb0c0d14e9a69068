//! The set of allowed CURVE public keys that a policy consults, each with the metadata its
//! `200` reply carries.

use std::collections::hash_map::{Entry, HashMap};
use std::fmt;

use crate::keys::CurvePublicKey;
use crate::zap::Metadata;

/// Allowed CURVE public keys, each with its already-encoded reply metadata.
///
/// Built off the actor thread (see [`load_directory`](super::load_directory)) and handed to
/// the policy whole, so a lookup is one hash probe and a reply shares the metadata without
/// copying. Holds only keys and metadata (no paths): about 60–110 bytes per key without
/// metadata.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CertStore {
    keys: HashMap<CurvePublicKey, Metadata>,
}

impl CertStore {
    /// An empty store: every key refused.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store with room for `capacity` keys, to avoid rehashing while loading.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            keys: HashMap::with_capacity(capacity),
        }
    }

    /// How many keys are allowed.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is allowed.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether a client presenting `key` is allowed.
    pub fn contains(&self, key: &CurvePublicKey) -> bool {
        self.keys.contains_key(key)
    }

    /// The metadata for an allowed key (`None` when the key is not allowed).
    pub fn get(&self, key: &CurvePublicKey) -> Option<&Metadata> {
        self.keys.get(key)
    }

    /// Allows `key` with `metadata`; returns false, keeping the existing entry, when the key
    /// is already present (a certificate directory must not hold one key twice).
    pub fn insert(&mut self, key: CurvePublicKey, metadata: Metadata) -> bool {
        match self.keys.entry(key) {
            Entry::Occupied(_) => false,
            Entry::Vacant(slot) => {
                slot.insert(metadata);
                true
            }
        }
    }

    /// Revokes `key`, returning its metadata if it was allowed.
    pub fn remove(&mut self, key: &CurvePublicKey) -> Option<Metadata> {
        self.keys.remove(key)
    }

    /// The allowed keys, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &CurvePublicKey> + '_ {
        self.keys.keys()
    }

    /// The allowed keys with their metadata, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&CurvePublicKey, &Metadata)> + '_ {
        self.keys.iter()
    }

    /// Releases spare capacity once loading is done.
    pub fn shrink_to_fit(&mut self) {
        self.keys.shrink_to_fit();
    }
}

/// Shows the count only: a store can hold many thousands of keys.
impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertStore")
            .field("len", &self.keys.len())
            .finish()
    }
}

/// Keys without metadata, e.g. from configuration rather than files.
impl FromIterator<CurvePublicKey> for CertStore {
    fn from_iter<I: IntoIterator<Item = CurvePublicKey>>(iter: I) -> Self {
        iter.into_iter().map(|k| (k, Metadata::empty())).collect()
    }
}

/// Keys with metadata; for a repeated key the first entry wins, as with [`CertStore::insert`].
impl FromIterator<(CurvePublicKey, Metadata)> for CertStore {
    fn from_iter<I: IntoIterator<Item = (CurvePublicKey, Metadata)>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let mut store = Self::with_capacity(iter.size_hint().0);
        for (key, metadata) in iter {
            store.insert(key, metadata);
        }
        store
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::certificate::tests::{CLIENT_PUBLIC, SERVER_PUBLIC};

    fn key(z85: &str) -> CurvePublicKey {
        CurvePublicKey::from_z85(z85).unwrap()
    }

    #[test]
    fn insert_get_remove() {
        let mut store = CertStore::new();
        assert!(store.is_empty());
        let meta = Metadata::from_pairs([("Hello", "World")]).unwrap();
        assert!(store.insert(key(CLIENT_PUBLIC), meta.clone()));
        assert!(!store.insert(key(CLIENT_PUBLIC), Metadata::empty()));
        assert_eq!(store.get(&key(CLIENT_PUBLIC)), Some(&meta));
        assert!(store.contains(&key(CLIENT_PUBLIC)));
        assert!(!store.contains(&key(SERVER_PUBLIC)));
        assert_eq!(store.len(), 1);
        assert_eq!(store.keys().collect::<Vec<_>>(), [&key(CLIENT_PUBLIC)]);
        assert_eq!(store.remove(&key(CLIENT_PUBLIC)), Some(meta));
        assert!(store.is_empty());
    }

    #[test]
    fn from_iterator_and_debug() {
        let store: CertStore = [key(CLIENT_PUBLIC), key(SERVER_PUBLIC), key(CLIENT_PUBLIC)]
            .into_iter()
            .collect();
        assert_eq!(store.len(), 2);
        assert_eq!(store.get(&key(SERVER_PUBLIC)), Some(&Metadata::empty()));
        assert_eq!(format!("{store:?}"), "CertStore { len: 2 }");
        assert_eq!(store.clone(), store);
    }

    #[test]
    fn entries_are_small() {
        // Key (32) + Metadata (16) per entry, plus hash table overhead.
        assert!(std::mem::size_of::<(CurvePublicKey, Metadata)>() <= 48);
    }
}
