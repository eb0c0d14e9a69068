//! A read-only picture of the policy in force, with passwords redacted: what pyzmq exposes as
//! `allow_any`, `certs`, `passwords` and `credentials_providers`, so an operator can see what
//! was configured and take it back.

use std::collections::BTreeMap;

use super::{AddressRules, CurvePolicy, GssapiPolicy, IpcRules, MechanismKind, Owner, Policy};
use crate::keys::CurvePublicKey;

/// How one domain decides CURVE clients, as inspected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CurveSummary {
    /// Any key.
    AllowAny,
    /// These keys (Z85 text, sorted).
    Keys(Vec<String>),
    /// A provider (`"blocking"` or `"async"`).
    Provider(&'static str),
}

/// The policy in force. Passwords never appear: PLAIN domains list usernames only.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct PolicySnapshot {
    /// The global IP address list.
    pub addresses: AddressRules,
    /// Each domain's own IP address list (domains with IPC rules only show `Open`).
    pub domain_addresses: BTreeMap<String, AddressRules>,
    /// The global IPC allow-list, if one is in force.
    pub ipc: Option<IpcRules>,
    /// Each domain's own IPC allow-list, where one is in force.
    pub domain_ipc: BTreeMap<String, IpcRules>,
    /// PLAIN usernames per domain (passwords redacted).
    pub plain: BTreeMap<String, Vec<String>>,
    /// CURVE setting per domain.
    pub curve: BTreeMap<String, CurveSummary>,
    /// GSSAPI setting per domain.
    pub gssapi: BTreeMap<String, GssapiPolicy>,
    /// Whether a custom CURVE user-id mapping is installed.
    pub custom_curve_user_id: bool,
    /// Domains whose setting of a mechanism is owned by a load, watch or store (every other
    /// one is the hand's).
    pub owners: Vec<OwnerSummary>,
    /// Local revocations: names refused in a domain whatever its setting, until lifted.
    pub revocations: Vec<RevocationSummary>,
    /// Domains taken over by hand from a watch or store.
    pub taken_over: Vec<OwnerSummary>,
    /// Established sessions bound per domain (seen by a session socket of the context and
    /// not ended; see [`sessions`](crate::sessions)). Filled in by the authenticator: a bare
    /// `Policy` knows no sessions.
    pub sessions: BTreeMap<String, usize>,
}

/// A domain's mechanism and who owns it (or owned it, for a take-over), as inspected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct OwnerSummary {
    /// The domain.
    pub domain: String,
    /// The mechanism.
    pub mechanism: MechanismKind,
    /// The owner.
    pub owner: Owner,
}

/// The local revocations of a domain's mechanism, as inspected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RevocationSummary {
    /// The domain.
    pub domain: String,
    /// The mechanism.
    pub mechanism: MechanismKind,
    /// CURVE keys as Z85 text, or usernames (lossy UTF-8), sorted.
    pub names: Vec<String>,
}

impl Policy {
    /// The policy in force, for inspection.
    pub fn snapshot(&self) -> PolicySnapshot {
        let curve = |policy: &CurvePolicy| match policy {
            CurvePolicy::AllowAny => CurveSummary::AllowAny,
            CurvePolicy::Keys(store) => {
                let mut keys: Vec<String> = store.keys().map(|k| k.to_z85()).collect();
                keys.sort();
                CurveSummary::Keys(keys)
            }
            CurvePolicy::Provider(provider) => CurveSummary::Provider(provider.kind()),
        };
        PolicySnapshot {
            addresses: self.addresses.ip().clone(),
            domain_addresses: self
                .domain_addresses
                .iter()
                .map(|(domain, filter)| (domain.clone(), filter.ip().clone()))
                .collect(),
            ipc: self.addresses.ipc().cloned(),
            domain_ipc: self
                .domain_addresses
                .iter()
                .filter_map(|(domain, filter)| Some((domain.clone(), filter.ipc()?.clone())))
                .collect(),
            plain: self
                .plain
                .iter()
                .map(|(domain, table)| (domain.clone(), table.usernames()))
                .collect(),
            curve: self
                .curve
                .iter()
                .map(|(d, p)| (d.clone(), curve(p)))
                .collect(),
            gssapi: self.gssapi.clone().into_iter().collect(),
            custom_curve_user_id: self.curve_user_id.is_some(),
            owners: (self.owners().into_iter())
                .map(|(domain, mechanism, owner)| OwnerSummary {
                    domain,
                    mechanism,
                    owner,
                })
                .collect(),
            revocations: (self.revocations().into_iter())
                .map(|(domain, mechanism, names)| RevocationSummary {
                    domain,
                    mechanism,
                    names: names.iter().map(|n| name_text(mechanism, n)).collect(),
                })
                .collect(),
            taken_over: (self.taken_over().into_iter())
                .map(|t| OwnerSummary {
                    domain: t.domain,
                    mechanism: t.mechanism,
                    owner: t.from,
                })
                .collect(),
            sessions: BTreeMap::new(),
        }
    }
}

/// A revoked name as text: a CURVE key's Z85, a username as (lossy) UTF-8.
fn name_text(mechanism: MechanismKind, name: &[u8]) -> String {
    match <[u8; 32]>::try_from(name) {
        Ok(key) if mechanism == MechanismKind::Curve => CurvePublicKey::from_bytes(key).to_z85(),
        _ => String::from_utf8_lossy(name).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::CurvePublicKey;
    use crate::policy::{ListKind, PasswordTable, Scope};
    use std::sync::Arc;

    #[test]
    fn shows_everything_configured_but_never_a_password() {
        let mut policy = Policy::default();
        policy.allow(["10.0.0.0/8".parse().unwrap()]).unwrap();
        let scope = Scope::Domain("d".into());
        policy
            .add_addresses(&scope, ListKind::Deny, ["10.1.0.0/16".parse().unwrap()])
            .unwrap();
        policy
            .configure_plain("*", PasswordTable::new([("admin", "hunter2")]))
            .unwrap();
        let key = CurvePublicKey::from_bytes([3; 32]);
        let store = [key].into_iter().collect();
        policy
            .configure_curve("files", CurvePolicy::Keys(Arc::new(store)))
            .unwrap();
        policy
            .configure_curve("open", CurvePolicy::AllowAny)
            .unwrap();
        let snapshot = policy.snapshot();
        assert!(matches!(snapshot.addresses, AddressRules::Allow(ref s) if s.len() == 1));
        assert!(snapshot.domain_addresses.contains_key("d"));
        assert_eq!(snapshot.plain["*"], ["admin"]);
        assert_eq!(
            snapshot.curve["files"],
            CurveSummary::Keys(vec![key.to_z85()])
        );
        assert_eq!(snapshot.curve["open"], CurveSummary::AllowAny);
        assert!(!format!("{snapshot:?}").contains("hunter2"));
    }
}
