//! PLAIN users with hashed passwords (argon2id PHC strings), as a credential store keeps them.
//!
//! Checking an argon2id hash costs milliseconds and megabytes, so the decision for such a
//! domain is not a reply but a [`Verification`] that the caller runs off its thread (the
//! actors: on a bounded set of workers) and then [`finish`](Verification::finish)es. Hash
//! parameters are checked against [`Argon2Limits`] when a user is installed: a hash that asks
//! for more memory or time than the limits is refused there and never run.

use std::collections::HashMap;
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params};

use super::decision::{Decision, ProviderFailure};
use super::{Change, Now, Origin, PlainTable, Policy, Refusal, Removed, Trust};
use crate::zap::{Metadata, Reply};

/// The most an installed hash may ask of the verifying machine.
///
/// A hash above them is refused when it is installed ([`HashError::TooCostly`]), so a bad row
/// in a credential store cannot exhaust memory or workers. The defaults allow the OWASP
/// recommendation for argon2id (19 MiB, 2 passes, 1 lane) and up to 64 MiB and 8 passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Limits {
    /// Largest memory cost, in KiB (argon2's `m`). Default 65,536 (64 MiB).
    pub max_memory_kib: u32,
    /// Most passes (argon2's `t`). Default 8.
    pub max_time_cost: u32,
    /// Most lanes (argon2's `p`). Default 8.
    pub max_lanes: u32,
}

impl Default for Argon2Limits {
    fn default() -> Self {
        Argon2Limits {
            max_memory_kib: 64 * 1024,
            max_time_cost: 8,
            max_lanes: 8,
        }
    }
}

/// Why a password hash was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// Not a PHC string, or one argon2 cannot use.
    #[error("not a valid argon2id PHC string: {0}")]
    Malformed(String),
    /// An empty password: never stored, never admitted.
    #[error("an empty password is refused")]
    EmptyPassword,
    /// Another algorithm than argon2id (or another version than 0x13).
    #[error("hash algorithm {0:?} is not argon2id v19")]
    Algorithm(String),
    /// Parameters above the [`Argon2Limits`].
    #[error(
        "hash parameters m={memory_kib} KiB, t={time_cost}, p={lanes} exceed the limits \
         (m<={max_memory_kib}, t<={max_time_cost}, p<={max_lanes}); rehash with smaller ones"
    )]
    TooCostly {
        /// The hash's memory cost (KiB).
        memory_kib: u32,
        /// The hash's passes.
        time_cost: u32,
        /// The hash's lanes.
        lanes: u32,
        /// The memory limit.
        max_memory_kib: u32,
        /// The passes limit.
        max_time_cost: u32,
        /// The lanes limit.
        max_lanes: u32,
    },
}

/// An argon2id PHC string whose parameters are within the limits it was checked against.
#[derive(Clone, PartialEq, Eq)]
pub struct HashedPassword {
    phc: Box<str>,
    shape: Shape,
}

/// What a verification against a hash costs: its parameters and lengths. A dummy hash of
/// the same shape costs the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    memory_kib: u32,
    time_cost: u32,
    lanes: u32,
    salt_len: usize,
    output_len: usize,
}

impl Shape {
    fn of(hash: &PasswordHash<'_>, params: &Params) -> Option<Shape> {
        let mut salt = [0u8; 64];
        Some(Shape {
            memory_kib: params.m_cost(),
            time_cost: params.t_cost(),
            lanes: params.p_cost(),
            salt_len: hash.salt?.decode_b64(&mut salt).ok()?.len(),
            output_len: hash.hash?.len(),
        })
    }
}

impl std::fmt::Debug for HashedPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashedPassword(<redacted>)")
    }
}

