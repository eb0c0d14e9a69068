//! Successful hashed-password verifications, remembered for a short while so that a client
//! reconnecting costs no second argon2 run: keyed by the user's table domain and username,
//! holding the PHC string checked and a keyed hash of the password (never the password), and
//! forgotten as soon as that user changes. Time is an input: every question carries its `now`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use blake2::digest::{consts::U32, Mac};

use super::Verification;

/// How long a successful verification is remembered.
pub const VERIFIED_FOR: Duration = Duration::from_secs(60);

/// The most remembered verifications; past it, expired ones are dropped, then all.
const MAX_REMEMBERED: usize = 100_000;

type KeyedHash = blake2::Blake2bMac<U32>;

struct Remembered {
    phc: Box<str>,
    tag: [u8; 32],
    at: Instant,
}

/// Successful verifications of one authenticator, each for [`VERIFIED_FOR`].
///
/// ```
/// use std::time::{Duration, Instant};
/// use actix_zap::policy::{Decision, HashedPassword, Policy, VerificationCache, VERIFIED_FOR};
/// let mut policy = Policy::default();
/// let hash = HashedPassword::hash(b"pw").unwrap();
/// policy.upsert_hashed_users("fleet", [(b"alice".to_vec(), hash)]).unwrap();
/// let frames: [&[u8]; 8] = [b"1.0", b"1", b"fleet", b"127.0.0.1", b"", b"PLAIN", b"alice", b"pw"];
/// let Decision::Verify(verification) = policy.handle(&frames) else { unreachable!() };
/// let mut cache = VerificationCache::new([7; 32]);
/// let start = Instant::now();
/// assert!(verification.verify());
/// cache.remember(&verification, start);
/// assert!(cache.remembers(&verification, start + Duration::from_secs(59)));
/// assert!(!cache.remembers(&verification, start + VERIFIED_FOR));
/// ```
pub struct VerificationCache {
    remembered: HashMap<(String, Vec<u8>), Remembered>,
    key: [u8; 32],
}

impl std::fmt::Debug for VerificationCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationCache")
            .field("remembered", &self.remembered.len())
            .finish()
    }
}

impl VerificationCache {
    /// An empty cache whose password tags are keyed with `key` (take it from the operating
    /// system's randomness: a tag must not be computable by whoever reads memory dumps
    /// without the key).
    pub fn new(key: [u8; 32]) -> Self {
        VerificationCache {
            remembered: HashMap::new(),
            key,
        }
    }

    /// How many verifications are remembered (expired ones included until dropped).
    pub fn len(&self) -> usize {
        self.remembered.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.remembered.is_empty()
    }

    /// The keyed hash of `password` checked against `phc`; `None` if the hash cannot be
    /// keyed (never with a 32-byte key: then nothing is remembered, and nothing matches).
    pub(crate) fn tag(&self, phc: &str, password: &[u8]) -> Option<[u8; 32]> {
        let mut mac = <KeyedHash as Mac>::new_from_slice(&self.key).ok()?;
        mac.update(phc.as_bytes());
        mac.update(&[0]);
        mac.update(password);
        Some(mac.finalize().into_bytes().into())
    }

    /// Whether this exact user, hash and password were verified less than [`VERIFIED_FOR`]
    /// before `now`.
    pub fn remembers(&self, v: &Verification, now: Instant) -> bool {
        let key = (v.table_domain.clone(), v.username.clone());
        let Some(remembered) = self.remembered.get(&key) else {
            return false;
        };
        let Some(tag) = self.tag(v.hash.as_str(), v.password()) else {
            return false;
        };
        now.saturating_duration_since(remembered.at) < VERIFIED_FOR
            && *remembered.phc == *v.hash.as_str()
            && bool::from(subtle::ConstantTimeEq::ct_eq(&remembered.tag[..], &tag[..]))
    }

