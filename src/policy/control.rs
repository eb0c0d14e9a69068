//! The one way in: every change to who may connect — whatever its origin — goes through
//! [`Policy::apply`], which checks that the change's owner is still in charge of what it
//! changes, installs it, bumps the epoch when it can narrow, and tells the caller what to
//! cancel and what it narrowed.
//!
//! # Owners
//! Every domain's setting of one mechanism (its PLAIN table, its CURVE setting, its GSSAPI
//! setting) has exactly one [`Owner`]: the hand (handle methods and messages; the default), a
//! directory load in progress, a file watch, or a store source. Address rules, IPC rules and
//! the CURVE user-id mapping belong to the hand alone.
//!
//! | change by hand | on a hand-owned domain | load in progress | watch or store |
//! |---|---|---|---|
//! | a removal (`Remove*`) | removes; records a local revocation if nothing installed was removed | removes and revokes; the load still installs, the revocation holds | removes and revokes; the owner's later updates do not undo it |
//! | `Add*`, `Configure*`, `Unconfigure`, a new watch, load or store | applied; lifts the revocations of the names it names | applied; the load is superseded | refused ([`PolicyError::OwnedBy`]) unless it takes over |
//! | the same with take-over | as without | as without | applied; that owner stops for the domain; every revocation of the domain is lifted |
//!
//! A **local revocation** refuses the named key or user in that domain whatever its setting
//! (own set, `"*"` fallback, allow-any, provider, clear-text or hashed table); one in `"*"`
//! covers every domain that falls back to `"*"`. It lives in memory: a restart forgets it.
//!
//! Changes sent by an owner ([`Origin::Owner`]) are applied only while that owner is in charge
//! of the domain; otherwise they are refused with [`PolicyError::Superseded`] and change
//! nothing.
//!
//! # Trust: how long a store's domains may decide
//! A store's copy of its domains is only as good as its last proof that it had applied
//! everything the store had committed. Each domain a store owns is trusted until a deadline
//! ([`Trust`]) that the store moves forward with [`Change::Trust`] after each such proof;
//! every decision for the domain compares it with its `now`, and past it the domain refuses
//! everyone ([`Refusal::StaleStore`](super::Refusal::StaleStore)), never falling back to
//! `"*"`. A store that has proved nothing yet is not trusted at all. Domains of the hand, a
//! load or a watch have no deadline.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::{
    check_domain, AddressFilter, AddressPattern, AddressRules, CurveEntry, CurvePolicy,
    GssapiPolicy, HashedPassword, HashedTable, IpcRule, ListKind, PlainTable, Policy, PolicyError,
    Scope, UserIdMapper,
};
use crate::certs::CertStore;
use crate::keys::CurvePublicKey;

/// A mechanism whose per-domain setting can be configured, owned and removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum MechanismKind {
    /// The domain's password table.
    Plain,
    /// The domain's keys, allow-any or provider.
    Curve,
    /// The domain's GSSAPI policy.
    Gssapi,
}

impl std::fmt::Display for MechanismKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MechanismKind::Plain => "PLAIN",
            MechanismKind::Curve => "CURVE",
            MechanismKind::Gssapi => "GSSAPI",
        })
    }
}

/// Names one owner other than the hand, within one [`Policy`] value
/// ([`Policy::new_owner_id`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OwnerId(u64);

impl OwnerId {
    /// The number, for logs and stats.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// Who is in charge of one domain's setting of one mechanism.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(tag = "kind", rename_all = "snake_case")
)]
#[non_exhaustive]
pub enum Owner {
    /// Handle methods and messages (the default).
    Hand,
    /// A certificate directory being loaded for a `ConfigureCurve`.
    Load {
        /// Its id.
        id: OwnerId,
        /// The directory.
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::serialize::path"))]
        path: PathBuf,
    },
    /// A file watch.
    Watch {
        /// Its id.
        id: OwnerId,
        /// The watched directory or file.
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::serialize::path"))]
        path: PathBuf,
    },
    /// A credential store (e.g. PostgreSQL).
    Store {
        /// Its id.
        id: OwnerId,
        /// The source's name.
        name: String,
    },
}

impl Owner {
    /// The owner's id; `None` for the hand.
    pub fn id(&self) -> Option<OwnerId> {
        match self {
            Owner::Hand => None,
            Owner::Load { id, .. } | Owner::Watch { id, .. } | Owner::Store { id, .. } => Some(*id),
        }
    }

    /// Whether a change by hand must take over to widen or replace what this owner holds.
    fn guards(&self) -> bool {
        matches!(self, Owner::Watch { .. } | Owner::Store { .. })
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owner::Hand => f.write_str("the hand (handle methods and messages)"),
            Owner::Load { path, .. } => write!(f, "the load of {}", path.display()),
            Owner::Watch { path, .. } => write!(f, "the watch of {}", path.display()),
            Owner::Store { name, .. } => write!(f, "the store {name:?}"),
        }
    }
}

/// Who sends a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A handle method or message. `take_over`: a widening or replacing change on a domain a
    /// watch or store owns is applied (and that owner stops for the domain) instead of refused.
    Hand {
        /// Take the domain over from a watch or store.
        take_over: bool,
    },
    /// An owner (load, watch, store): applied only while it is in charge of the domain.
    Owner(OwnerId),
}

impl Origin {
    /// A change by hand that does not take over.
    pub const HAND: Origin = Origin::Hand { take_over: false };
}

