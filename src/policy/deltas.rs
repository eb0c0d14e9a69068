//! Deltas: one key added or removed in a domain's key set costs O(1), however many keys the
//! domain has, and bumps the epoch like any other change (a removal is a narrowing: an
//! answer of user code computed before it is never sent).

use std::sync::Arc;
use std::time::SystemTime;

use super::{check_domain, CurvePolicy, Policy, PolicyError};
use crate::certs::CertStore;
use crate::keys::CurvePublicKey;
use crate::zap::Metadata;

/// One CURVE key as a credential store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurveEntry {
    /// The client's public key.
    pub key: CurvePublicKey,
    /// Metadata for its `200` reply.
    pub metadata: Metadata,
    /// The `User-Id` for its `200` reply (`None`: the key's Z85 text or the mapping's).
    pub user_id: Option<String>,
    /// Refused from this instant on (checked as each handshake is decided).
    pub expires: Option<SystemTime>,
}

impl CurveEntry {
    /// A key with no metadata, user id or expiry.
    pub fn new(key: CurvePublicKey) -> Self {
        CurveEntry {
            key,
            metadata: Metadata::empty(),
            user_id: None,
            expires: None,
        }
    }
}

impl Policy {
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

    /// Adds keys to a domain's key set, replacing the entries of keys already there.
    pub fn upsert_curve_keys(
        &mut self,
        domain: &str,
        entries: impl IntoIterator<Item = CurveEntry>,
    ) -> Result<usize, PolicyError> {
        check_domain(domain)?;
        let store = self.key_set_mut(domain);
        let mut count = 0;
        for entry in entries {
            store.upsert(entry.key, entry.metadata, entry.user_id, entry.expires);
            count += 1;
        }
        self.changed();
        Ok(count)
    }

    /// Removes keys from a domain's key set; answers how many were there. Always bumps the
    /// epoch; a domain without a key set is left as it is.
    pub fn remove_curve_keys<'k>(
        &mut self,
        domain: &str,
        keys: impl IntoIterator<Item = &'k CurvePublicKey>,
    ) -> usize {
        self.changed();
        match self.curve.get_mut(domain) {
            Some(CurvePolicy::Keys(store)) => {
                let store = Arc::make_mut(store);
                keys.into_iter()
                    .filter(|k| store.remove(k).is_some())
                    .count()
            }
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Decision;
    use crate::zap::StatusCode;

    fn status(policy: &Policy, key: &CurvePublicKey) -> (StatusCode, String) {
        let frames: [&[u8]; 7] = [
            b"1.0",
            b"1",
            b"fleet",
            b"127.0.0.1",
            b"",
            b"CURVE",
            key.as_bytes(),
        ];
        match policy.handle(&frames) {
            Decision::Reply(r) => (r.status, r.user_id),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn deltas_add_replace_and_remove_single_keys() {
        let mut policy = Policy::default();
        let (a, b) = (
            CurvePublicKey::from_bytes([1; 32]),
            CurvePublicKey::from_bytes([2; 32]),
        );
        policy
            .configure_curve("fleet", CurvePolicy::AllowAny)
            .unwrap();
        let mut entry = CurveEntry::new(a);
        entry.user_id = Some("alice".into());
        assert_eq!(
            policy.upsert_curve_keys("fleet", [entry, CurveEntry::new(b)]),
            Ok(2)
        );
        assert_eq!(status(&policy, &a), (StatusCode::Ok, "alice".into()));
        assert_eq!(status(&policy, &b), (StatusCode::Ok, b.to_z85()));
        let before = policy.epoch();
        assert_eq!(policy.remove_curve_keys("fleet", [&a, &a]), 1);
        assert!(policy.epoch() > before);
        assert_eq!(status(&policy, &a).0, StatusCode::Denied);
        let mut expired = CurveEntry::new(b);
        expired.expires = Some(SystemTime::now() - std::time::Duration::from_secs(1));
        policy.upsert_curve_keys("fleet", [expired]).unwrap();
        assert_eq!(status(&policy, &b).0, StatusCode::Denied);
        assert_eq!(policy.remove_curve_keys("elsewhere", [&a]), 0);
    }
}
