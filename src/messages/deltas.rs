//! Delta messages: trust or revoke single CURVE keys and hashed PLAIN users, each in O(1)
//! however large the domain. They are meant for applications: the handle's
//! [`add_curve_keys`](crate::Authenticator::add_curve_keys),
//! [`remove_curve_keys`](crate::Authenticator::remove_curve_keys),
//! [`add_plain_users`](crate::Authenticator::add_plain_users) and
//! [`remove_plain_users`](crate::Authenticator::remove_plain_users) send them; send them
//! yourself to set [`take_over`](crate::messages::TakeOver) or to talk to the actor directly.
//! (A credential store's source makes the same changes internally.)
//!
//! Sent by hand to a domain a watch or a store owns, an addition or replacement is refused
//! unless it takes over ([`TakeOver`](crate::messages::TakeOver)); a removal is never refused
//! and always revokes: once it has returned `Ok`, no handshake is admitted under the removed
//! key or user in that domain, including those whose decision was under way, and the owner's
//! later updates do not bring it back.
//!
//! ```no_run
//! # async fn demo(policy: actix::Addr<actix_zap::actors::PolicyActor>) -> Result<(), Box<dyn std::error::Error>> {
//! use actix_zap::messages::{AddCurveKeys, RemoveCurveKeys};
//! use actix_zap::{keys::CurvePublicKey, policy::CurveEntry};
//! let key = CurvePublicKey::from_z85("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7")?;
//! let entry = CurveEntry { user_id: Some("alice".into()), ..CurveEntry::new(key) };
//! policy.send(AddCurveKeys::new("fleet", [entry])).await??;
//! policy.send(RemoveCurveKeys::new("fleet", [key])).await??;
//! # Ok(()) }
//! ```

use actix::prelude::*;

use super::error::ConfigError;
use crate::keys::CurvePublicKey;
use crate::policy::{CurveEntry, HashedPassword, HashedTable, Removed};

/// Adds keys to a domain's CURVE key set, or replaces their entries; answers how many. A
/// domain with allow-any, a provider or nothing gets a key set holding just these keys.
///
/// [`Authenticator::add_curve_keys`](crate::Authenticator::add_curve_keys) sends it.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<usize, ConfigError>")]
pub struct AddCurveKeys {
    /// The ZAP domain, or `"*"`.
    pub domain: String,
    /// The keys.
    pub keys: Vec<CurveEntry>,
    /// Take the domain over from a watch or store that owns it (see [`TakeOver`](crate::messages::TakeOver)).
    pub take_over: bool,
}

impl AddCurveKeys {
    /// These keys, for `domain`.
    pub fn new(domain: impl Into<String>, keys: impl IntoIterator<Item = CurveEntry>) -> Self {
        AddCurveKeys {
            domain: domain.into(),
            keys: keys.into_iter().collect(),
            take_over: false,
        }
    }
}

/// Removes keys from a domain, whoever owns it (a removal is never refused); answers what it
/// did ([`Removed`]): installed entries removed, and local revocations recorded for keys the
/// domain would still admit without an installed entry (allow-any, a provider, the `"*"`
/// fallback) or that its watch, store or a load in progress could bring back (see
/// [`LiftRevocations`](crate::messages::LiftRevocations)).
///
/// [`Authenticator::remove_curve_keys`](crate::Authenticator::remove_curve_keys) sends it.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Removed, ConfigError>")]
pub struct RemoveCurveKeys {
    /// The ZAP domain, or `"*"`.
    pub domain: String,
    /// The keys.
    pub keys: Vec<CurvePublicKey>,
}

impl RemoveCurveKeys {
    /// These keys, from `domain`.
    pub fn new(domain: impl Into<String>, keys: impl IntoIterator<Item = CurvePublicKey>) -> Self {
        RemoveCurveKeys {
            domain: domain.into(),
            keys: keys.into_iter().collect(),
        }
    }
}

/// Sets a domain's PLAIN users with argon2id hashes, replacing its table (clear-text or
/// hashed). An empty table refuses every PLAIN client of the domain.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), ConfigError>")]
pub struct ConfigureHashedPlain {
    /// The ZAP domain, or `"*"`.
    pub domain: String,
    /// The users.
    pub table: HashedTable,
    /// Take the domain over from a watch or store that owns it (see [`TakeOver`](crate::messages::TakeOver)).
    pub take_over: bool,
}

/// Adds users with argon2id hashes to a domain (or replaces their hashes); answers how many.
/// A domain with a clear-text table, or none, gets a hashed table holding just these users.
///
/// [`Authenticator::add_plain_users`](crate::Authenticator::add_plain_users) sends it.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<usize, ConfigError>")]
pub struct AddPlainUsers {
    /// The ZAP domain, or `"*"`.
    pub domain: String,
    /// Usernames and hashes (checked against the limits by [`HashedPassword::parse`]).
    pub users: Vec<(String, HashedPassword)>,
    /// Take the domain over from a watch or store that owns it (see [`TakeOver`](crate::messages::TakeOver)).
    pub take_over: bool,
}

/// Removes users from a domain's PLAIN table (clear-text or hashed), whoever owns it; answers
/// what it did ([`Removed`]), as [`RemoveCurveKeys`] does for keys.
///
/// [`Authenticator::remove_plain_users`](crate::Authenticator::remove_plain_users) sends it.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Removed, ConfigError>")]
pub struct RemovePlainUsers {
    /// The ZAP domain, or `"*"`.
    pub domain: String,
    /// The usernames.
    pub users: Vec<String>,
}

impl ConfigureHashedPlain {
    /// This table for `domain`.
    pub fn new(domain: impl Into<String>, table: HashedTable) -> Self {
        ConfigureHashedPlain {
            domain: domain.into(),
            table,
            take_over: false,
        }
    }
}

impl AddPlainUsers {
    /// These users (name, hash) for `domain`.
    pub fn new<U: Into<String>>(
        domain: impl Into<String>,
        users: impl IntoIterator<Item = (U, HashedPassword)>,
    ) -> Self {
        AddPlainUsers {
            domain: domain.into(),
            users: users.into_iter().map(|(n, h)| (n.into(), h)).collect(),
            take_over: false,
        }
    }
}

impl RemovePlainUsers {
    /// These users, from `domain`.
    pub fn new<U: Into<String>>(
        domain: impl Into<String>,
        users: impl IntoIterator<Item = U>,
    ) -> Self {
        RemovePlainUsers {
            domain: domain.into(),
            users: users.into_iter().map(Into::into).collect(),
        }
    }
}