/// One change to the policy. Built by the actors from messages, file loads and store rows;
/// applied by [`Policy::apply`], the one way anything changes the policy.
///
/// # Who may make a change
/// Every domain's setting of one mechanism (its PLAIN table, its CURVE setting, its GSSAPI
/// setting) has exactly one [`Owner`]: the hand (handle methods and messages; the default), a
/// directory load in progress, a file watch, or a store source. Address rules, IPC rules and
/// the CURVE user-id mapping belong to the hand alone.
///
/// | change by hand | on a hand-owned domain | load in progress | watch or store |
/// |---|---|---|---|
/// | a removal (`Remove*`) | removes; records a local revocation if nothing installed was removed | removes and revokes; the load still installs, the revocation holds | removes and revokes; the owner's later updates do not undo it |
/// | `Add*`, `Configure*`, `Unconfigure`, a new watch, load or store | applied; lifts the revocations of the names it names | applied; the load is superseded | refused ([`PolicyError::OwnedBy`]) unless it takes over |
/// | the same with take-over | as without | as without | applied; that owner stops for the domain; every revocation of the domain is lifted |
///
/// A **local revocation** refuses the named key or user in that domain whatever its setting
/// (own set, `"*"` fallback, allow-any, provider, clear-text or hashed table); one in `"*"`
/// covers every domain that falls back to `"*"`. It lives in memory: a restart forgets it.
///
/// Changes sent by an owner ([`Origin::Owner`]) are applied only while that owner is in charge
/// of the domain; otherwise they are refused with [`PolicyError::Superseded`] and change
/// nothing.
#[derive(Clone)]
#[non_exhaustive]
pub enum Change {
    /// Adds addresses to a list of `scope` (pyzmq's `allow` and `deny`).
    AddAddresses {
        /// Global, or one domain.
        scope: Scope,
        /// Allow or deny.
        kind: ListKind,
        /// The addresses and ranges.
        patterns: Vec<AddressPattern>,
    },
    /// Removes addresses from whichever list `scope` has (answers a count).
    RemoveAddresses {
        /// Global, or one domain.
        scope: Scope,
        /// The addresses and ranges, as they were added.
        patterns: Vec<AddressPattern>,
    },
    /// Replaces the IP list of `scope` as a whole.
    SetAddressRules {
        /// Global, or one domain.
        scope: Scope,
        /// The new list.
        rules: AddressRules,
    },
    /// Drops every address rule of `scope`, IP and IPC.
    ClearAddressRules {
        /// Global, or one domain.
        scope: Scope,
    },
    /// Adds rules to the IPC allow-list of `scope`.
    AllowIpc {
        /// Global, or one domain.
        scope: Scope,
        /// The rules.
        rules: Vec<IpcRule>,
    },
    /// Removes rules from the IPC allow-list of `scope` (answers a count).
    RemoveIpc {
        /// Global, or one domain.
        scope: Scope,
        /// The rules.
        rules: Vec<IpcRule>,
    },
    /// Drops the IPC allow-list of `scope`.
    ClearIpcRules {
        /// Global, or one domain.
        scope: Scope,
    },
    /// Replaces the CURVE user-id mapping.
    SetCurveUserId(Option<UserIdMapper>),
    /// Replaces a domain's PLAIN table (an empty clear-text table is refused by hand, and
    /// installed from an owner: a watched file that is gone refuses everyone).
    ConfigurePlain {
        /// The domain, or `"*"`.
        domain: String,
        /// The table.
        table: PlainTable,
    },
    /// Replaces a domain's CURVE setting.
    ConfigureCurve {
        /// The domain, or `"*"`.
        domain: String,
        /// The setting.
        curve: CurvePolicy,
    },
    /// Replaces a domain's GSSAPI setting.
    ConfigureGssapi {
        /// The domain, or `"*"`.
        domain: String,
        /// The setting.
        gssapi: GssapiPolicy,
    },
    /// Removes a domain's setting of one mechanism (answers whether there was one).
    Unconfigure {
        /// The domain, or `"*"`.
        domain: String,
        /// The mechanism.
        mechanism: MechanismKind,
    },
    /// Adds keys to a domain's key set or replaces their entries (answers a count).
    AddCurveKeys {
        /// The domain, or `"*"`.
        domain: String,
        /// The keys.
        entries: Vec<CurveEntry>,
    },
    /// Removes keys from a domain (answers [`Removed`]).
    RemoveCurveKeys {
        /// The domain, or `"*"`.
        domain: String,
        /// The keys.
        keys: Vec<CurvePublicKey>,
    },
    /// Adds hashed users to a domain or replaces their hashes (answers a count).
    AddPlainUsers {
        /// The domain, or `"*"`.
        domain: String,
        /// Usernames and hashes.
        users: Vec<(Vec<u8>, HashedPassword)>,
    },
    /// Removes users from a domain's PLAIN table, clear-text or hashed (answers [`Removed`]).
    RemovePlainUsers {
        /// The domain, or `"*"`.
        domain: String,
        /// The usernames.
        users: Vec<Vec<u8>>,
    },
    /// `owner` takes charge of a domain's mechanism (a load, watch or store starts).
    Claim {
        /// The domain, or `"*"`.
        domain: String,
        /// The mechanism.
        mechanism: MechanismKind,
        /// The new owner, with an id from [`Policy::new_owner_id`].
        owner: Owner,
    },
    /// The owner lets go of a domain's mechanism (sent by the owner: a store that stops), or
    /// the hand ends a watch of it (`Unwatch`); the setting stays, the hand owns it (answers
    /// whether an owner let go).
    Release {
        /// The domain, or `"*"`.
        domain: String,
        /// The mechanism.
        mechanism: MechanismKind,
    },
    /// Lifts local revocations of a domain's mechanism: these names, or all (`None`).
    LiftRevocations {
        /// The domain, or `"*"`.
        domain: String,
        /// The mechanism.
        mechanism: MechanismKind,
        /// CURVE keys (32 bytes) or usernames; `None` for all.
        names: Option<Vec<Vec<u8>>>,
    },
    /// A store's domains may decide until `until` (sent by the store, [`Origin::Owner`], while
    /// it is in charge of some domain): it proved, by a read sent at `until - max_staleness`,
    /// that it had applied everything committed before then. Only moves the deadline forward.
    Trust {
        /// The new deadline.
        until: Instant,
    },
}

impl std::fmt::Debug for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Passwords and hashes never appear; what the change targets does.
        match self.target() {
            Some((domain, mechanism)) => {
                write!(f, "{}({domain:?}, {mechanism})", self.name())
            }
            None => write!(f, "{}", self.name()),
        }
    }
}

/// What an accepted removal did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Removed {
    /// Installed entries removed (keys from a key set, users from a table).
    pub installed: usize,
    /// Local revocations recorded: names refused though no installed entry was removed, or
    /// though an owner other than the hand could bring them back.
    pub revoked: usize,
}

impl std::fmt::Display for Removed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        write!(
            f,
            "removed {} installed entr{}, recorded {} local revocation{}",
            self.installed,
            if self.installed == 1 { "y" } else { "ies" },
            self.revoked,
            plural(self.revoked)
        )
    }
}

/// The answer of an accepted change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Applied.
    Done,
    /// Applied to this many entries (addresses, rules, keys, users).
    Count(usize),
    /// A key or user removal.
    Removed(Removed),
    /// Whether there was something to remove or let go.
    Existed(bool),
}

impl Outcome {
    /// The count of a `Count` (0 otherwise).
    pub fn count(self) -> usize {
        match self {
            Outcome::Count(n) => n,
            _ => 0,
        }
    }

    /// The flag of an `Existed` (false otherwise).
    pub fn existed(self) -> bool {
        matches!(self, Outcome::Existed(true))
    }

    /// The removal of a `Removed` (zeroes otherwise).
    pub fn removed(self) -> Removed {
        match self {
            Outcome::Removed(removed) => removed,
            _ => Removed::default(),
        }
    }
}

/// What a change may have taken away: the scope of the handshakes and sessions it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Narrowing {
    /// The address rules of a scope changed.
    Addresses(Scope),
    /// A domain's whole setting of a mechanism was replaced or removed.
    Setting {
        /// The domain, or `"*"` (then every domain falling back to it).
        domain: String,
        /// The mechanism.
        mechanism: MechanismKind,
    },
    /// These keys (32 bytes) or usernames of a domain were removed, revoked or replaced.
    Names {
        /// The domain, or `"*"`.
        domain: String,
        /// The mechanism.
        mechanism: MechanismKind,
        /// The names.
        names: Vec<Vec<u8>>,
    },
    /// The CURVE user-id mapping changed (every CURVE user id may differ).
    UserIds,
}

/// An owner that is no longer in charge of a domain's mechanism because of a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Displaced {
    /// The domain.
    pub domain: String,
    /// The mechanism.
    pub mechanism: MechanismKind,
    /// Who was in charge.
    pub owner: Owner,
    /// True when a change by hand took the domain over from a watch or store.
    pub taken_over: bool,
}

/// What [`Policy::apply`] did, for the caller to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The answer.
    pub outcome: Outcome,
    /// Owners that stopped being in charge: the actor shell stops their watch, detaches the
    /// store from the domain, supersedes the load.
    pub displaced: Vec<Displaced>,
    /// What the change may have taken away (empty: nothing; the epoch was not bumped).
    pub narrowed: Vec<Narrowing>,
}

/// One domain taken over by hand from a watch or store, for inspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenOver {
    /// The domain.
    pub domain: String,
    /// The mechanism.
    pub mechanism: MechanismKind,
    /// Who owned it before.
    pub from: Owner,
}

type DomainKey = (String, MechanismKind);

/// Until when a domain's setting may decide: its owner's deadline, compared with the `now` of
/// every decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// No deadline: the hand's, a load's or a watch's setting.
    Unlimited,
    /// A store's setting, proved up to date; trusted before this instant, not at it.
    Until(Instant),
    /// A store's setting that no read has proved yet: not trusted.
    Unproved,
}

impl Trust {
    /// The one that ends first.
    pub fn earlier(self, other: Trust) -> Trust {
        match (self, other) {
            (Trust::Unproved, _) | (_, Trust::Unproved) => Trust::Unproved,
            (Trust::Until(a), Trust::Until(b)) => Trust::Until(a.min(b)),
            (Trust::Until(at), Trust::Unlimited) | (Trust::Unlimited, Trust::Until(at)) => {
                Trust::Until(at)
            }
            (Trust::Unlimited, Trust::Unlimited) => Trust::Unlimited,
        }
    }

