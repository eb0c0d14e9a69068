//! Delta messages: add or remove single CURVE keys and hashed PLAIN users, each in O(1)
//! however large the domain, for callers that keep credentials elsewhere (a credential
//! store's source sends the same changes internally).
//!
//! Sent by hand, each of them is a configuration of the domain's mechanism: it replaces a
//! watch or a credential store serving that domain, as [`ConfigureCurve`](crate::messages::ConfigureCurve)
//! does. A removal is a narrowing: once it has returned `Ok`, no handshake is admitted under
//! the removed key or user, including those whose decision was under way.
//!
//! ```no_run
//! # async fn demo(policy: actix::Addr<actix_zap::actors::PolicyActor>) -> Result<(), Box<dyn std::error::Error>> {
//! use actix_zap::messages::{AddCurveKeys, RemoveCurveKeys};
//! use actix_zap::{keys::CurvePublicKey, policy::CurveEntry};
//! let key = CurvePublicKey::from_z85("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7")?;
//! policy.send(AddCurveKeys::new("fleet", [CurveEntry::new(key)])).await??;
//! policy.send(RemoveCurveKeys::new("fleet", [key])).await??;
//! # Ok(()) }
//! ```

use actix::prelude::*;

use super::policy_actor::PolicyActor;
use crate::error::ConfigError;
use crate::keys::CurvePublicKey;
use crate::messages::MechanismKind;
use crate::policy::{CurveEntry, HashedPassword, HashedTable};

/// Adds keys to a domain's CURVE key set, or replaces their entries; answers how many. A
/// domain with allow-any, a provider or nothing gets a key set holding just these keys.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<usize, ConfigError>")]
pub struct AddCurveKeys {
    /// The ZAP domain, or `"*"`.
    pub domain: String,
    /// The keys.
    pub keys: Vec<CurveEntry>,
}

impl AddCurveKeys {
    /// These keys, for `domain`.
    pub fn new(domain: impl Into<String>, keys: impl IntoIterator<Item = CurveEntry>) -> Self {
        AddCurveKeys {
            domain: domain.into(),
            keys: keys.into_iter().collect(),
        }
    }
}

/// Removes keys from a domain's key set; answers how many were there.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<usize, ConfigError>")]
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
}

/// Adds users with argon2id hashes to a domain (or replaces their hashes); answers how many.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<usize, ConfigError>")]
pub struct AddPlainUsers {
    /// The ZAP domain, or `"*"`.
    pub domain: String,
    /// Usernames and hashes (checked against the limits by [`HashedPassword::parse`]).
    pub users: Vec<(String, HashedPassword)>,
}

/// Removes hashed users from a domain; answers how many were there.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<usize, ConfigError>")]
pub struct RemovePlainUsers {
    /// The ZAP domain, or `"*"`.
    pub domain: String,
    /// The usernames.
    pub users: Vec<String>,
}

impl Handler<AddCurveKeys> for PolicyActor {
    type Result = Result<usize, ConfigError>;

    fn handle(&mut self, msg: AddCurveKeys, ctx: &mut Self::Context) -> Self::Result {
        super::require_curve(zmq::has("curve"))?;
        crate::policy::check_domain(&msg.domain)?;
        self.stop_watch(&msg.domain, MechanismKind::Curve, ctx);
        self.curve_ticket(&msg.domain);
        Ok(self.policy.upsert_curve_keys(&msg.domain, msg.keys)?)
    }
}

impl Handler<RemoveCurveKeys> for PolicyActor {
    type Result = Result<usize, ConfigError>;

    fn handle(&mut self, msg: RemoveCurveKeys, ctx: &mut Self::Context) -> Self::Result {
        self.stop_watch(&msg.domain, MechanismKind::Curve, ctx);
        Ok(self.policy.remove_curve_keys(&msg.domain, &msg.keys))
    }
}

impl Handler<ConfigureHashedPlain> for PolicyActor {
    type Result = Result<(), ConfigError>;

    fn handle(&mut self, msg: ConfigureHashedPlain, ctx: &mut Self::Context) -> Self::Result {
        self.policy.configure_hashed_plain(&msg.domain, msg.table)?;
        self.stop_watch(&msg.domain, MechanismKind::Plain, ctx);
        self.verifier.forget_domain(&msg.domain);
        Ok(())
    }
}

impl Handler<AddPlainUsers> for PolicyActor {
    type Result = Result<usize, ConfigError>;

    fn handle(&mut self, msg: AddPlainUsers, ctx: &mut Self::Context) -> Self::Result {
        crate::policy::check_domain(&msg.domain)?;
        self.stop_watch(&msg.domain, MechanismKind::Plain, ctx);
        for (name, _) in &msg.users {
            self.verifier.forget_user(&msg.domain, name.as_bytes());
        }
        let users = msg.users.into_iter().map(|(n, h)| (n.into_bytes(), h));
        Ok(self.policy.upsert_hashed_users(&msg.domain, users)?)
    }
}

impl Handler<RemovePlainUsers> for PolicyActor {
    type Result = Result<usize, ConfigError>;

    fn handle(&mut self, msg: RemovePlainUsers, ctx: &mut Self::Context) -> Self::Result {
        self.stop_watch(&msg.domain, MechanismKind::Plain, ctx);
        for name in &msg.users {
            self.verifier.forget_user(&msg.domain, name.as_bytes());
        }
        let names = msg.users.iter().map(|n| n.as_bytes());
        Ok(self.policy.remove_hashed_users(&msg.domain, names))
    }
}
