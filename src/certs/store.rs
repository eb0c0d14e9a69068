//! The set of allowed CURVE public keys that a policy consults, each with the metadata its
//! `200` reply carries.

use std::collections::hash_map::{Entry, HashMap};
use std::fmt;
use std::time::SystemTime;

use crate::keys::CurvePublicKey;
use crate::zap::Metadata;

/// What a [`CertStore`] holds for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyEntry<'a> {
    /// The metadata its `200` reply carries.
    pub metadata: &'a Metadata,
    /// The user id stored with it, if any (otherwise the reply carries the key's Z85 text, or
    /// what the user-id mapping makes of it).
    pub user_id: Option<&'a str>,
    /// When it stops being allowed, if it has an expiry.
    pub expires: Option<SystemTime>,
}

impl KeyEntry<'_> {
    /// Whether the key is expired at `now`.
    pub fn expired_at(&self, now: SystemTime) -> bool {
        self.expires.is_some_and(|expires| now >= expires)
    }
}

/// Allowed CURVE public keys, each with its already-encoded reply metadata.
///
/// Built off the actor thread (see [`load_directory`](super::load_directory)) and handed to
/// the policy whole, so a lookup is one hash probe and a reply shares the metadata without
/// copying. Holds only keys and metadata (no paths): about 60–110 bytes per key without
/// metadata.
///
/// Keys from a credential store may also carry a user id and an expiry
/// ([`upsert`](Self::upsert)); those live in a side table that is empty for certificate
/// directories, so their lookups cost nothing more. An expired key is not allowed: expiry is
/// checked on every lookup against the time the caller passes (the decision's), since time
/// passing sends no notification.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CertStore {
    keys: HashMap<CurvePublicKey, Metadata>,
    extras: HashMap<CurvePublicKey, Extra>,
}

/// What a key from a credential store carries besides its metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Extra {
    user_id: Option<Box<str>>,
    expires: Option<SystemTime>,
}

impl Extra {
    /// The user id stored with the key, if any.
    pub(crate) fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// When the key stops being allowed, if it has an expiry.
    pub(crate) fn expires(&self) -> Option<SystemTime> {
        self.expires
    }
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
            extras: HashMap::new(),
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

    /// Whether a client presenting `key` is allowed at `now` (present and not expired).
    pub fn contains(&self, key: &CurvePublicKey, now: SystemTime) -> bool {
        self.get(key, now).is_some()
    }

    /// Whether `key` is in the store, expired or not.
    pub fn holds(&self, key: &CurvePublicKey) -> bool {
        self.keys.contains_key(key)
    }

    /// The metadata for a key allowed at `now` (`None` when the key is not allowed, or
    /// expired at `now`).
    pub fn get(&self, key: &CurvePublicKey, now: SystemTime) -> Option<&Metadata> {
        let entry = self.entry(key)?;
        (!entry.expired_at(now)).then_some(entry.metadata)
    }

