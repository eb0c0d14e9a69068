//! Decisions, sans-IO: the whole authentication state and the verdict for each request.
//!
//! [`Policy::handle`] is pyzmq's `handle_zap_message` without the socket: raw request frames
//! in, reply frames out — or, for a domain whose CURVE keys are decided by a provider (or
//! whose PLAIN passwords are hashed), a [`Consultation`] (a [`Verification`]) to run and then
//! hand back to [`Policy::resume`]. Tests, fuzzers and benchmarks drive it directly; the
//! actors only carry frames to and from it.
//!
//! Time is an input, as the frames are ([`Now`]): [`Policy::handle_at`] and
//! [`Policy::decide`] take it, and so do everything that compares a deadline or an expiry
//! (a store's [`Trust`], a key's expiry, the [`VerificationCache`], a request's deadline in
//! [`Policy::resume`]). [`Policy::handle`] reads the clocks for you.
//!
//! ```
//! use actix_zap::policy::{Decision, PasswordTable, Policy};
//! let mut policy = Policy::default();
//! policy.configure_plain("*", PasswordTable::new([("admin", "secret")])).unwrap();
//! let request: [&[u8]; 8] =
//!     [b"1.0", b"1", b"global", b"127.0.0.1", b"", b"PLAIN", b"admin", b"secret"];
//! let Decision::Reply(reply) = policy.handle(&request) else { unreachable!() };
//! assert_eq!(reply.frames(), [&b"1.0"[..], b"1", b"200", b"OK", b"admin", b""]);
//! ```
//!
//! The procedure and status texts are pyzmq's (reference C3), with this project's decisions:
//! `'*'` is a per-mechanism fallback for every domain without its own entry; a domain's CURVE
//! setting is exactly one of allow-any, a key set or a provider; unknown mechanisms are
//! refused; refusals carry no user id.

mod address;
mod control;
mod decision;
mod deltas;
mod filter;
mod hashed;
mod inspect;
mod ipc;
mod now;
mod peer;
mod plain;
mod refusal;
mod sessions;
mod throttle;
mod verified;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub use address::{
    AddressError, AddressPattern, AddressRules, AddressSet, AddressVerdict, ListKind, Scope,
};
pub use control::{
    Applied, Change, Displaced, MechanismKind, Narrowing, Origin, Outcome, Owner, OwnerId, Removed,
    TakenOver, Trust,
};
pub use decision::{
    Answer, BlockingCall, BlockingRunner, Consultation, Decision, Inline, ProviderFailure,
    ANONYMOUS,
};
pub use deltas::CurveEntry;
pub use filter::AddressFilter;
#[cfg(test)]
pub(crate) use hashed::cheap as cheap_hash;
pub use hashed::{Argon2Limits, HashError, HashedPassword, HashedTable, Verification};
pub use inspect::{CurveSummary, OwnerSummary, PolicySnapshot, RevocationSummary};
pub use ipc::{IpcRule, IpcRules};
pub use now::{deadline, Now};
pub use peer::{IpcPeer, Peer, Zone};
pub use plain::{PasswordCheck, PasswordTable, PlainTable};
pub use refusal::Refusal;
pub use sessions::{covers, Grant};
pub use throttle::{
    Attempt, Source, Start, Throttle, ThrottleLimits, Ticket, Waiter, Work, PAIRS_PER_ADDRESS,
};
pub use verified::{VerificationCache, VERIFIED_FOR};

use crate::certs::CertStore;
use crate::keys::CurvePublicKey;
use crate::provider::Provider;

/// The domain key that covers every domain without an entry of its own (per mechanism).
pub const ANY_DOMAIN: &str = "*";

/// The longest ZAP domain libzmq lets a socket have.
pub const MAX_DOMAIN_BYTES: usize = 255;

/// Maps an admitted CURVE key to the `User-Id` the server application sees.
///
/// Runs like a synchronous provider (on the authenticator's pool, under its deadline), so a
/// mapping that fails, panics or hangs costs its own client a `500` and nobody else anything.
pub type UserIdMapper =
    Arc<dyn Fn(&CurvePublicKey) -> Result<String, crate::provider::ProviderError> + Send + Sync>;

/// How one domain decides on CURVE clients.
#[derive(Clone)]
pub enum CurvePolicy {
    /// Any client key is admitted (pyzmq's `CURVE_ALLOW_ANY`), for this domain only.
    AllowAny,
    /// Only these keys; each key's certificate metadata goes into its `200` reply.
    Keys(Arc<CertStore>),
    /// A provider decides each key.
    Provider(Provider),
}