impl HashedPassword {
    /// Checks `phc` (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) against `limits`.
    ///
    /// ```
    /// use actix_zap::policy::{Argon2Limits, HashedPassword};
    /// let hash = HashedPassword::hash(b"s3cret").unwrap();
    /// let parsed = HashedPassword::parse(hash.as_str(), &Argon2Limits::default()).unwrap();
    /// assert!(parsed.verify(b"s3cret") && !parsed.verify(b"wrong"));
    /// ```
    pub fn parse(phc: &str, limits: &Argon2Limits) -> Result<Self, HashError> {
        let hash = PasswordHash::new(phc).map_err(|e| HashError::Malformed(e.to_string()))?;
        if hash.algorithm != Algorithm::Argon2id.ident() || hash.version != Some(0x13) {
            return Err(HashError::Algorithm(hash.algorithm.to_string()));
        }
        let params = Params::try_from(&hash).map_err(|e| HashError::Malformed(e.to_string()))?;
        let Some(shape) = Shape::of(&hash, &params) else {
            return Err(HashError::Malformed("no salt or no hash".into()));
        };
        if params.m_cost() > limits.max_memory_kib
            || params.t_cost() > limits.max_time_cost
            || params.p_cost() > limits.max_lanes
        {
            return Err(HashError::TooCostly {
                memory_kib: params.m_cost(),
                time_cost: params.t_cost(),
                lanes: params.p_cost(),
                max_memory_kib: limits.max_memory_kib,
                max_time_cost: limits.max_time_cost,
                max_lanes: limits.max_lanes,
            });
        }
        Ok(HashedPassword {
            phc: phc.into(),
            shape,
        })
    }

    /// Hashes `password` with argon2id's default parameters (19 MiB, 2 passes, 1 lane) and
    /// a random salt, as `zapctl db user add` stores it. An empty password is refused
    /// ([`HashError::EmptyPassword`]): it could never log in.
    pub fn hash(password: &[u8]) -> Result<Self, HashError> {
        use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
        if password.is_empty() {
            return Err(HashError::EmptyPassword);
        }
        let salt = SaltString::generate(&mut OsRng);
        let hash = Argon2::default()
            .hash_password(password, &salt)
            .map_err(|e| HashError::Malformed(e.to_string()))?;
        HashedPassword::parse(&hash.to_string(), &Argon2Limits::default())
    }

    /// A hash of the same parameters, salt and output lengths that no password matches
    /// (its output is zeros, not argon2's): verifying against it costs what verifying
    /// against this one costs. An unknown username is verified against it, so that its
    /// refusal takes as long as a wrong password's.
    fn dummy(&self) -> HashedPassword {
        use argon2::password_hash::{Output, SaltString};
        let Shape {
            memory_kib,
            time_cost,
            lanes,
            salt_len,
            output_len,
        } = self.shape;
        let salt = SaltString::encode_b64(&[0x5a; 64][..salt_len]);
        let output = Output::new(&[0; 64][..output_len]);
        match (salt, output) {
            (Ok(salt), Ok(output)) => HashedPassword {
                phc: format!(
                    "$argon2id$v=19$m={memory_kib},t={time_cost},p={lanes}${}${output}",
                    salt.as_str()
                )
                .into(),
                shape: self.shape,
            },
            // Lengths this hash already has are always valid: never reached.
            _ => self.clone(),
        }
    }

    /// The PHC string.
    pub fn as_str(&self) -> &str {
        &self.phc
    }

    /// Whether `password` matches. Costs what the hash's parameters say (milliseconds):
    /// never call it on an event loop. An empty password never matches (even a hash of one
    /// made elsewhere).
    pub fn verify(&self, password: &[u8]) -> bool {
        if password.is_empty() {
            return false;
        }
        match PasswordHash::new(&self.phc) {
            Ok(hash) => Argon2::default().verify_password(password, &hash).is_ok(),
            Err(_) => false,
        }
    }
}

/// One domain's PLAIN users with hashed passwords. `Debug` shows the count only.
///
/// An unknown username is verified too, against a dummy hash with the parameters of the
/// hash last installed (so that it is refused in the time a known one is), on the same
/// workers; its outcome is always a refusal.
#[derive(Clone, Default)]
pub struct HashedTable {
    users: HashMap<Box<[u8]>, Arc<HashedPassword>>,
    /// Shaped like the last hash installed; `None` until one is.
    dummy: Option<Arc<HashedPassword>>,
}

impl std::fmt::Debug for HashedTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HashedTable({} users)", self.users.len())
    }
}

impl HashedTable {
    /// An empty table: every PLAIN client of its domain is refused.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a user or replaces its hash.
    pub fn upsert(&mut self, username: impl Into<Vec<u8>>, hash: HashedPassword) {
        if self.dummy.as_ref().is_none_or(|d| d.shape != hash.shape) {
            self.dummy = Some(Arc::new(hash.dummy()));
        }
        self.users
            .insert(username.into().into_boxed_slice(), Arc::new(hash));
    }

