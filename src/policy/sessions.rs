//! Admissions judged again: what an admitted session rests on, written into its mark when it is
//! admitted, and whether the policy in force still admits it after a narrowing.
//!
//! Both ask one question of the policy — [`Policy::grant`]: on what would this policy admit
//! this name in this domain, now — so a mark and its later judgement cannot drift apart. The
//! answer is a keyed fingerprint of everything the admission gave or rested on that the policy
//! can tell again without user code: the stored credential (a clear-text password or a PHC
//! string), the user id and the metadata. What user code decided (a provider's admission, a
//! custom user-id mapping) is never asked again; such a session ends when the setting that
//! asked it is replaced or removed, when its name is removed, or by address rules.
//!
//! Fail-closed states are not revocations: a store past its deadline refuses new handshakes
//! but ends no session, so [`Policy::still_admits`] does not look at a domain's [`Trust`].
//!
//! [`Trust`]: super::Trust

use super::{for_domain, CurvePolicy, GssapiPolicy, MechanismKind, Narrowing, PlainTable};
use super::{Policy, Scope};
use crate::keys::CurvePublicKey;
use crate::zap::mark::{keyed_tag, MarkMechanism, SessionMark, FROM_PROVIDER, MAPPED_USER_ID};

/// What an admission rests on: its fingerprint and flags, as a mark carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// A keyed tag of the credential, user id and metadata.
    pub fingerprint: [u8; 16],
    /// [`FROM_PROVIDER`], [`MAPPED_USER_ID`].
    pub flags: u8,
}

fn grant(credential: &[u8], user_id: &[u8], metadata: &[u8], flags: u8) -> Grant {
    Grant {
        fingerprint: keyed_tag("grant", [credential, user_id, metadata]),
        flags,
    }
}

fn kind(mechanism: MarkMechanism) -> Option<MechanismKind> {
    match mechanism {
        MarkMechanism::Null => None,
        MarkMechanism::Plain => Some(MechanismKind::Plain),
        MarkMechanism::Curve => Some(MechanismKind::Curve),
        MarkMechanism::Gssapi => Some(MechanismKind::Gssapi),
    }
}

impl Policy {
    /// On what this policy admits `name` by `mechanism` in `domain`: `None` when it would not
    /// (address rules aside). Passwords are not checked (a session's password is not kept):
    /// the stored credential is part of the fingerprint instead, so a changed one shows.
    pub fn grant(&self, domain: &str, mechanism: MarkMechanism, name: &[u8]) -> Option<Grant> {
        let Some(kind) = kind(mechanism) else {
            return Some(grant(b"", b"anonymous", b"", 0));
        };
        match kind {
            MechanismKind::Plain => {
                let (table_domain, table) = for_domain(&self.plain, domain)?;
                if self.revoked(kind, domain, table_domain, name) {
                    return None;
                }
                match table {
                    PlainTable::Clear(table) => grant(table.password(name)?, name, b"", 0).into(),
                    PlainTable::Hashed(table) => {
                        grant(table.get(name)?.as_str().as_bytes(), name, b"", 0).into()
                    }
                }
            }
            MechanismKind::Curve => {
                let key = CurvePublicKey::from_bytes(name.try_into().ok()?);
                let (setting_domain, setting) = for_domain(&self.curve, domain)?;
                if self.revoked(kind, domain, setting_domain, name) {
                    return None;
                }
                let mapped = if self.curve_user_id.is_some() {
                    MAPPED_USER_ID
                } else {
                    0
                };
                match setting {
                    CurvePolicy::AllowAny if mapped != 0 => Some(grant(b"", b"", b"", mapped)),
                    CurvePolicy::AllowAny => Some(grant(b"", key.to_z85().as_bytes(), b"", 0)),
                    CurvePolicy::Provider(_) => Some(grant(b"", b"", b"", FROM_PROVIDER | mapped)),
                    CurvePolicy::Keys(store) => {
                        let (metadata, extra) = store.lookup(&key)?;
                        match extra.and_then(|extra| extra.user_id()) {
                            Some(user_id) => {
                                Some(grant(b"", user_id.as_bytes(), metadata.as_bytes(), 0))
                            }
                            None if mapped != 0 => {
                                Some(grant(b"", b"", metadata.as_bytes(), mapped))
                            }
                            None => {
                                Some(grant(b"", key.to_z85().as_bytes(), metadata.as_bytes(), 0))
                            }
                        }
                    }
                }
            }
            MechanismKind::Gssapi => {
                let (_, setting) = for_domain(&self.gssapi, domain)?;
                let principal = std::str::from_utf8(name).ok()?;
                match setting {
                    GssapiPolicy::AnyPrincipal => Some(grant(b"", name, b"", 0)),
                    GssapiPolicy::Principals(set) if set.contains(principal) => {
                        Some(grant(b"", name, b"", 0))
                    }
                    GssapiPolicy::Principals(_) => None,
                }
            }
        }
    }