impl std::fmt::Debug for CurvePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CurvePolicy::AllowAny => f.write_str("AllowAny"),
            CurvePolicy::Keys(store) => write!(f, "Keys({} keys)", store.len()),
            CurvePolicy::Provider(p) => write!(f, "{p:?}"),
        }
    }
}

/// How one domain decides on GSSAPI clients.
///
/// libzmq 4.3.x proceeds with a GSSAPI handshake even when the reply refuses it, so this
/// decides the reply and the `User-Id`, but cannot keep a GSSAPI client out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GssapiPolicy {
    /// Any authenticated principal.
    AnyPrincipal,
    /// Only these principals.
    Principals(HashSet<String>),
}

/// A configuration that cannot be applied. The policy is left as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// pyzmq's rule: an allow-list and a deny-list cannot both be in force. An emptied
    /// allow-list is still in force (it refuses everyone): clear it first.
    #[error(
        "only use allow or deny, not both: {} {existing}-list is already configured",
        if *.existing == "allow" { "an" } else { "a" }
    )]
    AllowAndDeny {
        /// `"allow"` or `"deny"`, the list already in force.
        existing: &'static str,
    },
    /// Address rules were sent for the domain `"*"`, which is not a fallback for them.
    #[error(
        "address rules cannot be set for domain \"*\": the global rules already cover every \
         domain (send them without a domain)"
    )]
    AnyDomainAddressRules,
    /// A domain longer than libzmq's `ZMQ_ZAP_DOMAIN` limit can never be requested.
    #[error("ZAP domain is {0} bytes, libzmq allows at most 255")]
    DomainTooLong(usize),
    /// A widening or replacing change by hand on a domain a watch or a store owns, sent
    /// without taking over. Nothing was changed; take over explicitly (e.g.
    /// `ConfigureCurve::take_over`) to make the change and stop that owner for the domain.
    #[error(
        "{mechanism} of domain {domain:?} is owned by {owner}: a change by hand that widens or \
         replaces it needs an explicit take-over (removals are always accepted)"
    )]
    OwnedBy {
        /// The domain.
        domain: String,
        /// The mechanism.
        mechanism: MechanismKind,
        /// Who owns it, by name.
        owner: String,
    },
    /// A change from an owner (load, watch, store) that is no longer in charge of the domain:
    /// someone took it over or replaced it. Nothing was changed.
    #[error("superseded: the sender is no longer in charge of that domain's mechanism")]
    Superseded,
    /// An owner sent a change only the hand may make (address rules, the user-id mapping,
    /// claims, lifting revocations). Nothing was changed.
    #[error("only a change by hand may do this")]
    HandOnly,
    /// A [`Change::Trust`] not sent by a store: only a store's own reads can prove its
    /// domains up to date. Nothing was changed.
    #[error("only a credential store in charge of its domains may extend their trust")]
    StoreOnly,
    /// An empty table would silently refuse everyone; remove the domain instead.
    #[error(
        "password table for domain {0:?} is empty; nothing was changed (unconfigure removes the \
         domain's table, and then the \"*\" table decides for it)"
    )]
    EmptyPasswordTable(String),
}

pub(crate) fn check_domain(domain: &str) -> Result<(), PolicyError> {
    if domain.len() > MAX_DOMAIN_BYTES {
        return Err(PolicyError::DomainTooLong(domain.len()));
    }
    Ok(())
}

/// A domain's own entry, else the `'*'` entry; with the domain whose entry it is.
fn for_domain<'m, 'd, T>(map: &'m HashMap<String, T>, domain: &'d str) -> Option<(&'d str, &'m T)> {
    match map.get(domain) {
        Some(entry) => Some((domain, entry)),
        None => map.get(ANY_DOMAIN).map(|entry| (ANY_DOMAIN, entry)),
    }
}

/// The complete authentication state. Mutated only by its owner (the `PolicyActor`).
#[derive(Clone, Default)]
pub struct Policy {
    addresses: AddressFilter,
    domain_addresses: HashMap<String, AddressFilter>,
    /// One PLAIN table per domain, clear-text or hashed.
    plain: HashMap<String, PlainTable>,
    curve: HashMap<String, CurvePolicy>,
    gssapi: HashMap<String, GssapiPolicy>,
    curve_user_id: Option<UserIdMapper>,
    /// Who owns each domain's mechanism, and the local revocations.
    control: control::Control,
    /// Bumped by every accepted change: answers of user code computed under an older epoch
    /// are never sent as they are (see [`Consultation`]).
    epoch: u64,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("addresses", &self.addresses)
            .field("domain_addresses", &self.domain_addresses)
            .field("plain", &self.plain)
            .field("curve", &self.curve)
            .field("gssapi", &self.gssapi)
            .field("custom_curve_user_id", &self.curve_user_id.is_some())
            .field("control", &self.control)
            .field("epoch", &self.epoch)
            .finish()
    }
}