    /// Removes a user; true if it was there.
    pub fn remove(&mut self, username: &[u8]) -> bool {
        self.users.remove(username).is_some()
    }

    /// The user's hash.
    pub fn get(&self, username: &[u8]) -> Option<&Arc<HashedPassword>> {
        self.users.get(username)
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// True when no user is admitted.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The usernames, sorted.
    pub fn usernames(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .users
            .keys()
            .map(|u| String::from_utf8_lossy(u).into_owned())
            .collect();
        names.sort();
        names
    }
}

impl FromIterator<(Vec<u8>, HashedPassword)> for HashedTable {
    fn from_iter<I: IntoIterator<Item = (Vec<u8>, HashedPassword)>>(users: I) -> Self {
        let mut table = HashedTable::new();
        for (name, hash) in users {
            table.upsert(name, hash);
        }
        table
    }
}

/// A PLAIN request for a domain with hashed passwords: run [`verify`](Self::verify) off the
/// event loop, then [`finish`](Self::finish). Like a [`Consultation`](super::Consultation),
/// the answer belongs to the policy [`epoch`](Self::epoch) it was decided under: after a
/// change, hand it to [`Policy::resume`](super::Policy::resume).
pub struct Verification {
    /// The domain whose table holds the user (the request's own, or `"*"`).
    pub table_domain: String,
    /// The username.
    pub username: Vec<u8>,
    /// The user's hash as installed when the request was decided; for a username the table
    /// does not hold, the table's dummy hash (see [`knows_user`](Self::knows_user)).
    pub hash: Arc<HashedPassword>,
    /// Whether the table holds the user: if not, the outcome is a refusal whatever argon2
    /// says, and the verification only costs the time a known user's would.
    known: bool,
    password: Vec<u8>,
    request_id: Vec<u8>,
    epoch: u64,
    /// Until when the table's domain may decide, as it was when the request was decided.
    trust: Trust,
}

impl std::fmt::Debug for Verification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verification")
            .field("table_domain", &self.table_domain)
            .field("username", &String::from_utf8_lossy(&self.username))
            .field("known", &self.known)
            .field("password", &"<redacted>")
            .field("epoch", &self.epoch)
            .field("trust", &self.trust)
            .finish()
    }
}

impl Drop for Verification {
    fn drop(&mut self) {
        // Best effort: the password does not outlive the request in this buffer.
        self.password.iter_mut().for_each(|b| *b = 0);
    }
}

impl Verification {
    /// The policy epoch this request was decided under.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Whether the table holds the user. An unknown one is verified against the table's
    /// dummy hash, for the time it takes, and always refused (`Invalid username`).
    pub fn knows_user(&self) -> bool {
        self.known
    }

    /// The password the client sent.
    pub fn password(&self) -> &[u8] {
        &self.password
    }

    /// Runs argon2 (blocking, milliseconds).
    pub fn verify(&self) -> bool {
        self.hash.verify(&self.password)
    }

    /// Whether `other` checks the same password against the same hash of the same user's
    /// table: then its outcome is this one's.
    pub fn asks_the_same(&self, other: &Verification) -> bool {
        let same_password: bool =
            subtle::ConstantTimeEq::ct_eq(&self.password[..], &other.password[..]).into();
        same_password
            && self.known == other.known
            && self.table_domain == other.table_domain
            && self.username == other.username
            && (Arc::ptr_eq(&self.hash, &other.hash) || self.hash.as_str() == other.hash.as_str())
    }

    /// The reply for a verification's outcome (`Ok(true)`: the password matched) at `now`:
    /// a domain whose store is no longer trusted is refused whatever the outcome.
    pub fn finish(self, outcome: Result<bool, ProviderFailure>, now: &Now) -> Reply {
        let id = &self.request_id;
        if !self.trust.holds_at(now.instant()) {
            return Refusal::StaleStore.reply(id);
        }
        match outcome {
            Ok(_) if !self.known => Refusal::InvalidUsername.reply(id),
            Ok(true) => Reply::ok(
                id,
                String::from_utf8_lossy(&self.username),
                Metadata::empty(),
            ),
            Ok(false) => Refusal::InvalidPassword.reply(id),
            Err(failure) => Refusal::of_verification(&failure).reply(id),
        }
    }