    /// Whether the setting may decide at `now`.
    pub fn holds_at(self, now: Instant) -> bool {
        match self {
            Trust::Unlimited => true,
            Trust::Until(until) => now < until,
            Trust::Unproved => false,
        }
    }
}

/// Who owns what, and the local revocations. Part of [`Policy`].
#[derive(Debug, Clone, Default)]
pub(super) struct Control {
    /// Owners other than the hand, by mechanism then domain (looked up with a `&str`, no
    /// allocation per request); a domain's mechanism not listed is the hand's.
    owners: HashMap<MechanismKind, HashMap<String, Owner>>,
    /// Each store in charge of some domain: until when its domains may decide (`None`: it
    /// has proved nothing yet). Empty without stores, which keeps the decision's check to
    /// one branch.
    trusted: HashMap<OwnerId, Option<Instant>>,
    /// Names refused per mechanism and domain, whatever the domain's setting.
    revoked: HashMap<MechanismKind, HashMap<String, HashSet<Vec<u8>>>>,
    /// The latest take-over per domain's mechanism.
    taken_over: HashMap<DomainKey, Owner>,
    next_owner: u64,
}

impl Control {
    fn owner(&self, domain: &str, mechanism: MechanismKind) -> Owner {
        self.owner_ref(domain, mechanism)
            .cloned()
            .unwrap_or(Owner::Hand)
    }

    fn owner_ref(&self, domain: &str, mechanism: MechanismKind) -> Option<&Owner> {
        self.owners.get(&mechanism)?.get(domain)
    }

    fn set_owner(&mut self, domain: &str, mechanism: MechanismKind, owner: Owner) {
        if let Owner::Store { id, .. } = &owner {
            self.trusted.entry(*id).or_insert(None);
        }
        let domains = self.owners.entry(mechanism).or_default();
        let before = match owner {
            Owner::Hand => domains.remove(domain),
            owner => domains.insert(domain.to_owned(), owner),
        };
        self.owners.retain(|_, domains| !domains.is_empty());
        // A store in charge of nothing any more has nothing left to trust.
        if let Some(Owner::Store { id, .. }) = before {
            let in_charge = (self.owners.values())
                .flat_map(HashMap::values)
                .any(|owner| matches!(owner, Owner::Store { id: other, .. } if *other == id));
            if !in_charge {
                self.trusted.remove(&id);
            }
        }
    }

    /// Until when a request of `domain` may be decided by the setting of `setting_domain`
    /// (the domain's own, or `"*"`): the earlier deadline of the two owners, so a store's
    /// domain never falls back to `"*"` past its deadline.
    ///
    /// Inlined into the decision: without stores (the common case) it is one branch there,
    /// not a call; with stores, `stores_trust` looks the owners up.
    #[inline]
    pub(super) fn trust(
        &self,
        mechanism: MechanismKind,
        domain: &str,
        setting_domain: &str,
    ) -> Trust {
        if self.trusted.is_empty() {
            return Trust::Unlimited; // no store: the common case costs one branch
        }
        self.stores_trust(mechanism, domain, setting_domain)
    }

    /// [`trust`](Self::trust) when some store is in charge of some domain.
    #[inline(never)]
    fn stores_trust(&self, mechanism: MechanismKind, domain: &str, setting_domain: &str) -> Trust {
        let of = |domain: &str| match self.owner_ref(domain, mechanism) {
            Some(Owner::Store { id, .. }) => self.store_trust(*id),
            _ => Trust::Unlimited,
        };
        if setting_domain == domain {
            of(domain)
        } else {
            of(domain).earlier(of(setting_domain))
        }
    }

    /// Until when the domains of the store `id` may decide.
    fn store_trust(&self, id: OwnerId) -> Trust {
        match self.trusted.get(&id) {
            Some(Some(until)) => Trust::Until(*until),
            Some(None) => Trust::Unproved,
            None => Trust::Unlimited,
        }
    }

    /// Moves the store's deadline forward to `until` (never back).
    fn extend_trust(&mut self, id: OwnerId, until: Instant) {
        if let Some(deadline) = self.trusted.get_mut(&id) {
            *deadline = Some(deadline.map_or(until, |before| before.max(until)));
        }
    }

    /// Whether `name` is revoked for a request of `domain` decided by the setting of
    /// `setting_domain` (the domain's own, or `"*"`).
    ///
    /// Inlined into the decision: without revocations (the common case) it is one branch
    /// there, not a call; with some, `revoked_in` looks the name up.
    #[inline]
    pub(super) fn is_revoked(
        &self,
        mechanism: MechanismKind,
        domain: &str,
        setting_domain: &str,
        name: &[u8],
    ) -> bool {
        if self.revoked.is_empty() {
            return false; // the common case costs one branch
        }
        self.revoked_in(mechanism, domain, setting_domain, name)
    }

    /// [`is_revoked`](Self::is_revoked) when some name is revoked somewhere.
    #[inline(never)]
    fn revoked_in(
        &self,
        mechanism: MechanismKind,
        domain: &str,
        setting_domain: &str,
        name: &[u8],
    ) -> bool {
        let Some(domains) = self.revoked.get(&mechanism) else {
            return false;
        };
        let revoked_in = |d: &str| domains.get(d).is_some_and(|names| names.contains(name));
        revoked_in(domain) || (setting_domain != domain && revoked_in(setting_domain))
    }

    fn revoke(&mut self, domain: &str, mechanism: MechanismKind, name: Vec<u8>) {
        let names = self.revoked.entry(mechanism).or_default();
        names.entry(domain.to_owned()).or_default().insert(name);
    }

    /// Lifts these revocations (all with `None`); answers how many were lifted.
    fn lift(&mut self, domain: &str, mechanism: MechanismKind, names: Option<&[Vec<u8>]>) -> usize {
        let Some(domains) = self.revoked.get_mut(&mechanism) else {
            return 0;
        };
        let lifted = match (domains.get_mut(domain), names) {
            (None, _) => 0,
            (Some(set), None) => {
                let n = set.len();
                set.clear();
                n
            }
            (Some(set), Some(names)) => names.iter().filter(|n| set.remove(*n)).count(),
        };
        domains.retain(|_, set| !set.is_empty());
        self.revoked.retain(|_, domains| !domains.is_empty());
        lifted
    }

    /// Every owner other than the hand, sorted.
    pub(super) fn owners(&self) -> Vec<(String, MechanismKind, Owner)> {
        let mut all: Vec<_> = (self.owners.iter())
            .flat_map(|(m, domains)| domains.iter().map(|(d, o)| (d.clone(), *m, o.clone())))
            .collect();
        all.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        all
    }

    /// Every local revocation, sorted.
    pub(super) fn revocations(&self) -> Vec<(String, MechanismKind, Vec<Vec<u8>>)> {
        let mut all = Vec::new();
        for (mechanism, domains) in &self.revoked {
            for (domain, names) in domains {
                let mut names: Vec<Vec<u8>> = names.iter().cloned().collect();
                names.sort();
                all.push((domain.clone(), *mechanism, names));
            }
        }
        all.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        all
    }

    /// Every take-over, sorted.
    pub(super) fn taken_over(&self) -> Vec<TakenOver> {
        let mut all: Vec<TakenOver> = (self.taken_over.iter())
            .map(|((domain, mechanism), from)| TakenOver {
                domain: domain.clone(),
                mechanism: *mechanism,
                from: from.clone(),
            })
            .collect();
        all.sort_by(|a, b| (&a.domain, a.mechanism).cmp(&(&b.domain, b.mechanism)));
        all
    }
}