    /// Remembers a verification that succeeded at `now`.
    pub fn remember(&mut self, v: &Verification, now: Instant) {
        let Some(tag) = self.tag(v.hash.as_str(), v.password()) else {
            return;
        };
        if self.remembered.len() >= MAX_REMEMBERED {
            (self.remembered).retain(|_, r| now.saturating_duration_since(r.at) < VERIFIED_FOR);
            if self.remembered.len() >= MAX_REMEMBERED {
                self.remembered.clear();
            }
        }
        let remembered = Remembered {
            phc: v.hash.as_str().into(),
            tag,
            at: now,
        };
        self.remembered
            .insert((v.table_domain.clone(), v.username.clone()), remembered);
    }

    /// Forgets a user's verification (the user changed or went away).
    pub fn forget_user(&mut self, domain: &str, username: &[u8]) {
        self.remembered
            .remove(&(domain.to_owned(), username.to_vec()));
    }

    /// Forgets every verification of a domain (its table was replaced).
    pub fn forget_domain(&mut self, domain: &str) {
        self.remembered.retain(|(d, _), _| d != domain);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Decision, Policy};

    use crate::policy::cheap_hash as cheap;

    fn verification(policy: &Policy, user: &str, password: &str) -> Verification {
        let frames: [&[u8]; 8] = [
            b"1.0",
            b"1",
            b"fleet",
            b"127.0.0.1",
            b"",
            b"PLAIN",
            user.as_bytes(),
            password.as_bytes(),
        ];
        match policy.handle(&frames) {
            Decision::Verify(v) => v,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_verification_is_remembered_for_a_minute_from_the_time_given() {
        let mut policy = Policy::default();
        (policy.upsert_hashed_users("fleet", [(b"alice".to_vec(), cheap("pw"))])).unwrap();
        let mut cache = VerificationCache::new([1; 32]);
        let start = Instant::now();
        let right = verification(&policy, "alice", "pw");
        assert!(!cache.remembers(&right, start));
        cache.remember(&right, start);
        assert!(cache.remembers(&right, start));
        assert!(cache.remembers(&right, start + VERIFIED_FOR - Duration::from_millis(1)));
        assert!(
            !cache.remembers(&right, start + VERIFIED_FOR),
            "forgotten after a minute"
        );
        // Another password is not the one remembered; neither is another user.
        assert!(!cache.remembers(&verification(&policy, "alice", "wrong"), start));
        (policy.upsert_hashed_users("fleet", [(b"bob".to_vec(), cheap("pw"))])).unwrap();
        assert!(!cache.remembers(&verification(&policy, "bob", "pw"), start));
        // A new hash for the user (a changed password) is not the one remembered.
        (policy.upsert_hashed_users("fleet", [(b"alice".to_vec(), cheap("new"))])).unwrap();
        assert!(!cache.remembers(&verification(&policy, "alice", "pw"), start));
    }

    #[test]
    fn forgetting_a_user_or_a_domain_and_a_full_cache() {
        let mut policy = Policy::default();
        (policy.upsert_hashed_users("fleet", [(b"alice".to_vec(), cheap("pw"))])).unwrap();
        let alice = verification(&policy, "alice", "pw");
        let start = Instant::now();
        let mut cache = VerificationCache::new([2; 32]);
        cache.remember(&alice, start);
        cache.forget_user("fleet", b"alice");
        assert!(!cache.remembers(&alice, start) && cache.is_empty());
        cache.remember(&alice, start);
        cache.forget_domain("other");
        assert!(cache.remembers(&alice, start));
        cache.forget_domain("fleet");
        assert!(!cache.remembers(&alice, start));
        // Full: expired entries go first, the fresh one stays.
        for n in 0..MAX_REMEMBERED {
            let key = ("old".to_owned(), n.to_be_bytes().to_vec());
            let tag = [0; 32];
            let old = Remembered {
                phc: "x".into(),
                tag,
                at: start,
            };
            cache.remembered.insert(key, old);
        }
        let later = start + VERIFIED_FOR;
        cache.remember(&alice, later);
        assert_eq!(cache.len(), 1);
        assert!(cache.remembers(&alice, later));
        assert_eq!(format!("{cache:?}"), "VerificationCache { remembered: 1 }");
    }
}