    /// Verifies on this thread and finishes at the time it is done (tests, fuzzers, tools).
    pub fn resolve_blocking(self) -> Reply {
        let matched = self.verify();
        self.finish(Ok(matched), &Now::read())
    }
}

impl Policy {
    /// Installs a domain's hashed PLAIN table by hand, even an empty one (which refuses every
    /// PLAIN client of the domain instead of falling back to `"*"`). Replaces a clear-text
    /// table of the domain.
    pub fn configure_hashed_plain(
        &mut self,
        domain: &str,
        table: HashedTable,
    ) -> Result<(), super::PolicyError> {
        let change = Change::ConfigurePlain {
            domain: domain.to_owned(),
            table: PlainTable::from(table),
        };
        self.apply(Origin::HAND, change).map(drop)
    }

    /// Adds users to (or replaces their hashes in) a domain's hashed table by hand, creating
    /// the table (and dropping a clear-text one) if needed. O(1) per user.
    pub fn upsert_hashed_users(
        &mut self,
        domain: &str,
        users: impl IntoIterator<Item = (Vec<u8>, HashedPassword)>,
    ) -> Result<usize, super::PolicyError> {
        let change = Change::AddPlainUsers {
            domain: domain.to_owned(),
            users: users.into_iter().collect(),
        };
        Ok(self.apply(Origin::HAND, change)?.outcome.count())
    }

    /// Removes users from a domain by hand (see [`Removed`]); a verification already
    /// running for a removed user is decided again.
    pub fn remove_plain_users<'u>(
        &mut self,
        domain: &str,
        users: impl IntoIterator<Item = &'u [u8]>,
    ) -> Result<Removed, super::PolicyError> {
        let change = Change::RemovePlainUsers {
            domain: domain.to_owned(),
            users: users.into_iter().map(<[u8]>::to_vec).collect(),
        };
        Ok(self.apply(Origin::HAND, change)?.outcome.removed())
    }

    /// The hash installed for a user of a domain's own hashed table, if any.
    pub fn hashed_user(&self, domain: &str, username: &[u8]) -> Option<&Arc<HashedPassword>> {
        match self.plain.get(domain) {
            Some(PlainTable::Hashed(table)) => table.get(username),
            _ => None,
        }
    }

    /// The decision for a PLAIN request decided by a hashed table (the domain's own, or the
    /// `"*"` table it falls back to: `table_domain`), trusted as `trust` says.
    pub(super) fn decide_hashed_plain(
        &self,
        id: &[u8],
        table: &HashedTable,
        (table_domain, username, password): (&str, &[u8], &[u8]),
        trust: Trust,
    ) -> Decision {
        // An unknown username costs what a known one costs: a verification against the
        // table's dummy hash, refused whatever it says.
        let (hash, known) = match (table.get(username), &table.dummy) {
            (Some(hash), _) => (hash, true),
            (None, Some(dummy)) => (dummy, false),
            (None, None) => return Decision::Reply(Refusal::InvalidUsername.reply(id)),
        };
        Decision::Verify(Verification {
            table_domain: table_domain.to_owned(),
            username: username.to_vec(),
            hash: Arc::clone(hash),
            known,
            password: password.to_vec(),
            request_id: id.to_vec(),
            epoch: self.epoch,
            trust,
        })
    }
}

