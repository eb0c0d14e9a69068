//! Deltas: one key added or removed in a domain's key set costs O(1), however many keys the
//! domain has, and bumps the epoch like any other change (a removal is a narrowing: an
//! answer of user code computed before it is never sent).

use std::time::SystemTime;

use super::{Change, Origin, Policy, PolicyError, Removed};
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

impl From<CurvePublicKey> for CurveEntry {
    /// The key alone: no metadata, user id or expiry.
    fn from(key: CurvePublicKey) -> Self {
        CurveEntry::new(key)
    }
}

impl Policy {
    /// Adds keys to a domain's key set by hand, replacing the entries of keys already there.
    pub fn upsert_curve_keys(
        &mut self,
        domain: &str,
        entries: impl IntoIterator<Item = CurveEntry>,
    ) -> Result<usize, PolicyError> {
        let change = Change::AddCurveKeys {
            domain: domain.to_owned(),
            entries: entries.into_iter().collect(),
        };
        Ok(self.apply(Origin::HAND, change)?.outcome.count())
    }

    /// Removes keys from a domain by hand: installed entries are removed, and a key the
    /// domain's setting would still admit (allow-any, a provider, the `"*"` fallback) or an
    /// owner could bring back is revoked (see [`Removed`]). Always bumps the epoch.
    pub fn remove_curve_keys<'k>(
        &mut self,
        domain: &str,
        keys: impl IntoIterator<Item = &'k CurvePublicKey>,
    ) -> Result<Removed, PolicyError> {
        let change = Change::RemoveCurveKeys {
            domain: domain.to_owned(),
            keys: keys.into_iter().copied().collect(),
        };
        Ok(self.apply(Origin::HAND, change)?.outcome.removed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{CurvePolicy, Decision};
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
        let removed = policy.remove_curve_keys("fleet", [&a, &a]).unwrap();
        assert_eq!((removed.installed, removed.revoked), (1, 0));
        assert!(policy.epoch() > before);
        assert_eq!(status(&policy, &a).0, StatusCode::Denied);
        let mut expired = CurveEntry::new(b);
        expired.expires = Some(SystemTime::now() - std::time::Duration::from_secs(1));
        policy.upsert_curve_keys("fleet", [expired]).unwrap();
        assert_eq!(status(&policy, &b).0, StatusCode::Denied);
        let removed = policy.remove_curve_keys("elsewhere", [&a]).unwrap();
        assert_eq!((removed.installed, removed.revoked), (0, 1));
    }
}