impl Policy {
    /// Counts the changes of this `Policy` value: every accepted replace, remove or addition
    /// bumps it, so an answer computed under an older epoch may rest on a policy that no
    /// longer holds (e.g. a key that was revoked while its provider was asked). Epochs are
    /// only comparable within one value and its history: compare a [`Consultation`] with the
    /// policy that made it, not with a clone or a replacement.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Records an accepted change.
    fn changed(&mut self) {
        self.epoch += 1;
    }

    /// Applies a change by hand (see [`apply`](Self::apply)).
    fn by_hand(&mut self, change: Change) -> Result<Outcome, PolicyError> {
        Ok(self.apply(Origin::HAND, change)?.outcome)
    }

    /// Adds addresses to the global allow-list (pyzmq's `allow`).
    pub fn allow(
        &mut self,
        patterns: impl IntoIterator<Item = AddressPattern>,
    ) -> Result<(), PolicyError> {
        self.add_addresses(&Scope::Global, ListKind::Allow, patterns)
    }

    /// Adds addresses to the global deny-list (pyzmq's `deny`).
    pub fn deny(
        &mut self,
        patterns: impl IntoIterator<Item = AddressPattern>,
    ) -> Result<(), PolicyError> {
        self.add_addresses(&Scope::Global, ListKind::Deny, patterns)
    }

    /// Adds addresses to a list of `scope` (global, or one domain's own rules, which apply
    /// to that domain's requests in addition to the global ones).
    pub fn add_addresses(
        &mut self,
        scope: &Scope,
        kind: ListKind,
        patterns: impl IntoIterator<Item = AddressPattern>,
    ) -> Result<(), PolicyError> {
        let patterns = patterns.into_iter().collect();
        let scope = scope.clone();
        self.by_hand(Change::AddAddresses {
            scope,
            kind,
            patterns,
        })
        .map(drop)
    }