    /// Everything stored with `key`, expired or not: one lookup for a decision, which checks
    /// the expiry itself (reading the wall clock only for a key that has one).
    pub fn entry(&self, key: &CurvePublicKey) -> Option<KeyEntry<'_>> {
        let (metadata, extra) = self.lookup(key)?;
        Some(KeyEntry {
            metadata,
            user_id: extra.and_then(Extra::user_id),
            expires: extra.and_then(Extra::expires),
        })
    }

    /// [`entry`](Self::entry) as the decision takes it: the metadata and what else the key
    /// carries, if anything. Two references, returned in registers (a [`KeyEntry`] is
    /// written through memory), and one probe for certificate directories, whose keys carry
    /// nothing else.
    pub(crate) fn lookup(&self, key: &CurvePublicKey) -> Option<(&Metadata, Option<&Extra>)> {
        let metadata = self.keys.get(key)?;
        if self.extras.is_empty() {
            // Certificate directories: no second lookup on the hot path.
            return Some((metadata, None));
        }
        Some((metadata, self.extras.get(key)))
    }

    /// The user id stored with `key`, if any (otherwise the reply carries the key's Z85
    /// text, or what the user-id mapping makes of it).
    pub fn user_id(&self, key: &CurvePublicKey) -> Option<&str> {
        if self.extras.is_empty() {
            return None; // certificate directories: no second lookup on the hot path
        }
        self.extras.get(key)?.user_id.as_deref()
    }

    /// When `key` stops being allowed, if it has an expiry.
    pub fn expires(&self, key: &CurvePublicKey) -> Option<SystemTime> {
        self.extras.get(key)?.expires
    }

    /// Allows `key`, replacing any entry it had (metadata, user id and expiry alike): one
    /// change of a credential store, applied in O(1).
    pub fn upsert(
        &mut self,
        key: CurvePublicKey,
        metadata: Metadata,
        user_id: Option<String>,
        expires: Option<SystemTime>,
    ) {
        self.keys.insert(key, metadata);
        if user_id.is_none() && expires.is_none() {
            self.extras.remove(&key);
        } else {
            let user_id = user_id.map(String::into_boxed_str);
            self.extras.insert(key, Extra { user_id, expires });
        }
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
        self.extras.remove(key);
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
        self.extras.shrink_to_fit();
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
        let now = SystemTime::now();
        assert_eq!(store.get(&key(CLIENT_PUBLIC), now), Some(&meta));
        assert!(store.contains(&key(CLIENT_PUBLIC), now));
        assert!(store.holds(&key(CLIENT_PUBLIC)));
        assert!(!store.contains(&key(SERVER_PUBLIC), now));
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
        let now = SystemTime::UNIX_EPOCH;
        assert_eq!(
            store.get(&key(SERVER_PUBLIC), now),
            Some(&Metadata::empty())
        );
        assert_eq!(format!("{store:?}"), "CertStore { len: 2 }");
        assert_eq!(store.clone(), store);
    }

    #[test]
    fn upserted_keys_carry_a_user_id_and_expire_at_the_time_given() {
        let mut store = CertStore::new();
        let start = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        let hour = std::time::Duration::from_secs(3600);
        store.upsert(
            key(CLIENT_PUBLIC),
            Metadata::empty(),
            Some("alice".into()),
            None,
        );
        store.upsert(key(SERVER_PUBLIC), Metadata::empty(), None, Some(start));
        assert_eq!(store.user_id(&key(CLIENT_PUBLIC)), Some("alice"));
        assert!(store.contains(&key(CLIENT_PUBLIC), start + hour));
        // Allowed up to its expiry, not at it nor after; held all along.
        assert!(store.contains(&key(SERVER_PUBLIC), start - hour));
        assert!(!store.contains(&key(SERVER_PUBLIC), start), "expired");
        assert!(store.get(&key(SERVER_PUBLIC), start + hour).is_none());
        assert!(store.holds(&key(SERVER_PUBLIC)));
        let entry = store.entry(&key(SERVER_PUBLIC)).unwrap();
        assert_eq!(entry.expires, Some(start));
        assert!(entry.expired_at(start) && !entry.expired_at(start - hour));
        let alice = store.entry(&key(CLIENT_PUBLIC)).unwrap();
        assert_eq!((alice.user_id, alice.expires), (Some("alice"), None));
        store.upsert(
            key(SERVER_PUBLIC),
            Metadata::empty(),
            None,
            Some(start + hour),
        );
        assert!(store.contains(&key(SERVER_PUBLIC), start));
        assert_eq!(store.expires(&key(SERVER_PUBLIC)), Some(start + hour));
        store.upsert(key(CLIENT_PUBLIC), Metadata::empty(), None, None);
        assert_eq!(store.user_id(&key(CLIENT_PUBLIC)), None);
        store.remove(&key(SERVER_PUBLIC));
        assert_eq!(store.expires(&key(SERVER_PUBLIC)), None);
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn entries_are_small() {
        // Key (32) + Metadata (16) per entry, plus hash table overhead.
        assert!(std::mem::size_of::<(CurvePublicKey, Metadata)>() <= 48);
    }
}
