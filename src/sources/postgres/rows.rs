//! Rows to credentials, sans-IO: a malformed row becomes an error that names it, never a
//! panic and never an admission.

use std::time::SystemTime;

use crate::keys::CurvePublicKey;
use crate::policy::{Argon2Limits, CurveEntry, HashedPassword};
use crate::zap::Metadata;

/// One row of `curve_keys`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CurveRow {
    pub(crate) domain: String,
    pub(crate) public_key: String,
    pub(crate) user_id: Option<String>,
    /// Metadata names and values, in the same order.
    pub(crate) names: Vec<String>,
    pub(crate) values: Vec<String>,
    pub(crate) enabled: bool,
    pub(crate) expires: Option<SystemTime>,
}

/// One row of `plain_users`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlainRow {
    pub(crate) domain: String,
    pub(crate) username: String,
    pub(crate) password_hash: String,
    pub(crate) enabled: bool,
}

/// The key a row's text names, if it is valid Z85.
pub(crate) fn key_of(text: &str) -> Option<CurvePublicKey> {
    CurvePublicKey::from_z85(text).ok()
}

impl CurveRow {
    /// The entry to install, or why the row is refused.
    pub(crate) fn entry(&self) -> Result<CurveEntry, String> {
        let key = CurvePublicKey::from_z85(&self.public_key).map_err(|e| {
            format!(
                "curve_keys row ({:?}, {:?}): bad public key: {e}",
                self.domain, self.public_key
            )
        })?;
        let metadata = Metadata::from_pairs(self.names.iter().zip(&self.values)).map_err(|e| {
            format!(
                "curve_keys row ({:?}, {key}): bad metadata: {e}",
                self.domain
            )
        })?;
        Ok(CurveEntry {
            key,
            metadata,
            user_id: self.user_id.clone(),
            expires: self.expires,
        })
    }
}

impl PlainRow {
    /// The hash to install, or why the row is refused (too costly hashes are never run).
    pub(crate) fn hash(&self, limits: &Argon2Limits) -> Result<HashedPassword, String> {
        HashedPassword::parse(&self.password_hash, limits).map_err(|e| {
            format!(
                "plain_users row ({:?}, {:?}): {e}",
                self.domain, self.username
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(key: &str) -> CurveRow {
        CurveRow {
            domain: "d".into(),
            public_key: key.into(),
            user_id: Some("u".into()),
            names: vec!["Role".into()],
            values: vec!["ops".into()],
            enabled: true,
            expires: None,
        }
    }

    #[test]
    fn malformed_rows_are_errors_that_name_them() {
        let good = CurvePublicKey::from_bytes([7; 32]).to_z85();
        let entry = curve(&good).entry().unwrap();
        assert_eq!(entry.user_id.as_deref(), Some("u"));
        assert!(!entry.metadata.is_empty());
        let error = curve(&"~".repeat(40)).entry().unwrap_err();
        assert!(error.contains("bad public key"), "{error}");
        let mut bad_meta = curve(&good);
        bad_meta.names = vec!["Identity".into()];
        assert!(bad_meta.entry().unwrap_err().contains("bad metadata"));
        let row = PlainRow {
            domain: "d".into(),
            username: "alice".into(),
            password_hash: "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
            enabled: true,
        };
        let error = row.hash(&Argon2Limits::default()).unwrap_err();
        assert!(
            error.contains("alice") && error.contains("exceed"),
            "{error}"
        );
    }
}