    /// When the CURVE key `name` of `domain`'s key set expires, if it carries an expiry.
    pub fn key_expiry(&self, domain: &str, name: &[u8]) -> Option<std::time::SystemTime> {
        let key = CurvePublicKey::from_bytes(name.try_into().ok()?);
        match for_domain(&self.curve, domain)? {
            (_, CurvePolicy::Keys(store)) => store.lookup(&key)?.1?.expires(),
            _ => None,
        }
    }

    /// Whether the peer's address passes the global rules and `domain`'s rules.
    pub fn admits_address(&self, domain: &str, address: &str) -> bool {
        self.address_refusal(domain, address).is_none()
    }

    /// Whether the session `mark` describes is still admitted after `narrowing` (which must
    /// [`cover`](covers) it): its address passes, its name is still admitted on what it was
    /// admitted on — and, for what user code decided, the narrowing did not replace or remove
    /// the setting that asked it, nor the custom user-id mapping.
    pub fn still_admits(&self, mark: &SessionMark, narrowing: &Narrowing) -> bool {
        if !self.admits_address(&mark.domain, &mark.address) {
            return false;
        }
        let asked_user_code = match narrowing {
            Narrowing::Setting { .. } => mark.flags & FROM_PROVIDER != 0,
            Narrowing::UserIds => mark.flags & MAPPED_USER_ID != 0,
            Narrowing::Names { .. } => mark.flags & FROM_PROVIDER != 0,
            Narrowing::Addresses(_) => false,
        };
        if asked_user_code {
            return false;
        }
        self.grant(&mark.domain, mark.mechanism, &mark.name)
            == Some(Grant {
                fingerprint: mark.fingerprint,
                flags: mark.flags,
            })
    }
}

