//! Rows to credentials, sans-IO: a malformed row becomes an error that names it, never a
//! panic, never an admission, and never the failure of the read that brought it. Rows are
//! decoded one by one: a row whose identity (domain and key or username) decodes but another
//! column does not is refused by name (any earlier good version of the credential is
//! removed); a row whose identity does not decode is refused and counted.

use std::error::Error;
use std::time::{Duration, SystemTime};

use tokio_postgres::types::{FromSql, Type};

use crate::keys::CurvePublicKey;
use crate::policy::{Argon2Limits, CurveEntry, HashedPassword};
use crate::zap::Metadata;

/// One row of `curve_keys`, as read (before any check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CurveRow {
    pub(crate) domain: String,
    pub(crate) public_key: String,
    pub(crate) user_id: Option<String>,
    /// Metadata names, in order (`None`: the metadata is not a JSON object).
    pub(crate) names: Option<Vec<String>>,
    /// Metadata values, in the names' order (`None`: a JSON `null`).
    pub(crate) values: Vec<Option<String>>,
    pub(crate) enabled: bool,
    /// The expiry as PostgreSQL keeps it ([`Micros`]), if any.
    pub(crate) expires: Option<Micros>,
}

/// One row of `plain_users`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlainRow {
    pub(crate) domain: String,
    pub(crate) username: String,
    pub(crate) password_hash: String,
    pub(crate) enabled: bool,
}

/// A row refused: why, naming it; `named` when its identity decoded (so any earlier good
/// version of the credential must go).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused {
    pub(crate) why: String,
    pub(crate) named: bool,
}

/// The key a row's text names, if it is valid Z85.
pub(crate) fn key_of(text: &str) -> Option<CurvePublicKey> {
    CurvePublicKey::from_z85(text).ok()
}

/// A `timestamptz` as PostgreSQL sends it: microseconds since 2000-01-01 00:00 UTC, with
/// `i64::MAX` and `i64::MIN` for `infinity` and `-infinity`. Read raw, so that no value can
/// fail a read: what it means is [`Micros::expiry`]'s to say, row by row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Micros(pub(crate) i64);

/// PostgreSQL's epoch, in seconds after the Unix epoch.
const PG_EPOCH: u64 = 946_684_800;

impl Micros {
    /// The instant it stands for: `infinity` never comes (`None`), `-infinity` is long past;
    /// `Err` for an instant this platform cannot represent.
    pub(crate) fn expiry(self) -> Result<Option<SystemTime>, ()> {
        let epoch = SystemTime::UNIX_EPOCH + Duration::from_secs(PG_EPOCH);
        match self.0 {
            i64::MAX => Ok(None),
            i64::MIN => Ok(Some(SystemTime::UNIX_EPOCH)),
            micros if micros >= 0 => epoch
                .checked_add(Duration::from_micros(micros.unsigned_abs()))
                .map(Some)
                .ok_or(()),
            micros => epoch
                .checked_sub(Duration::from_micros(micros.unsigned_abs()))
                .map(Some)
                .ok_or(()),
        }
    }
}

impl<'a> FromSql<'a> for Micros {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        let bytes: [u8; 8] = raw.try_into()?;
        Ok(Micros(i64::from_be_bytes(bytes)))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ || *ty == Type::TIMESTAMP
    }
}

impl CurveRow {
    /// The entry to install, or why the row is refused.
    pub(crate) fn entry(&self) -> Result<CurveEntry, Refused> {
        let key = CurvePublicKey::from_z85(&self.public_key).map_err(|e| Refused {
            why: format!(
                "curve_keys row ({:?}, {:?}): bad public key: {e}",
                self.domain, self.public_key
            ),
            named: false,
        })?;
        let refused = |why: String| Refused {
            why: format!("curve_keys row ({:?}, {key}): {why}", self.domain),
            named: true,
        };
        let Some(names) = &self.names else {
            return Err(refused("bad metadata: not a JSON object".into()));
        };
        let mut values = Vec::with_capacity(self.values.len());
        for (name, value) in names.iter().zip(&self.values) {
            match value {
                Some(value) => values.push(value),
                None => {
                    return Err(refused(format!(
                        "bad metadata: the value of {name:?} is not a string (JSON null)"
                    )))
                }
            }
        }
        if names.len() != values.len() {
            return Err(refused("bad metadata: names and values differ".into()));
        }
        let metadata = Metadata::from_pairs(names.iter().zip(values))
            .map_err(|e| refused(format!("bad metadata: {e}")))?;
        let expires = match self.expires.map(Micros::expiry) {
            None => None,
            Some(Ok(expires)) => expires,
            Some(Err(())) => return Err(refused("expiry out of range".into())),
        };
        Ok(CurveEntry {
            key,
            metadata,
            user_id: self.user_id.clone(),
            expires,
        })
    }
}

impl PlainRow {
    /// The hash to install, or why the row is refused (too costly hashes are never run).
    pub(crate) fn hash(&self, limits: &Argon2Limits) -> Result<HashedPassword, Refused> {
        HashedPassword::parse(&self.password_hash, limits).map_err(|e| Refused {
            why: format!(
                "plain_users row ({:?}, {:?}): {e}",
                self.domain, self.username
            ),
            named: true,
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
            names: Some(vec!["Role".into()]),
            values: vec![Some("ops".into())],
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
        assert!(error.why.contains("bad public key"), "{error:?}");
        assert!(!error.named, "no key to remove");
        let mut bad_meta = curve(&good);
        bad_meta.names = Some(vec!["Identity".into()]);
        let error = bad_meta.entry().unwrap_err();
        assert!(error.why.contains("bad metadata") && error.named);
        let row = PlainRow {
            domain: "d".into(),
            username: "alice".into(),
            password_hash: "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
            enabled: true,
        };
        let error = row.hash(&Argon2Limits::default()).unwrap_err();
        assert!(
            error.why.contains("alice") && error.why.contains("exceed") && error.named,
            "{error:?}"
        );
    }

    #[test]
    fn a_null_metadata_value_or_metadata_that_is_no_object_refuses_the_row_by_name() {
        let good = CurvePublicKey::from_bytes([7; 32]).to_z85();
        let mut null = curve(&good);
        null.values = vec![None];
        let error = null.entry().unwrap_err();
        assert!(error.named && error.why.contains("\"Role\""), "{error:?}");
        assert!(error.why.contains(&good), "names the key: {error:?}");
        let mut array = curve(&good);
        array.names = None;
        assert!(array.entry().unwrap_err().why.contains("not a JSON object"));
    }

    #[test]
    fn expiries_are_read_as_stored_with_infinities_and_out_of_range_refused() {
        let epoch = SystemTime::UNIX_EPOCH + Duration::from_secs(PG_EPOCH);
        assert_eq!(Micros(0).expiry(), Ok(Some(epoch)));
        assert_eq!(
            Micros(-1_000_000).expiry(),
            Ok(Some(epoch - Duration::from_secs(1)))
        );
        assert_eq!(Micros(i64::MAX).expiry(), Ok(None), "infinity: never");
        assert_eq!(
            Micros(i64::MIN).expiry(),
            Ok(Some(SystemTime::UNIX_EPOCH)),
            "-infinity: long past"
        );
        let good = CurvePublicKey::from_bytes([7; 32]).to_z85();
        let mut expiring = curve(&good);
        expiring.expires = Some(Micros(1_000_000));
        assert_eq!(
            expiring.entry().unwrap().expires,
            Some(epoch + Duration::from_secs(1))
        );
    }
}