    /// Removes addresses from whichever list `scope` has; returns how many were removed.
    ///
    /// Removal only ever narrows: an allow-list emptied this way stays in force and refuses
    /// every address (use [`clear_address_rules`](Self::clear_address_rules) to stop
    /// filtering); a deny-list emptied this way denies no IP but stays in force, so IPC
    /// peers without an IPC rule and unreadable addresses are still refused.
    pub fn remove_addresses<'p>(
        &mut self,
        scope: &Scope,
        patterns: impl IntoIterator<Item = &'p AddressPattern>,
    ) -> Result<usize, PolicyError> {
        let patterns = patterns.into_iter().cloned().collect();
        let scope = scope.clone();
        Ok(self
            .by_hand(Change::RemoveAddresses { scope, patterns })?
            .count())
    }

    /// Replaces the IP list of `scope` as a whole (e.g. to switch allow to deny). An empty
    /// allow-list refuses every address, an empty deny-list denies no IP (both stay in
    /// force for peers that are not IP peers); `Open` stops IP filtering.
    /// The scope's IPC rules are kept.
    pub fn set_address_rules(
        &mut self,
        scope: &Scope,
        rules: AddressRules,
    ) -> Result<(), PolicyError> {
        let scope = scope.clone();
        self.by_hand(Change::SetAddressRules { scope, rules })
            .map(drop)
    }

    /// Drops every address rule of `scope`, IP and IPC: the one explicit way back to no
    /// address filtering there.
    pub fn clear_address_rules(&mut self, scope: &Scope) -> Result<(), PolicyError> {
        let scope = scope.clone();
        self.by_hand(Change::ClearAddressRules { scope }).map(drop)
    }

    /// Adds rules to the IPC allow-list of `scope`, putting it in force.
    pub fn allow_ipc(
        &mut self,
        scope: &Scope,
        rules: impl IntoIterator<Item = IpcRule>,
    ) -> Result<(), PolicyError> {
        let rules = rules.into_iter().collect();
        let scope = scope.clone();
        self.by_hand(Change::AllowIpc { scope, rules }).map(drop)
    }

    /// Removes rules from the IPC allow-list of `scope`; returns how many were there. An
    /// emptied IPC list stays in force and refuses every IPC peer.
    pub fn remove_ipc<'r>(
        &mut self,
        scope: &Scope,
        rules: impl IntoIterator<Item = &'r IpcRule>,
    ) -> Result<usize, PolicyError> {
        let rules = rules.into_iter().cloned().collect();
        let scope = scope.clone();
        Ok(self.by_hand(Change::RemoveIpc { scope, rules })?.count())
    }

    /// Drops the IPC allow-list of `scope` (IPC peers are then refused while an IP list is
    /// in force there, and admitted otherwise).
    pub fn clear_ipc_rules(&mut self, scope: &Scope) -> Result<(), PolicyError> {
        let scope = scope.clone();
        self.by_hand(Change::ClearIpcRules { scope }).map(drop)
    }

    /// The global IP list.
    pub fn address_rules(&self) -> &AddressRules {
        self.addresses.ip()
    }

    /// The global address filter (IP list and IPC rules).
    pub fn address_filter(&self) -> &AddressFilter {
        &self.addresses
    }

    /// Each domain's own address filter.
    pub fn domain_address_rules(&self) -> &HashMap<String, AddressFilter> {
        &self.domain_addresses
    }

    /// The rules of `scope`; `"*"` is refused, as it would be a fallback that a domain's own
    /// entry could escape, while the global rules already apply to every domain.
    fn rules_mut(&mut self, scope: &Scope) -> Result<&mut AddressFilter, PolicyError> {
        match scope {
            Scope::Global => Ok(&mut self.addresses),
            Scope::Domain(domain) => {
                check_domain(domain)?;
                if domain == ANY_DOMAIN {
                    return Err(PolicyError::AnyDomainAddressRules);
                }
                Ok(self.domain_addresses.entry(domain.clone()).or_default())
            }
        }
    }

    /// Sets a domain's PLAIN users, replacing any previous table for that domain.
    pub fn configure_plain(
        &mut self,
        domain: &str,
        passwords: PasswordTable,
    ) -> Result<(), PolicyError> {
        self.by_hand(Change::ConfigurePlain {
            domain: domain.to_owned(),
            table: PlainTable::Clear(passwords),
        })
        .map(drop)
    }

    /// Sets a domain's CURVE policy, replacing that domain's previous one only.
    pub fn configure_curve(&mut self, domain: &str, curve: CurvePolicy) -> Result<(), PolicyError> {
        let domain = domain.to_owned();
        self.by_hand(Change::ConfigureCurve { domain, curve })
            .map(drop)
    }

    /// Sets a domain's GSSAPI policy.
    pub fn configure_gssapi(
        &mut self,
        domain: &str,
        gssapi: GssapiPolicy,
    ) -> Result<(), PolicyError> {
        let domain = domain.to_owned();
        self.by_hand(Change::ConfigureGssapi { domain, gssapi })
            .map(drop)
    }

    /// Removes a domain's setting of one mechanism (its PLAIN table, CURVE keys, allow-any or
    /// provider, GSSAPI policy); true if there was one. The domain then falls back to `"*"`.
    pub fn unconfigure(
        &mut self,
        domain: &str,
        mechanism: MechanismKind,
    ) -> Result<bool, PolicyError> {
        let domain = domain.to_owned();
        Ok(self
            .by_hand(Change::Unconfigure { domain, mechanism })?
            .existed())
    }

    /// Replaces the CURVE user-id mapping; `None` restores the default (the key's Z85 text).
    pub fn set_curve_user_id(&mut self, mapper: Option<UserIdMapper>) {
        self.apply(Origin::HAND, Change::SetCurveUserId(mapper))
            .expect("the user-id mapping is the hand's and has nothing to refuse");
    }

    /// The PLAIN tables by domain (passwords stay hidden: see [`PasswordTable`]).
    pub fn plain_domains(&self) -> &HashMap<String, PlainTable> {
        &self.plain
    }

    /// The CURVE policies by domain.
    pub fn curve_domains(&self) -> &HashMap<String, CurvePolicy> {
        &self.curve
    }

    /// The GSSAPI policies by domain.
    pub fn gssapi_domains(&self) -> &HashMap<String, GssapiPolicy> {
        &self.gssapi
    }

    /// Whether a custom CURVE user-id mapping is installed.
    pub fn has_custom_curve_user_id(&self) -> bool {
        self.curve_user_id.is_some()
    }
}

#[cfg(test)]
mod tests;