/// A hash of the least cost the limits take (64 KiB, one pass) with a fixed salt, for tests:
/// they judge who is admitted, not the cost.
#[cfg(test)]
pub(crate) fn cheap(password: &str) -> HashedPassword {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let params = Params::new(64, 1, 1, None).unwrap();
    let argon = Argon2::new(Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::from_b64("c2FsdHNhbHRzYWx0").unwrap();
    let phc = argon.hash_password(password.as_bytes(), &salt).unwrap();
    HashedPassword::parse(&phc.to_string(), &Argon2Limits::default()).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zap::{RequestBuilder, StatusCode};

    fn request(domain: &str, user: &str, password: &str) -> Vec<Vec<u8>> {
        RequestBuilder::plain(user, password)
            .domain(domain)
            .frames()
    }

    fn reply(policy: &Policy, frames: &[Vec<u8>]) -> Reply {
        match policy.handle(frames) {
            Decision::Reply(reply) => reply,
            Decision::Verify(verification) => verification.resolve_blocking(),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn shaped(password: &str, memory_kib: u32, passes: u32) -> HashedPassword {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let params = Params::new(memory_kib, passes, 1, Some(24)).unwrap();
        let argon = Argon2::new(Algorithm::Argon2id, argon2::Version::V0x13, params);
        let salt = SaltString::from_b64("c2FsdHNhbHRzYWx0c2FsdA").unwrap();
        let phc = argon.hash_password(password.as_bytes(), &salt).unwrap();
        HashedPassword::parse(&phc.to_string(), &Argon2Limits::default()).unwrap()
    }

    #[test]
    fn an_unknown_username_is_verified_against_a_dummy_of_the_same_shape_and_refused() {
        let mut policy = Policy::default();
        // An empty table has nothing to mimic: refused at once.
        policy
            .configure_hashed_plain("fleet", HashedTable::new())
            .unwrap();
        assert!(matches!(
            policy.handle(&request("fleet", "bob", "pw")),
            Decision::Reply(reply) if reply.text == "Invalid username"
        ));
        let alice = shaped("pw", 128, 2);
        policy
            .upsert_hashed_users("fleet", [(b"alice".to_vec(), alice.clone())])
            .unwrap();
        let Decision::Verify(unknown) = policy.handle(&request("fleet", "bob", "pw")) else {
            panic!("an unknown username is verified too")
        };
        assert!(!unknown.knows_user());
        // Same parameters and lengths as alice's hash, and a valid PHC string.
        let dummy = unknown.hash.as_str().to_owned();
        assert!(
            dummy.starts_with("$argon2id$v=19$m=128,t=2,p=1$"),
            "{dummy}"
        );
        let parsed = HashedPassword::parse(&dummy, &Argon2Limits::default()).unwrap();
        assert_eq!(parsed.shape, alice.shape);
        assert!(!parsed.verify(b"pw") && !parsed.verify(b""));
        // Refused whatever argon2 says.
        let now = Now::read();
        for outcome in [Ok(true), Ok(false)] {
            let Decision::Verify(unknown) = policy.handle(&request("fleet", "bob", "pw")) else {
                panic!("verified")
            };
            let reply = unknown.finish(outcome, &now);
            assert_eq!(
                (reply.status, &*reply.text),
                (StatusCode::Denied, "Invalid username")
            );
        }
        assert_eq!(
            &*reply(&policy, &request("fleet", "bob", "pw")).text,
            "Invalid username"
        );
        // A user added with the same shape keeps the dummy; another shape changes it.
        policy
            .upsert_hashed_users("fleet", [(b"carol".to_vec(), shaped("x", 128, 2))])
            .unwrap();
        let Decision::Verify(again) = policy.handle(&request("fleet", "bob", "pw")) else {
            panic!("verified")
        };
        assert!(Arc::ptr_eq(&again.hash, &unknown.hash));
        policy
            .upsert_hashed_users("fleet", [(b"dave".to_vec(), shaped("x", 256, 3))])
            .unwrap();
        let Decision::Verify(reshaped) = policy.handle(&request("fleet", "bob", "pw")) else {
            panic!("verified")
        };
        assert!(reshaped
            .hash
            .as_str()
            .starts_with("$argon2id$v=19$m=256,t=3,p=1$"));
        // The known user is still admitted, and a wrong password is still a wrong password.
        assert_eq!(
            reply(&policy, &request("fleet", "alice", "pw")).status,
            StatusCode::Ok
        );
        assert_eq!(
            &*reply(&policy, &request("fleet", "alice", "no")).text,
            "Invalid password"
        );
    }

    #[test]
    fn an_empty_password_is_never_hashed_verified_or_admitted() {
        assert!(matches!(
            HashedPassword::hash(b""),
            Err(HashError::EmptyPassword)
        ));
        // A hash of "" made elsewhere matches nothing.
        assert!(!cheap("").verify(b""));
        let mut policy = Policy::default();
        let mut table = HashedTable::new();
        table.upsert("empty", cheap(""));
        table.upsert("alice", cheap("pw"));
        policy.configure_hashed_plain("global", table).unwrap();
        for (user, password) in [("empty", ""), ("alice", "")] {
            let refused = reply(&policy, &request("global", user, password));
            assert_eq!(refused.status, StatusCode::Denied, "{user}");
            assert_eq!(refused.text, "Empty password", "{user}");
        }
        let admitted = reply(&policy, &request("global", "alice", "pw"));
        assert_eq!(admitted.status, StatusCode::Ok);
        // A clear-text table too.
        policy
            .configure_plain("clear", crate::policy::PasswordTable::new([("empty", "")]))
            .unwrap();
        let refused = reply(&policy, &request("clear", "empty", ""));
        assert_eq!(refused.text, "Empty password");
    }

    #[test]
    fn hashed_users_are_verified_and_removal_refuses() {
        let mut policy = Policy::default();
        policy
            .upsert_hashed_users("fleet", [(b"alice".to_vec(), cheap("pw"))])
            .unwrap();
        assert_eq!(
            reply(&policy, &request("fleet", "alice", "pw")).status,
            StatusCode::Ok
        );
        let wrong = reply(&policy, &request("fleet", "alice", "no"));
        assert_eq!(
            (wrong.status, &*wrong.text),
            (StatusCode::Denied, "Invalid password")
        );
        let unknown = reply(&policy, &request("fleet", "bob", "pw"));
        assert_eq!(&*unknown.text, "Invalid username");
        let before = policy.epoch();
        assert_eq!(
            policy.remove_plain_users("fleet", [&b"alice"[..]]),
            Ok(Removed {
                installed: 1,
                revoked: 0
            })
        );
        assert!(policy.epoch() > before);
        assert_eq!(
            reply(&policy, &request("fleet", "alice", "pw")).status,
            StatusCode::Denied
        );
    }

    #[test]
    fn an_overloaded_verifier_says_try_later_and_a_failure_refuses() {
        let mut policy = Policy::default();
        policy
            .upsert_hashed_users("fleet", [(b"alice".to_vec(), cheap("pw"))])
            .unwrap();
        let verification = |policy: &Policy| match policy.handle(&request("fleet", "alice", "pw")) {
            Decision::Verify(v) => v,
            other => panic!("{other:?}"),
        };
        let now = Now::read();
        let busy = verification(&policy).finish(Err(ProviderFailure::Overloaded), &now);
        assert_eq!(busy.status, StatusCode::TryLater);
        let failed = verification(&policy).finish(Err(ProviderFailure::Panicked), &now);
        assert_eq!(failed.status, StatusCode::InternalError);
        assert!(!format!("{:?}", verification(&policy)).contains("pw\""));
    }

    #[test]
    fn an_empty_hashed_table_refuses_instead_of_falling_back() {
        let mut policy = Policy::default();
        policy
            .configure_plain("*", crate::policy::PasswordTable::new([("alice", "pw")]))
            .unwrap();
        policy
            .configure_hashed_plain("fleet", HashedTable::new())
            .unwrap();
        assert_eq!(
            reply(&policy, &request("fleet", "alice", "pw")).status,
            StatusCode::Denied
        );
        assert_eq!(
            reply(&policy, &request("other", "alice", "pw")).status,
            StatusCode::Ok
        );
        // Configuring the domain by hand replaces the hashed table.
        policy
            .configure_plain("fleet", crate::policy::PasswordTable::new([("bob", "x")]))
            .unwrap();
        assert!(matches!(
            policy.plain_domains().get("fleet"),
            Some(PlainTable::Clear(_))
        ));
        assert_eq!(
            reply(&policy, &request("fleet", "bob", "x")).status,
            StatusCode::Ok
        );
    }

    #[test]
    fn costly_or_foreign_hashes_are_refused_before_they_run() {
        let limits = Argon2Limits::default();
        let huge = "$argon2id$v=19$m=4194304,t=3,p=1$c2FsdHNhbHRzYWx0$\
                    AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert!(matches!(
            HashedPassword::parse(huge, &limits),
            Err(HashError::TooCostly { .. })
        ));
        let slow = "$argon2id$v=19$m=64,t=1000,p=1$c2FsdHNhbHRzYWx0$\
                    AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert!(matches!(
            HashedPassword::parse(slow, &limits),
            Err(HashError::TooCostly { .. })
        ));
        let argon2i = "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$\
                       AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert!(matches!(
            HashedPassword::parse(argon2i, &limits),
            Err(HashError::Algorithm(_))
        ));
        for bad in ["", "plaintext", "$argon2id$v=19$m=x$y$z"] {
            assert!(matches!(
                HashedPassword::parse(bad, &limits),
                Err(HashError::Malformed(_))
            ));
        }
        assert!(!format!("{:?}", cheap("pw")).contains("argon2"));
    }
}