/// How a change relates to the domain's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Only for the hand, with no owner: address rules, the user-id mapping.
    HandOnly,
    /// Takes away: never refused to the hand.
    Removal,
    /// Widens or replaces: refused on a watched or store-owned domain unless taking over.
    Widening,
    /// The owner lets go, or the hand ends a watch.
    Release,
    /// Lifts revocations: the hand's explicit word.
    Lift,
    /// A store's proof that it is up to date: only from a store in charge of some domain.
    Trust,
}

impl Change {
    /// A domain's whole CURVE key set.
    pub fn curve_keys(domain: impl Into<String>, keys: CertStore) -> Change {
        Change::ConfigureCurve {
            domain: domain.into(),
            curve: CurvePolicy::Keys(Arc::new(keys)),
        }
    }

    /// A domain's whole hashed PLAIN table.
    pub fn hashed_users(domain: impl Into<String>, table: HashedTable) -> Change {
        Change::ConfigurePlain {
            domain: domain.into(),
            table: PlainTable::from(table),
        }
    }

    /// An empty key set and an empty hashed table for `domain`: everyone of CURVE and PLAIN is
    /// refused there, with no fallback to `"*"` (a store's domain before its first read).
    pub fn refuse_everyone(domain: &str) -> [Change; 2] {
        [
            Change::curve_keys(domain, CertStore::new()),
            Change::hashed_users(domain, HashedTable::new()),
        ]
    }