/// Whether `narrowing` may have taken away what the session of `mark` was admitted on (its
/// scope: domain, mechanism, names, addresses). Conservative: a `"*"` setting or name covers
/// every domain, since any domain without its own entry falls back to it.
pub fn covers(narrowing: &Narrowing, mark: &SessionMark) -> bool {
    let in_domain = |domain: &str| domain == mark.domain || domain == super::ANY_DOMAIN;
    match narrowing {
        Narrowing::Addresses(Scope::Global) => true,
        Narrowing::Addresses(Scope::Domain(domain)) => *domain == mark.domain,
        Narrowing::Setting { domain, mechanism } => {
            kind(mark.mechanism) == Some(*mechanism) && in_domain(domain)
        }
        Narrowing::Names {
            domain,
            mechanism,
            names,
        } => {
            kind(mark.mechanism) == Some(*mechanism)
                && in_domain(domain)
                && names.contains(&mark.name)
        }
        Narrowing::UserIds => mark.mechanism == MarkMechanism::Curve,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Change, PasswordTable};
    use std::time::SystemTime;

    fn mark_of(
        policy: &Policy,
        domain: &str,
        mechanism: MarkMechanism,
        name: &[u8],
    ) -> SessionMark {
        let grant = policy.grant(domain, mechanism, name).expect("admitted");
        SessionMark {
            serial: 1,
            domain: domain.into(),
            mechanism,
            name: name.to_vec(),
            address: "127.0.0.1".into(),
            admitted_at: SystemTime::now(),
            generation: 0,
            flags: grant.flags,
            fingerprint: grant.fingerprint,
        }
    }

    fn key_set(keys: &[CurvePublicKey]) -> CurvePolicy {
        let mut store = crate::certs::CertStore::new();
        for key in keys {
            store.insert(*key, crate::zap::Metadata::empty());
        }
        CurvePolicy::Keys(std::sync::Arc::new(store))
    }

    fn names(domain: &str, mechanism: MechanismKind, name: &[u8]) -> Narrowing {
        Narrowing::Names {
            domain: domain.into(),
            mechanism,
            names: vec![name.to_vec()],
        }
    }

    #[test]
    fn a_changed_password_ends_a_plain_session_an_unchanged_one_does_not() {
        let mut policy = Policy::default();
        let table = PasswordTable::new([("alice", "pw"), ("bob", "pw")]);
        policy.configure_plain("global", table).unwrap();
        let alice = mark_of(&policy, "global", MarkMechanism::Plain, b"alice");
        let bob = mark_of(&policy, "global", MarkMechanism::Plain, b"bob");
        let table = PasswordTable::new([("alice", "new"), ("bob", "pw")]);
        policy.configure_plain("global", table).unwrap();
        let setting = Narrowing::Setting {
            domain: "global".into(),
            mechanism: MechanismKind::Plain,
        };
        assert!(covers(&setting, &alice) && covers(&setting, &bob));
        assert!(!policy.still_admits(&alice, &setting));
        assert!(policy.still_admits(&bob, &setting));
    }

    #[test]
    fn a_removed_or_revoked_key_ends_its_session_only() {
        let mut policy = Policy::default();
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let keys = [a, b].map(CurvePublicKey::from_bytes);
        policy.configure_curve("global", key_set(&keys)).unwrap();
        let mark_a = mark_of(&policy, "global", MarkMechanism::Curve, &a);
        let mark_b = mark_of(&policy, "global", MarkMechanism::Curve, &b);
        let change = Change::RemoveCurveKeys {
            domain: "global".into(),
            keys: vec![keys[0]],
        };
        policy.apply(crate::policy::Origin::HAND, change).unwrap();
        let removal = names("global", MechanismKind::Curve, &a);
        assert!(covers(&removal, &mark_a) && !covers(&removal, &mark_b));
        assert!(!policy.still_admits(&mark_a, &removal));
        assert!(policy.still_admits(&mark_b, &removal));
    }

    #[test]
    fn a_denied_address_ends_sessions_from_it() {
        let mut policy = Policy::default();
        policy
            .configure_curve("global", CurvePolicy::AllowAny)
            .unwrap();
        let mark = mark_of(&policy, "global", MarkMechanism::Curve, &[3; 32]);
        policy.deny(["127.0.0.1".parse().unwrap()]).unwrap();
        let narrowing = Narrowing::Addresses(Scope::Global);
        assert!(covers(&narrowing, &mark));
        assert!(!policy.still_admits(&mark, &narrowing));
    }

    #[test]
    fn what_a_provider_decided_ends_with_its_setting_and_is_never_asked_again() {
        use crate::provider::Provider;
        let mut policy = Policy::default();
        let provider = Provider::from_fn(|_: &str, _: &CurvePublicKey| Ok(true.into()));
        policy
            .configure_curve("db", CurvePolicy::Provider(provider.clone()))
            .unwrap();
        let mark = mark_of(&policy, "db", MarkMechanism::Curve, &[4; 32]);
        assert_eq!(mark.flags, FROM_PROVIDER);
        let other_key = names("db", MechanismKind::Curve, &[5; 32]);
        assert!(!covers(&other_key, &mark));
        policy.deny(["10.0.0.1".parse().unwrap()]).unwrap();
        let addresses = Narrowing::Addresses(Scope::Global);
        assert!(policy.still_admits(&mark, &addresses));
        policy
            .configure_curve("db", CurvePolicy::Provider(provider))
            .unwrap();
        let setting = Narrowing::Setting {
            domain: "db".into(),
            mechanism: MechanismKind::Curve,
        };
        assert!(!policy.still_admits(&mark, &setting));
    }

    #[test]
    fn changed_metadata_or_user_id_of_a_kept_key_ends_its_session() {
        use crate::policy::CurveEntry;
        let mut policy = Policy::default();
        let key = CurvePublicKey::from_bytes([6; 32]);
        policy.configure_curve("global", key_set(&[key])).unwrap();
        let mark = mark_of(&policy, "global", MarkMechanism::Curve, key.as_bytes());
        let mut entry = CurveEntry::new(key);
        entry.user_id = Some("renamed".into());
        let change = Change::AddCurveKeys {
            domain: "global".into(),
            entries: vec![entry],
        };
        policy.apply(crate::policy::Origin::HAND, change).unwrap();
        let narrowing = names("global", MechanismKind::Curve, key.as_bytes());
        assert!(!policy.still_admits(&mark, &narrowing));
    }
}