    fn name(&self) -> &'static str {
        match self {
            Change::AddAddresses { .. } => "AddAddresses",
            Change::RemoveAddresses { .. } => "RemoveAddresses",
            Change::SetAddressRules { .. } => "SetAddressRules",
            Change::ClearAddressRules { .. } => "ClearAddressRules",
            Change::AllowIpc { .. } => "AllowIpc",
            Change::RemoveIpc { .. } => "RemoveIpc",
            Change::ClearIpcRules { .. } => "ClearIpcRules",
            Change::SetCurveUserId(_) => "SetCurveUserId",
            Change::ConfigurePlain { .. } => "ConfigurePlain",
            Change::ConfigureCurve { .. } => "ConfigureCurve",
            Change::ConfigureGssapi { .. } => "ConfigureGssapi",
            Change::Unconfigure { .. } => "Unconfigure",
            Change::AddCurveKeys { .. } => "AddCurveKeys",
            Change::RemoveCurveKeys { .. } => "RemoveCurveKeys",
            Change::AddPlainUsers { .. } => "AddPlainUsers",
            Change::RemovePlainUsers { .. } => "RemovePlainUsers",
            Change::Claim { .. } => "Claim",
            Change::Release { .. } => "Release",
            Change::LiftRevocations { .. } => "LiftRevocations",
            Change::Trust { .. } => "Trust",
        }
    }

    /// The domain's mechanism the change concerns; `None` for address rules and the
    /// user-id mapping.
    pub fn target(&self) -> Option<(&str, MechanismKind)> {
        use MechanismKind::*;
        Some(match self {
            Change::ConfigurePlain { domain, .. }
            | Change::AddPlainUsers { domain, .. }
            | Change::RemovePlainUsers { domain, .. } => (domain, Plain),
            Change::ConfigureCurve { domain, .. }
            | Change::AddCurveKeys { domain, .. }
            | Change::RemoveCurveKeys { domain, .. } => (domain, Curve),
            Change::ConfigureGssapi { domain, .. } => (domain, Gssapi),
            Change::Unconfigure { domain, mechanism }
            | Change::Claim {
                domain, mechanism, ..
            }
            | Change::Release { domain, mechanism }
            | Change::LiftRevocations {
                domain, mechanism, ..
            } => (domain, *mechanism),
            _ => return None,
        })
    }

    fn kind(&self) -> Kind {
        match self {
            Change::RemoveCurveKeys { .. } | Change::RemovePlainUsers { .. } => Kind::Removal,
            Change::ConfigurePlain { .. }
            | Change::ConfigureCurve { .. }
            | Change::ConfigureGssapi { .. }
            | Change::Unconfigure { .. }
            | Change::AddCurveKeys { .. }
            | Change::AddPlainUsers { .. }
            | Change::Claim { .. } => Kind::Widening,
            Change::Release { .. } => Kind::Release,
            Change::LiftRevocations { .. } => Kind::Lift,
            Change::Trust { .. } => Kind::Trust,
            _ => Kind::HandOnly,
        }
    }

    /// The names a widening change admits by name (its keys or users), whose revocations a
    /// change by hand lifts.
    fn names_admitted(&self) -> Vec<Vec<u8>> {
        match self {
            Change::AddCurveKeys { entries, .. } => {
                entries.iter().map(|e| e.key.as_bytes().to_vec()).collect()
            }
            Change::ConfigureCurve {
                curve: CurvePolicy::Keys(store),
                ..
            } => store.keys().map(|k| k.as_bytes().to_vec()).collect(),
            Change::AddPlainUsers { users, .. } => users.iter().map(|(n, _)| n.clone()).collect(),
            Change::ConfigurePlain {
                table: PlainTable::Clear(table),
                ..
            } => table
                .usernames()
                .into_iter()
                .map(String::into_bytes)
                .collect(),
            Change::ConfigurePlain {
                table: PlainTable::Hashed(table),
                ..
            } => table
                .usernames()
                .into_iter()
                .map(String::into_bytes)
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// What the owner check decided, before the change is made.
struct Authority {
    /// The owner in charge before the change.
    before: Owner,
    /// It stops being in charge.
    displaced: Option<Displaced>,
}

impl Policy {
    /// A fresh id for an owner (a load, watch or store) of this policy.
    pub fn new_owner_id(&mut self) -> OwnerId {
        self.control.next_owner += 1;
        OwnerId(self.control.next_owner)
    }

    /// Whether `origin` may make `change` now, without making it: the owner check of
    /// [`apply`](Self::apply) alone.
    pub fn check(&self, origin: Origin, change: &Change) -> Result<(), PolicyError> {
        if let Some((domain, _)) = change.target() {
            check_domain(domain)?;
        }
        self.authorize(origin, change).map(drop)
    }

    /// Who is in charge of a domain's setting of `mechanism`.
    pub fn owner(&self, domain: &str, mechanism: MechanismKind) -> Owner {
        self.control.owner(domain, mechanism)
    }

    /// Applies one change — the one way anything changes the policy. Who may change what: a
    /// removal by hand is always applied (and kept as a local revocation over an owner's
    /// updates); a widening or replacing change by hand on a domain a watch or store owns is
    /// refused ([`PolicyError::OwnedBy`]) unless its [`Origin`] takes over; an owner's change
    /// is applied only while that [`Owner`] is in charge ([`PolicyError::Superseded`]); a
    /// [`Change::Trust`] only from a store ([`PolicyError::StoreOnly`]). A refused change
    /// changes nothing. [`Change`] has the whole table.
    ///
    /// ```
    /// use actix_zap::keys::CurvePublicKey;
    /// use actix_zap::policy::{Change, CurvePolicy, MechanismKind, Origin, Owner, Policy, PolicyError};
    /// let mut policy = Policy::default();
    /// let key = CurvePublicKey::from_bytes([7; 32]);
    /// // A watch takes charge of "fleet"'s CURVE keys and installs the allow-any setting.
    /// let watch = policy.new_owner_id();
    /// let owner = Owner::Watch { id: watch, path: "/etc/keys".into() };
    /// let claim = Change::Claim { domain: "fleet".into(), mechanism: MechanismKind::Curve, owner };
    /// policy.apply(Origin::HAND, claim).unwrap();
    /// let install = Change::ConfigureCurve { domain: "fleet".into(), curve: CurvePolicy::AllowAny };
    /// policy.apply(Origin::Owner(watch), install.clone()).unwrap();
    /// // By hand, replacing the watch's setting is refused ...
    /// assert!(matches!(policy.apply(Origin::HAND, install), Err(PolicyError::OwnedBy { .. })));
    /// // ... but a removal never is: the key is revoked, and stays so over the watch's reloads.
    /// let remove = Change::RemoveCurveKeys { domain: "fleet".into(), keys: vec![key] };
    /// let applied = policy.apply(Origin::HAND, remove).unwrap();
    /// assert_eq!(applied.outcome.removed().revoked, 1);
    /// ```
    pub fn apply(&mut self, origin: Origin, change: Change) -> Result<Applied, PolicyError> {
        if let Some((domain, _)) = change.target() {
            check_domain(domain)?;
        }
        let authority = self.authorize(origin, &change)?;
        let admitted = match origin {
            Origin::Hand { .. } if change.kind() == Kind::Widening => change.names_admitted(),
            _ => Vec::new(),
        };
        let target = change.target().map(|(d, m)| (d.to_owned(), m));
        let kind = change.kind();
        let claimed = match &change {
            Change::Claim { owner, .. } => Some(owner.clone()),
            _ => None,
        };
        let mut narrowed = Vec::new();
        let outcome = self.make(origin, &authority.before, change, &mut narrowed)?;
        // The change is in: ownership follows.
        if let Some((domain, mechanism)) = &target {
            let taken_over = authority.displaced.as_ref().is_some_and(|d| d.taken_over);
            if taken_over {
                self.control.lift(domain, *mechanism, None);
                let from = authority.before.clone();
                (self.control.taken_over).insert((domain.clone(), *mechanism), from);
            }
            let after = match (origin, kind, claimed) {
                (_, _, Some(claimant)) => Some(claimant),
                (Origin::Hand { .. }, Kind::Widening, None) => Some(Owner::Hand),
                (Origin::Hand { .. }, Kind::Release, None)
                    if matches!(authority.before, Owner::Watch { .. }) =>
                {
                    Some(Owner::Hand)
                }
                // A load hands the domain back once it has installed what it read.
                (Origin::Owner(_), Kind::Widening, None)
                    if matches!(authority.before, Owner::Load { .. }) =>
                {
                    Some(Owner::Hand)
                }
                (Origin::Owner(_), Kind::Release, None) => Some(Owner::Hand),
                _ => None,
            };
            if let Some(after) = after {
                self.control.set_owner(domain, *mechanism, after);
            }
            if !admitted.is_empty() {
                self.control.lift(domain, *mechanism, Some(&admitted));
            }
        }
        if !narrowed.is_empty() {
            self.changed();
        }
        Ok(Applied {
            outcome,
            displaced: authority.displaced.into_iter().collect(),
            narrowed,
        })
    }

    /// The owner check: whether `origin` may make `change`, and whom it displaces.
    fn authorize(&self, origin: Origin, change: &Change) -> Result<Authority, PolicyError> {
        let kind = change.kind();
        let Some((domain, mechanism)) = change.target() else {
            let unowned = Authority {
                before: Owner::Hand,
                displaced: None,
            };
            return match (origin, kind) {
                (Origin::Hand { .. }, Kind::Trust) => Err(PolicyError::StoreOnly),
                (Origin::Hand { .. }, _) => Ok(unowned),
                (Origin::Owner(id), Kind::Trust) if self.control.trusted.contains_key(&id) => {
                    Ok(unowned)
                }
                (Origin::Owner(_), Kind::Trust) => Err(PolicyError::Superseded),
                (Origin::Owner(_), _) => Err(PolicyError::HandOnly),
            };
        };
        let before = self.control.owner(domain, mechanism);
        let displaced = |taken_over| {
            Some(Displaced {
                domain: domain.to_owned(),
                mechanism,
                owner: before.clone(),
                taken_over,
            })
        };
        let displaced = match origin {
            Origin::Owner(id) => {
                if matches!(kind, Kind::Lift | Kind::HandOnly)
                    || matches!(change, Change::Claim { .. })
                {
                    return Err(PolicyError::HandOnly);
                }
                if before.id() != Some(id) {
                    return Err(PolicyError::Superseded);
                }
                None
            }
            Origin::Hand { take_over } => match (kind, &before) {
                (Kind::Removal | Kind::Lift | Kind::HandOnly | Kind::Trust, _)
                | (_, Owner::Hand) => None,
                (Kind::Release, Owner::Watch { .. }) => displaced(false),
                (Kind::Release, _) => None,
                (Kind::Widening, Owner::Load { .. }) => displaced(false),
                (Kind::Widening, owner) if owner.guards() && take_over => displaced(true),
                (Kind::Widening, owner) => {
                    return Err(PolicyError::OwnedBy {
                        domain: domain.to_owned(),
                        mechanism,
                        owner: owner.to_string(),
                    })
                }
            },
        };
        Ok(Authority { before, displaced })
    }

    /// Makes an authorized change; what it may have taken away goes to `narrowed`.
    fn make(
        &mut self,
        origin: Origin,
        before: &Owner,
        change: Change,
        narrowed: &mut Vec<Narrowing>,
    ) -> Result<Outcome, PolicyError> {
        use MechanismKind::*;
        let setting = |domain: &str, mechanism| Narrowing::Setting {
            domain: domain.to_owned(),
            mechanism,
        };
        // A removal by hand is kept as a revocation unless it removed what the hand owns.
        let by_hand_alone = matches!(origin, Origin::Hand { .. }) && *before == Owner::Hand;
        let revoking = matches!(origin, Origin::Hand { .. });
        Ok(match change {
            Change::AddAddresses {
                scope,
                kind,
                patterns,
            } => {
                let n = patterns.len();
                self.change_rules(&scope, |rules| rules.add(kind, patterns))?;
                narrowed.push(Narrowing::Addresses(scope));
                Outcome::Count(n)
            }
            Change::RemoveAddresses { scope, patterns } => {
                let n = self.change_rules(&scope, |rules| Ok(rules.remove(&patterns)))?;
                narrowed.push(Narrowing::Addresses(scope));
                Outcome::Count(n)
            }
            Change::SetAddressRules { scope, rules } => {
                self.change_rules(&scope, |filter| {
                    filter.set(rules);
                    Ok(())
                })?;
                narrowed.push(Narrowing::Addresses(scope));
                Outcome::Done
            }
            Change::ClearAddressRules { scope } => {
                self.change_rules(&scope, |filter| {
                    filter.clear();
                    Ok(())
                })?;
                narrowed.push(Narrowing::Addresses(scope));
                Outcome::Done
            }
            Change::AllowIpc { scope, rules } => {
                let n = rules.len();
                self.change_rules(&scope, |filter| {
                    filter.allow_ipc(rules);
                    Ok(())
                })?;
                narrowed.push(Narrowing::Addresses(scope));
                Outcome::Count(n)
            }
            Change::RemoveIpc { scope, rules } => {
                let n = self.change_rules(&scope, |filter| Ok(filter.remove_ipc(&rules)))?;
                narrowed.push(Narrowing::Addresses(scope));
                Outcome::Count(n)
            }
            Change::ClearIpcRules { scope } => {
                self.change_rules(&scope, |filter| {
                    filter.clear_ipc();
                    Ok(())
                })?;
                narrowed.push(Narrowing::Addresses(scope));
                Outcome::Done
            }
            Change::SetCurveUserId(mapper) => {
                self.curve_user_id = mapper;
                narrowed.push(Narrowing::UserIds);
                Outcome::Done
            }
            Change::ConfigurePlain { domain, table } => {
                let empty_by_hand = table.is_empty()
                    && matches!(origin, Origin::Hand { .. })
                    && matches!(table, PlainTable::Clear(_));
                if empty_by_hand {
                    return Err(PolicyError::EmptyPasswordTable(domain));
                }
                narrowed.push(setting(&domain, Plain));
                self.plain.insert(domain, table);
                Outcome::Done
            }
            Change::ConfigureCurve { domain, curve } => {
                narrowed.push(setting(&domain, Curve));
                self.curve.insert(domain, curve);
                Outcome::Done
            }
            Change::ConfigureGssapi { domain, gssapi } => {
                narrowed.push(setting(&domain, Gssapi));
                self.gssapi.insert(domain, gssapi);
                Outcome::Done
            }
            Change::Unconfigure { domain, mechanism } => {
                let existed = match mechanism {
                    Plain => self.plain.remove(&domain).is_some(),
                    Curve => self.curve.remove(&domain).is_some(),
                    Gssapi => self.gssapi.remove(&domain).is_some(),
                };
                narrowed.push(setting(&domain, mechanism));
                Outcome::Existed(existed)
            }
            Change::AddCurveKeys { domain, entries } => {
                let had_set = matches!(self.curve.get(&domain), Some(CurvePolicy::Keys(_)));
                if !had_set {
                    narrowed.push(setting(&domain, Curve));
                }
                let names = entries.iter().map(|e| e.key.as_bytes().to_vec()).collect();
                let store = self.key_set_mut(&domain);
                let n = entries.len();
                for entry in entries {
                    store.upsert(entry.key, entry.metadata, entry.user_id, entry.expires);
                }
                narrowed.push(Narrowing::Names {
                    domain,
                    mechanism: Curve,
                    names,
                });
                Outcome::Count(n)
            }
            Change::RemoveCurveKeys { domain, mut keys } => {
                let mut seen = HashSet::new();
                keys.retain(|key| seen.insert(*key));
                let mut removed = Removed::default();
                let mut store = match self.curve.get_mut(&domain) {
                    Some(CurvePolicy::Keys(store)) => Some(store),
                    _ => None,
                };
                for key in &keys {
                    let gone = match store.as_mut() {
                        Some(store) if store.holds(key) => {
                            Arc::make_mut(store).remove(key).is_some()
                        }
                        _ => false,
                    };
                    removed.installed += usize::from(gone);
                    if revoking && !(gone && by_hand_alone) {
                        self.control.revoke(&domain, Curve, key.as_bytes().to_vec());
                        removed.revoked += 1;
                    }
                }
                let names = keys.iter().map(|k| k.as_bytes().to_vec()).collect();
                narrowed.push(Narrowing::Names {
                    domain,
                    mechanism: Curve,
                    names,
                });
                Outcome::Removed(removed)
            }
            Change::AddPlainUsers { domain, users } => {
                if !matches!(self.plain.get(&domain), Some(PlainTable::Hashed(_))) {
                    // A clear-text table, or none (the domain fell back to "*"): replaced.
                    narrowed.push(setting(&domain, Plain));
                    let fresh = PlainTable::Hashed(Arc::new(HashedTable::new()));
                    self.plain.insert(domain.clone(), fresh);
                }
                let Some(PlainTable::Hashed(table)) = self.plain.get_mut(&domain) else {
                    unreachable!("a hashed table was installed just above");
                };
                let table = Arc::make_mut(table);
                let n = users.len();
                let names = users.iter().map(|(name, _)| name.clone()).collect();
                for (name, hash) in users {
                    table.upsert(name, hash);
                }
                narrowed.push(Narrowing::Names {
                    domain,
                    mechanism: Plain,
                    names,
                });
                Outcome::Count(n)
            }
            Change::RemovePlainUsers { domain, mut users } => {
                let mut seen = HashSet::new();
                users.retain(|name| seen.insert(name.clone()));
                let mut removed = Removed::default();
                for name in &users {
                    let gone = match self.plain.get_mut(&domain) {
                        Some(table) => table.remove(name),
                        None => false,
                    };
                    removed.installed += usize::from(gone);
                    if revoking && !(gone && by_hand_alone) {
                        self.control.revoke(&domain, Plain, name.clone());
                        removed.revoked += 1;
                    }
                }
                narrowed.push(Narrowing::Names {
                    domain,
                    mechanism: Plain,
                    names: users,
                });
                Outcome::Removed(removed)
            }
            Change::Claim { .. } => Outcome::Done,
            Change::Release { .. } => Outcome::Existed(match origin {
                Origin::Hand { .. } => matches!(before, Owner::Watch { .. }),
                Origin::Owner(_) => true,
            }),
            Change::LiftRevocations {
                domain,
                mechanism,
                names,
            } => Outcome::Count(self.control.lift(&domain, mechanism, names.as_deref())),
            Change::Trust { until } => {
                if let Origin::Owner(id) = origin {
                    self.control.extend_trust(id, until);
                }
                Outcome::Done
            }
        })
    }

    /// Applies one change to the rules of `scope`; a refused one leaves everything as it was.
    fn change_rules<T>(
        &mut self,
        scope: &Scope,
        change: impl FnOnce(&mut AddressFilter) -> Result<T, PolicyError>,
    ) -> Result<T, PolicyError> {
        let result = change(self.rules_mut(scope)?);
        // Drops domains whose filter has no rule left (an emptied allow-list is a rule).
        self.domain_addresses.retain(|_, rules| !rules.is_open());
        result
    }

    /// The domain's own key set, made one if the domain had allow-any, a provider or nothing
    /// (replacing those: a key set only admits what it holds). Copy-on-write: O(1) unless
    /// someone else holds the same set.
    fn key_set_mut(&mut self, domain: &str) -> &mut CertStore {
        let curve = self
            .curve
            .entry(domain.to_owned())
            .or_insert_with(|| CurvePolicy::Keys(Arc::default()));
        if !matches!(curve, CurvePolicy::Keys(_)) {
            *curve = CurvePolicy::Keys(Arc::default());
        }
        match curve {
            CurvePolicy::Keys(store) => Arc::make_mut(store),
            _ => unreachable!("replaced just above"),
        }
    }

    /// The local revocations (CURVE keys as 32 bytes, usernames), sorted by domain.
    pub fn revocations(&self) -> Vec<(String, MechanismKind, Vec<Vec<u8>>)> {
        self.control.revocations()
    }

    /// Domains taken over by hand from a watch or store.
    pub fn taken_over(&self) -> Vec<TakenOver> {
        self.control.taken_over()
    }

    /// Every owner other than the hand, sorted by domain.
    pub fn owners(&self) -> Vec<(String, MechanismKind, Owner)> {
        self.control.owners()
    }

    /// Until when the domains the store `owner` is in charge of may decide
    /// ([`Trust::Unlimited`] when it is in charge of nothing, or not a store).
    pub fn store_trust(&self, owner: OwnerId) -> Trust {
        self.control.store_trust(owner)
    }

    /// Until when the setting of `mechanism` that decides for `domain` (its own, or `"*"`'s)
    /// may decide.
    pub fn trust(&self, domain: &str, mechanism: MechanismKind) -> Trust {
        let setting_domain = match mechanism {
            MechanismKind::Plain => super::for_domain(&self.plain, domain).map(|(d, _)| d),
            MechanismKind::Curve => super::for_domain(&self.curve, domain).map(|(d, _)| d),
            MechanismKind::Gssapi => super::for_domain(&self.gssapi, domain).map(|(d, _)| d),
        };
        (self.control).trust(mechanism, domain, setting_domain.unwrap_or(domain))
    }

    /// Whether `name` is refused by a local revocation for a request of `domain` decided by
    /// the setting of `setting_domain` (the domain's own or `"*"`).
    #[inline]
    pub(super) fn revoked(
        &self,
        mechanism: MechanismKind,
        domain: &str,
        setting_domain: &str,
        name: &[u8],
    ) -> bool {
        self.control
            .is_revoked(mechanism, domain, setting_domain, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Decision, PasswordTable};
    use crate::provider::{CurveVerdict, Provider};
    use crate::zap::{RequestBuilder, StatusCode};

    const CURVE: MechanismKind = MechanismKind::Curve;
    const PLAIN: MechanismKind = MechanismKind::Plain;

    fn key(n: u8) -> CurvePublicKey {
        CurvePublicKey::from_bytes([n; 32])
    }

    fn keys(keys: &[CurvePublicKey]) -> CertStore {
        let mut store = CertStore::new();
        for k in keys {
            store.insert(*k, crate::zap::Metadata::empty());
        }
        store
    }

    /// The status of a CURVE request of `domain` with `key`, providers resolved inline.
    fn curve(policy: &Policy, domain: &str, key: CurvePublicKey) -> StatusCode {
        let frames = RequestBuilder::curve(key).domain(domain).frames();
        match policy.handle(&frames) {
            Decision::Reply(reply) => reply.status,
            Decision::Consult(c) => c.resolve_blocking().status,
            Decision::Verify(v) => v.resolve_blocking().status,
        }
    }

    fn plain(policy: &Policy, domain: &str, user: &str, password: &str) -> StatusCode {
        let frames = RequestBuilder::plain(user, password)
            .domain(domain)
            .frames();
        match policy.handle(&frames) {
            Decision::Reply(reply) => reply.status,
            Decision::Consult(c) => c.resolve_blocking().status,
            Decision::Verify(v) => v.resolve_blocking().status,
        }
    }

    /// The owners other than the hand, each freshly in charge of "d"'s CURVE keys {1, 2}.
    fn owned_by(kind: &str) -> (Policy, Option<OwnerId>) {
        let mut policy = Policy::default();
        let id = policy.new_owner_id();
        let owner = match kind {
            "hand" => None,
            "load" => Some(Owner::Load {
                id,
                path: "/keys".into(),
            }),
            "watch" => Some(Owner::Watch {
                id,
                path: "/keys".into(),
            }),
            "store" => Some(Owner::Store {
                id,
                name: "db".into(),
            }),
            _ => unreachable!(),
        };
        let install = Change::curve_keys("d", keys(&[key(1), key(2)]));
        match owner {
            None => {
                policy.apply(Origin::HAND, install).unwrap();
                (policy, None)
            }
            Some(owner) => {
                let claim = Change::Claim {
                    domain: "d".into(),
                    mechanism: CURVE,
                    owner,
                };
                policy.apply(Origin::HAND, claim).unwrap();
                if kind == "store" {
                    // Proved up to date for the rest of the test.
                    let until = std::time::Instant::now() + std::time::Duration::from_secs(3600);
                    policy
                        .apply(Origin::Owner(id), Change::Trust { until })
                        .unwrap();
                }
                if kind != "load" {
                    policy.apply(Origin::Owner(id), install).unwrap();
                }
                (policy, Some(id))
            }
        }
    }

    fn widenings() -> Vec<Change> {
        let entry = CurveEntry::new(key(9));
        vec![
            Change::curve_keys("d", keys(&[key(1)])),
            Change::ConfigureCurve {
                domain: "d".into(),
                curve: CurvePolicy::AllowAny,
            },
            Change::AddCurveKeys {
                domain: "d".into(),
                entries: vec![entry],
            },
            Change::Unconfigure {
                domain: "d".into(),
                mechanism: CURVE,
            },
            Change::Claim {
                domain: "d".into(),
                mechanism: CURVE,
                owner: Owner::Watch {
                    id: OwnerId(999),
                    path: "/other".into(),
                },
            },
        ]
    }

    #[test]
    fn a_removal_by_hand_is_accepted_whoever_owns_the_domain_and_holds_over_the_owner() {
        for kind in ["hand", "load", "watch", "store"] {
            let (mut policy, owner) = owned_by(kind);
            let remove = Change::RemoveCurveKeys {
                domain: "d".into(),
                keys: vec![key(1)],
            };
            let applied = policy.apply(Origin::HAND, remove).unwrap();
            let removed = applied.outcome.removed();
            let installed = usize::from(kind != "load");
            assert_eq!(removed.installed, installed, "{kind}");
            assert_eq!(removed.revoked, usize::from(kind != "hand"), "{kind}");
            assert!(applied.displaced.is_empty(), "a removal takes nothing over");
            assert_eq!(curve(&policy, "d", key(1)), StatusCode::Denied, "{kind}");
            // The owner installs its set again, with the removed key: it stays refused.
            if let Some(owner) = owner {
                let again = Change::curve_keys("d", keys(&[key(1), key(2)]));
                policy.apply(Origin::Owner(owner), again).unwrap();
                assert_eq!(curve(&policy, "d", key(1)), StatusCode::Denied, "{kind}");
                assert_eq!(curve(&policy, "d", key(2)), StatusCode::Ok, "{kind}");
                let add = Change::AddCurveKeys {
                    domain: "d".into(),
                    entries: vec![CurveEntry::new(key(1))],
                };
                if kind != "load" {
                    policy.apply(Origin::Owner(owner), add).unwrap();
                    assert_eq!(curve(&policy, "d", key(1)), StatusCode::Denied, "{kind}");
                }
            }
        }
    }

    #[test]
    fn a_widening_by_hand_is_refused_on_a_watched_or_stored_domain_and_changes_nothing() {
        for kind in ["watch", "store"] {
            for change in widenings() {
                let (mut policy, _) = owned_by(kind);
                let (epoch, before) = (policy.epoch(), policy.snapshot());
                let name = format!("{change:?} on {kind}");
                match policy.apply(Origin::HAND, change.clone()) {
                    Err(PolicyError::OwnedBy { domain, owner, .. }) => {
                        assert_eq!(domain, "d", "{name}");
                        assert!(owner.contains(if kind == "watch" { "/keys" } else { "db" }));
                    }
                    other => panic!("{name}: {other:?}"),
                }
                assert!(policy.check(Origin::HAND, &change).is_err(), "{name}");
                assert_eq!(
                    (policy.epoch(), policy.snapshot()),
                    (epoch, before),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn taking_over_stops_the_owner_for_the_domain_and_lifts_its_revocations() {
        for kind in ["watch", "store"] {
            for change in widenings() {
                let (mut policy, owner) = owned_by(kind);
                let name = format!("{change:?} on {kind}");
                let revoke = Change::RemoveCurveKeys {
                    domain: "d".into(),
                    keys: vec![key(2)],
                };
                policy.apply(Origin::HAND, revoke).unwrap();
                let claims = matches!(change, Change::Claim { .. });
                let applied = (policy.apply(Origin::Hand { take_over: true }, change))
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(applied.displaced.len(), 1, "{name}");
                assert!(applied.displaced[0].taken_over, "{name}");
                assert_eq!(applied.displaced[0].owner.id(), owner, "{name}");
                assert!(policy.revocations().is_empty(), "{name}");
                assert_eq!(policy.taken_over().len(), 1, "{name}");
                let now = policy.owner("d", CURVE);
                assert_eq!(now == Owner::Hand, !claims, "{name}");
                // The old owner's changes are refused from now on, and change nothing.
                let (epoch, before) = (policy.epoch(), policy.snapshot());
                let stale = Change::curve_keys("d", keys(&[key(5)]));
                let refused = policy.apply(Origin::Owner(owner.unwrap()), stale);
                assert_eq!(refused.unwrap_err(), PolicyError::Superseded, "{name}");
                assert_eq!(
                    (policy.epoch(), policy.snapshot()),
                    (epoch, before),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn a_widening_by_hand_supersedes_a_load_which_then_installs_nothing() {
        for change in widenings() {
            let (mut policy, load) = owned_by("load");
            let name = format!("{change:?}");
            let applied = policy.apply(Origin::HAND, change).unwrap();
            assert_eq!(applied.displaced.len(), 1, "{name}");
            assert!(!applied.displaced[0].taken_over, "{name}");
            let before = policy.snapshot();
            let late = Change::curve_keys("d", keys(&[key(7)]));
            let refused = policy.apply(Origin::Owner(load.unwrap()), late);
            assert_eq!(refused.unwrap_err(), PolicyError::Superseded, "{name}");
            assert_eq!(policy.snapshot(), before, "{name}");
        }
    }

    #[test]
    fn a_load_installs_once_and_hands_the_domain_back() {
        let (mut policy, load) = owned_by("load");
        let load = Origin::Owner(load.unwrap());
        policy
            .apply(load, Change::curve_keys("d", keys(&[key(1)])))
            .unwrap();
        assert_eq!(policy.owner("d", CURVE), Owner::Hand);
        assert_eq!(curve(&policy, "d", key(1)), StatusCode::Ok);
        let again = policy.apply(load, Change::curve_keys("d", keys(&[key(2)])));
        assert_eq!(again.unwrap_err(), PolicyError::Superseded);
    }

    #[test]
    fn owners_cannot_make_what_only_the_hand_may() {
        let (mut policy, watch) = owned_by("watch");
        let watch = Origin::Owner(watch.unwrap());
        let hand_only = [
            Change::SetCurveUserId(None),
            Change::ClearAddressRules {
                scope: Scope::Global,
            },
            Change::LiftRevocations {
                domain: "d".into(),
                mechanism: CURVE,
                names: None,
            },
            Change::Claim {
                domain: "d".into(),
                mechanism: CURVE,
                owner: Owner::Hand,
            },
        ];
        for change in hand_only {
            let name = format!("{change:?}");
            assert_eq!(
                policy.apply(watch, change).unwrap_err(),
                PolicyError::HandOnly,
                "{name}"
            );
        }
        // ... and nothing in a domain they do not own.
        let elsewhere = Change::curve_keys("other", keys(&[key(1)]));
        assert_eq!(
            policy.apply(watch, elsewhere).unwrap_err(),
            PolicyError::Superseded
        );
    }

    #[test]
    fn a_removal_revokes_whatever_the_setting() {
        let provider = Provider::blocking(|_: &str, _: &CurvePublicKey| Ok(CurveVerdict::admit()));
        let settings = [
            CurvePolicy::AllowAny,
            CurvePolicy::Provider(provider),
            CurvePolicy::Keys(std::sync::Arc::new(keys(&[key(1)]))),
        ];
        for setting in settings {
            for (configured, asked) in [("d", "d"), ("*", "d"), ("*", "*")] {
                let mut policy = Policy::default();
                let name = format!("{setting:?} in {configured:?}, removed in {asked:?}");
                policy.configure_curve(configured, setting.clone()).unwrap();
                assert_eq!(curve(&policy, "d", key(1)), StatusCode::Ok, "{name}");
                let removed = policy.remove_curve_keys(asked, [&key(1)]).unwrap();
                assert_eq!(removed.installed + removed.revoked, 1, "{name}");
                assert_eq!(curve(&policy, "d", key(1)), StatusCode::Denied, "{name}");
                assert_eq!(
                    curve(&policy, "d", key(2)) == StatusCode::Ok,
                    !matches!(setting, CurvePolicy::Keys(_)),
                    "{name}"
                );
            }
        }
        // A removal in "*" does not reach a domain with a setting of its own.
        let mut policy = Policy::default();
        policy.configure_curve("*", CurvePolicy::AllowAny).unwrap();
        policy
            .configure_curve("own", CurvePolicy::AllowAny)
            .unwrap();
        policy.remove_curve_keys("*", [&key(1)]).unwrap();
        assert_eq!(curve(&policy, "fallback", key(1)), StatusCode::Denied);
        assert_eq!(curve(&policy, "own", key(1)), StatusCode::Ok);
    }

    #[test]
    fn a_user_removal_revokes_in_clear_text_and_hashed_tables_and_the_fallback() {
        for domain in ["d", "*"] {
            let mut policy = Policy::default();
            let table = PasswordTable::new([("alice", "pw"), ("bob", "pw")]);
            policy.configure_plain(domain, table).unwrap();
            assert_eq!(plain(&policy, "d", "alice", "pw"), StatusCode::Ok);
            let removed = policy.remove_plain_users("d", [&b"alice"[..]]).unwrap();
            let own = domain == "d";
            assert_eq!(
                (removed.installed, removed.revoked),
                (usize::from(own), usize::from(!own))
            );
            assert_eq!(plain(&policy, "d", "alice", "pw"), StatusCode::Denied);
            assert_eq!(plain(&policy, "d", "bob", "pw"), StatusCode::Ok);
        }
        let mut policy = Policy::default();
        let hash = crate::policy::HashedPassword::hash(b"pw").unwrap();
        policy
            .upsert_hashed_users("d", [(b"alice".to_vec(), hash)])
            .unwrap();
        assert_eq!(plain(&policy, "d", "alice", "pw"), StatusCode::Ok);
        policy.remove_plain_users("d", [&b"alice"[..]]).unwrap();
        assert_eq!(plain(&policy, "d", "alice", "pw"), StatusCode::Denied);
    }

    #[test]
    fn naming_a_key_by_hand_on_a_hand_owned_domain_readmits_it_and_lifting_works() {
        let mut policy = Policy::default();
        policy.configure_curve("d", CurvePolicy::AllowAny).unwrap();
        policy.remove_curve_keys("d", [&key(1), &key(2)]).unwrap();
        assert_eq!(policy.revocations().len(), 1);
        // Replacing the setting without naming the keys keeps them revoked.
        policy.configure_curve("d", CurvePolicy::AllowAny).unwrap();
        assert_eq!(curve(&policy, "d", key(1)), StatusCode::Denied);
        policy
            .upsert_curve_keys("d", [CurveEntry::new(key(1))])
            .unwrap();
        assert_eq!(curve(&policy, "d", key(1)), StatusCode::Ok);
        let lift = Change::LiftRevocations {
            domain: "d".into(),
            mechanism: CURVE,
            names: None,
        };
        let epoch = policy.epoch();
        assert_eq!(
            policy.apply(Origin::HAND, lift).unwrap().outcome,
            Outcome::Count(1)
        );
        assert_eq!(policy.epoch(), epoch, "a lift only widens: no epoch bump");
        assert!(policy.revocations().is_empty());
    }

    #[test]
    fn every_narrowing_bumps_the_epoch_and_says_what_it_narrowed() {
        let (mut policy, _) = owned_by("store");
        let cases = [
            Change::RemoveCurveKeys {
                domain: "d".into(),
                keys: vec![key(1)],
            },
            Change::RemovePlainUsers {
                domain: "d".into(),
                users: vec![b"x".to_vec()],
            },
            Change::AddAddresses {
                scope: Scope::Global,
                kind: crate::policy::ListKind::Deny,
                patterns: vec!["10.0.0.1".parse().unwrap()],
            },
            Change::SetCurveUserId(None),
            Change::ConfigureGssapi {
                domain: "g".into(),
                gssapi: GssapiPolicy::AnyPrincipal,
            },
        ];
        for change in cases {
            let name = format!("{change:?}");
            let epoch = policy.epoch();
            let applied = policy.apply(Origin::HAND, change).unwrap();
            assert!(!applied.narrowed.is_empty(), "{name}");
            assert_eq!(policy.epoch(), epoch + 1, "{name}");
        }
        // Unwatch by hand does not detach a store.
        let release = Change::Release {
            domain: "d".into(),
            mechanism: CURVE,
        };
        let applied = policy.apply(Origin::HAND, release).unwrap();
        assert_eq!(applied.outcome, Outcome::Existed(false));
        assert!(matches!(policy.owner("d", CURVE), Owner::Store { .. }));
        assert_eq!(policy.owner("d", PLAIN), Owner::Hand);
    }

    #[test]
    fn removed_reads_as_a_sentence() {
        let removed = Removed {
            installed: 1,
            revoked: 2,
        };
        assert_eq!(
            removed.to_string(),
            "removed 1 installed entry, recorded 2 local revocations"
        );
    }
}
