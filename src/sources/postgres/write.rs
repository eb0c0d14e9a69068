//! Writes to the store, typed: every change `zapctl db` makes, each in one transaction that
//! answers the change's [`Position`] — the store's uuid and the sequence number the store's
//! own trigger function gave the change (read from the transaction-local setting
//! `<schema>.last_change` and `settings.store_id`, so a writer needs no right on the change
//! log). Wait for it with [`SourceHandle::synced`](super::SourceHandle::synced): when that
//! answers, this authenticator decides with the change in force.
//!
//! What a write that would change nothing does:
//! - [`Store::add_key`] of a key the domain already has: [`WriteError::AlreadyThere`] (use
//!   [`Store::enable_key`], or [`Store::remove_key`] first); nothing is written.
//! - [`Store::add_user`] of a user the domain already has sets the user's new password (and
//!   leaves it enabled or disabled as it was).
//! - [`Store::disable_key`], [`Store::enable_key`], [`Store::disable_user`],
//!   [`Store::enable_user`] of a credential already in that state write the row again: the
//!   change is logged and has a position of its own, which covers the state the credential
//!   is in (so waiting for it is always right, with several writers too).
//! - Disabling, enabling or removing a credential the domain does not have:
//!   [`WriteError::NotFound`]; nothing is written.
//!
//! A write the store did not log (a store of schema version 1, or its triggers disabled) is
//! rolled back and refused ([`WriteError::Unmigrated`], [`WriteError::NotLogged`]): no change
//! is ever committed that followers would not hear of.
//!
//! The roles: the store's **owner** runs [`Store::migrate`], [`Store::prune`] and the grants;
//! **writers** ([`Store::grant_writer`]) make these writes; **followers**
//! ([`Store::grant_follower`]) read. See the README's "Many servers".

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Transaction};

use super::Store;
use crate::keys::CurvePublicKey;
use crate::policy::{HashError, HashedPassword};
use crate::zap::{Metadata, MetadataError};

/// A store's identity: the uuid its migration gave it (`settings.store_id`). A store dropped
/// and migrated again is another store, with another uuid.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreUuid(u128);

impl StoreUuid {
    /// The uuid with these 128 bits.
    pub const fn from_u128(bits: u128) -> Self {
        StoreUuid(bits)
    }

    /// Its 128 bits.
    pub const fn as_u128(self) -> u128 {
        self.0
    }
}

impl fmt::Display for StoreUuid {
    /// The usual form: `8-4-4-4-12` lower-case hexadecimal digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            b >> 96,
            (b >> 80) & 0xffff,
            (b >> 64) & 0xffff,
            (b >> 48) & 0xffff,
            b & 0xffff_ffff_ffff
        )
    }
}

impl fmt::Debug for StoreUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreUuid({self})")
    }
}

/// Text that is not a uuid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a uuid (8-4-4-4-12 hexadecimal digits)")]
pub struct BadUuid(pub String);

impl FromStr for StoreUuid {
    type Err = BadUuid;

    /// The usual form (as PostgreSQL prints a `uuid`), or the 32 digits without hyphens.
    fn from_str(text: &str) -> Result<Self, BadUuid> {
        let bad = || BadUuid(text.to_owned());
        let groups: Vec<&str> = text.split('-').collect();
        let shaped = match groups.as_slice() {
            [one] => one.len() == 32,
            [a, b, c, d, e] => [a.len(), b.len(), c.len(), d.len(), e.len()] == [8, 4, 4, 4, 12],
            _ => false,
        };
        let digits: String = groups.concat();
        if !shaped || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        u128::from_str_radix(&digits, 16)
            .map(StoreUuid)
            .map_err(|_| bad())
    }
}

/// Where a change lies: in which store, at which sequence number of its change log. A
/// follower of that store that applied a position at or beyond `seq` has the change in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Position {
    /// The store (its uuid).
    pub store: StoreUuid,
    /// The change's sequence number in the store's change log.
    pub seq: i64,
}

impl fmt::Display for Position {
    /// `store <uuid> seq <n>`, as `zapctl db` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "store {} seq {}", self.store, self.seq)
    }
}

/// Which credential a write named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A CURVE public key.
    Key(CurvePublicKey),
    /// A PLAIN username.
    User(String),
}

impl fmt::Display for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Key(key) => write!(f, "key {key}"),
            Credential::User(name) => write!(f, "user {name:?}"),
        }
    }
}

/// Why a write to the store was refused. Nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// An empty password: refused, never stored (not even hashed).
    #[error("an empty password is refused")]
    EmptyPassword,
    /// An empty username.
    #[error("an empty username is refused")]
    EmptyUsername,
    /// The password could not be hashed.
    #[error("cannot hash the password: {0}")]
    Hash(#[from] HashError),
    /// Metadata libzmq cannot carry (a reserved or malformed name, a name twice, too large).
    #[error("metadata: {0}")]
    Metadata(#[from] MetadataError),
    /// Disabling, enabling or removing a credential the domain does not have.
    #[error("no {credential} in domain {domain:?}")]
    NotFound {
        /// The key or user.
        credential: Credential,
        /// The domain.
        domain: String,
    },
    /// Adding a key the domain already has.
    #[error("{credential} is already there in domain {domain:?}")]
    AlreadyThere {
        /// The key.
        credential: Credential,
        /// The domain.
        domain: String,
    },
    /// There is no store in this schema (no such schema or table): a misspelled schema, or a
    /// store never migrated.
    #[error("no credential store in schema {schema}: run `zapctl db migrate --schema {schema}`")]
    NoStore {
        /// The schema.
        schema: String,
    },
    /// The store is of schema version 1: it has no uuid and its log does not hand writers
    /// their position. Run `zapctl db migrate` (followers of version 1 keep working).
    #[error(
        "the store in schema {schema} is of an older version: run `zapctl db migrate --schema \
         {schema}`"
    )]
    Unmigrated {
        /// The schema.
        schema: String,
    },
    /// The store's trigger did not log the change (its triggers are disabled, or it was
    /// migrated by hand): the write was rolled back, since no follower would have heard of it.
    #[error(
        "the store in schema {schema} did not log the change (are its triggers disabled?); \
         nothing was written"
    )]
    NotLogged {
        /// The schema.
        schema: String,
    },
    /// A role that does not exist (grants name an existing role).
    #[error("there is no role {0:?}")]
    NoSuchRole(String),
    /// The database refused (a missing right says `permission denied`: see
    /// [`Store::grant_writer`]) or the connection failed.
    #[error("PostgreSQL: {}", cause(.0))]
    Postgres(#[source] tokio_postgres::Error),
}

/// The server's own message (with its detail) rather than "db error".
fn cause(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_owned(),
        },
        None => error.to_string(),
    }
}

/// A CURVE key to add, with what servers see when it is admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    /// The public key.
    pub key: CurvePublicKey,
    /// The User-Id servers see; `None`: the key's Z85 text.
    pub user_id: Option<String>,
    /// ZMTP metadata for the `200` reply, `(name, value)`; checked as
    /// [`Metadata::from_pairs`] checks it.
    pub metadata: Vec<(String, String)>,
    /// Refused from this instant on.
    pub expires: Option<SystemTime>,
}

impl NewKey {
    /// `key`, with no user id, metadata or expiry.
    pub fn new(key: CurvePublicKey) -> Self {
        NewKey {
            key,
            user_id: None,
            metadata: Vec::new(),
            expires: None,
        }
    }

    /// A certificate's public key and metadata.
    pub fn from_certificate(certificate: &crate::certs::Certificate) -> Self {
        NewKey {
            metadata: certificate.metadata.clone(),
            ..NewKey::new(certificate.public_key)
        }
    }

    /// Sets the User-Id servers see.
    pub fn user_id(self, user_id: impl Into<String>) -> Self {
        NewKey {
            user_id: Some(user_id.into()),
            ..self
        }
    }

    /// Sets one metadata property: the value of one of the same name (ASCII
    /// case-insensitive, as ZMTP compares them; its spelling is kept, as servers look it up
    /// by it), else a new property.
    pub fn meta(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let (name, value) = (name.into(), value.into());
        match (self.metadata.iter_mut()).find(|(n, _)| n.eq_ignore_ascii_case(&name)) {
            Some((_, old)) => *old = value,
            None => self.metadata.push((name, value)),
        }
        self
    }

    /// Refuses the key from `at` on.
    pub fn expires(self, at: SystemTime) -> Self {
        NewKey {
            expires: Some(at),
            ..self
        }
    }
}

/// What [`Store::prune`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// The store.
    pub store: StoreUuid,
    /// Change-log rows deleted.
    pub deleted: i64,
    /// The pruning mark now: a follower that applied less reads a snapshot.
    pub mark: i64,
}

/// Enable or disable.
const SET_KEY: &str =
    "UPDATE {schema}.curve_keys SET enabled = $3 WHERE domain = $1 AND public_key = $2";
const REMOVE_KEY: &str = "DELETE FROM {schema}.curve_keys WHERE domain = $1 AND public_key = $2";
const SET_USER: &str =
    "UPDATE {schema}.plain_users SET enabled = $3 WHERE domain = $1 AND username = $2";
const REMOVE_USER: &str = "DELETE FROM {schema}.plain_users WHERE domain = $1 AND username = $2";

impl Store {
    /// Adds a CURVE key to `domain`; [`WriteError::AlreadyThere`] if the domain has it.
    pub async fn add_key(
        &self,
        client: &mut Client,
        domain: &str,
        key: &NewKey,
    ) -> Result<Position, WriteError> {
        Metadata::from_pairs(key.metadata.iter().map(|(n, v)| (n, v)))?;
        let names: Vec<&str> = key.metadata.iter().map(|(n, _)| n.as_str()).collect();
        let values: Vec<&str> = key.metadata.iter().map(|(_, v)| v.as_str()).collect();
        let sql = self.sql(
            "INSERT INTO {schema}.curve_keys (domain, public_key, user_id, metadata, expires_at)
             VALUES ($1, $2, $3, jsonb_object($4::text[], $5::text[]), $6)
             ON CONFLICT (domain, public_key) DO NOTHING",
        );
        let z85 = key.key.to_z85();
        let params: [&(dyn ToSql + Sync); 6] =
            [&domain, &z85, &key.user_id, &names, &values, &key.expires];
        let credential = Credential::Key(key.key);
        (self.write(client, domain, credential, true, &sql, &params)).await
    }

    /// Refuses a key without forgetting it (see the module's notes on a key already disabled).
    pub async fn disable_key(
        &self,
        client: &mut Client,
        domain: &str,
        key: &CurvePublicKey,
    ) -> Result<Position, WriteError> {
        self.set_key(client, domain, key, Some(false)).await
    }

    /// Admits a disabled key again.
    pub async fn enable_key(
        &self,
        client: &mut Client,
        domain: &str,
        key: &CurvePublicKey,
    ) -> Result<Position, WriteError> {
        self.set_key(client, domain, key, Some(true)).await
    }

    /// Forgets a key.
    pub async fn remove_key(
        &self,
        client: &mut Client,
        domain: &str,
        key: &CurvePublicKey,
    ) -> Result<Position, WriteError> {
        self.set_key(client, domain, key, None).await
    }

    async fn set_key(
        &self,
        client: &mut Client,
        domain: &str,
        key: &CurvePublicKey,
        enabled: Option<bool>,
    ) -> Result<Position, WriteError> {
        let z85 = key.to_z85();
        let credential = Credential::Key(*key);
        match enabled {
            Some(enabled) => {
                let params: [&(dyn ToSql + Sync); 3] = [&domain, &z85, &enabled];
                let sql = self.sql(SET_KEY);
                (self.write(client, domain, credential, false, &sql, &params)).await
            }
            None => {
                let params: [&(dyn ToSql + Sync); 2] = [&domain, &z85];
                let sql = self.sql(REMOVE_KEY);
                (self.write(client, domain, credential, false, &sql, &params)).await
            }
        }
    }

    /// Adds a PLAIN user to `domain`, or sets the user's new password (leaving it enabled or
    /// disabled as it was); the password is stored as an argon2id hash
    /// ([`HashedPassword::hash`], computed on a blocking thread), never as it is. An empty
    /// password is refused ([`WriteError::EmptyPassword`]).
    pub async fn add_user(
        &self,
        client: &mut Client,
        domain: &str,
        username: &str,
        password: &[u8],
    ) -> Result<Position, WriteError> {
        if password.is_empty() {
            return Err(WriteError::EmptyPassword);
        }
        if username.is_empty() {
            return Err(WriteError::EmptyUsername);
        }
        let password = password.to_vec();
        let hashing = tokio::task::spawn_blocking(move || HashedPassword::hash(&password));
        let hash = hashing
            .await
            .map_err(|e| HashError::Malformed(format!("the hashing thread failed: {e}")))??;
        self.add_user_hash(client, domain, username, &hash).await
    }

    /// [`add_user`](Self::add_user) with a hash made beforehand.
    pub async fn add_user_hash(
        &self,
        client: &mut Client,
        domain: &str,
        username: &str,
        hash: &HashedPassword,
    ) -> Result<Position, WriteError> {
        if username.is_empty() {
            return Err(WriteError::EmptyUsername);
        }
        let sql = self.sql(
            "INSERT INTO {schema}.plain_users (domain, username, password_hash)
             VALUES ($1, $2, $3)
             ON CONFLICT (domain, username) DO UPDATE SET password_hash = EXCLUDED.password_hash",
        );
        let params: [&(dyn ToSql + Sync); 3] = [&domain, &username, &hash.as_str()];
        let credential = Credential::User(username.to_owned());
        (self.write(client, domain, credential, false, &sql, &params)).await
    }

    /// Refuses a user without forgetting it.
    pub async fn disable_user(
        &self,
        client: &mut Client,
        domain: &str,
        username: &str,
    ) -> Result<Position, WriteError> {
        self.set_user(client, domain, username, Some(false)).await
    }

    /// Admits a disabled user again.
    pub async fn enable_user(
        &self,
        client: &mut Client,
        domain: &str,
        username: &str,
    ) -> Result<Position, WriteError> {
        self.set_user(client, domain, username, Some(true)).await
    }

    /// Forgets a user.
    pub async fn remove_user(
        &self,
        client: &mut Client,
        domain: &str,
        username: &str,
    ) -> Result<Position, WriteError> {
        self.set_user(client, domain, username, None).await
    }

    async fn set_user(
        &self,
        client: &mut Client,
        domain: &str,
        username: &str,
        enabled: Option<bool>,
    ) -> Result<Position, WriteError> {
        let credential = Credential::User(username.to_owned());
        match enabled {
            Some(enabled) => {
                let params: [&(dyn ToSql + Sync); 3] = [&domain, &username, &enabled];
                let sql = self.sql(SET_USER);
                (self.write(client, domain, credential, false, &sql, &params)).await
            }
            None => {
                let params: [&(dyn ToSql + Sync); 2] = [&domain, &username];
                let sql = self.sql(REMOVE_USER);
                (self.write(client, domain, credential, false, &sql, &params)).await
            }
        }
    }

    /// One write in one transaction: `sql` changes at most one row; none is
    /// [`WriteError::AlreadyThere`] for an insert, else [`WriteError::NotFound`], and nothing
    /// is committed.
    async fn write(
        &self,
        client: &mut Client,
        domain: &str,
        credential: Credential,
        insert: bool,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Position, WriteError> {
        self.transaction(client, async |tx| {
            let changed = tx.execute(sql, params).await.map_err(|e| self.failed(e))?;
            if changed == 0 {
                let domain = domain.to_owned();
                return Err(if insert {
                    WriteError::AlreadyThere { credential, domain }
                } else {
                    WriteError::NotFound { credential, domain }
                });
            }
            self.position(tx).await
        })
        .await
    }

    /// Runs `work` in a transaction: committed if it succeeds, else rolled back before the
    /// error is answered (not left to the transaction's drop, which only queues the rollback:
    /// its locks would outlive the call until the client is next used).
    async fn transaction<T>(
        &self,
        client: &mut Client,
        work: impl AsyncFnOnce(&Transaction<'_>) -> Result<T, WriteError>,
    ) -> Result<T, WriteError> {
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        match work(&tx).await {
            Ok(value) => {
                tx.commit().await.map_err(|e| self.failed(e))?;
                Ok(value)
            }
            Err(error) => {
                let _ = tx.rollback().await;
                Err(error)
            }
        }
    }

    /// The position of the transaction's last change: the store's trigger function left it
    /// in `<schema>.last_change`.
    async fn position(&self, tx: &Transaction<'_>) -> Result<Position, WriteError> {
        let sql = self.sql(
            "SELECT current_setting('{schema}.last_change', true), store_id::text
             FROM {schema}.settings",
        );
        let row = tx.query_opt(&sql, &[]).await.map_err(|e| self.failed(e))?;
        let not_logged = || WriteError::NotLogged {
            schema: self.schema().to_owned(),
        };
        let row = row.ok_or_else(not_logged)?;
        // Unset in this transaction: NULL, or '' once set in an earlier one of the session.
        let seq = (row.get::<_, Option<String>>(0))
            .and_then(|seq| seq.parse::<i64>().ok())
            .ok_or_else(not_logged)?;
        let store = (row.get::<_, String>(1))
            .parse()
            .map_err(|_| not_logged())?;
        Ok(Position { store, seq })
    }

    /// A database error, typed where it says the store is missing or older.
    fn failed(&self, error: tokio_postgres::Error) -> WriteError {
        let schema = self.schema().to_owned();
        match error.code() {
            Some(code)
                if *code == SqlState::UNDEFINED_TABLE || *code == SqlState::INVALID_SCHEMA_NAME =>
            {
                WriteError::NoStore { schema }
            }
            Some(code) if *code == SqlState::UNDEFINED_COLUMN => WriteError::Unmigrated { schema },
            _ => WriteError::Postgres(error),
        }
    }

    /// Deletes the change-log rows older than `keep` and raises the pruning mark past them, in
    /// one transaction (the store's `prune` function): a follower that had not applied them
    /// reads a snapshot. The store's owner only.
    pub async fn prune(&self, client: &mut Client, keep: Duration) -> Result<Pruned, WriteError> {
        self.transaction(client, async |tx| {
            let sql = self.sql("SELECT {schema}.prune(make_interval(secs => $1))");
            let row =
                (tx.query_one(&sql, &[&keep.as_secs_f64()]).await).map_err(|e| self.failed(e))?;
            let deleted: i64 = row.get(0);
            let sql = self.sql("SELECT pruned_through, store_id::text FROM {schema}.settings");
            let row = (tx.query_one(&sql, &[]).await).map_err(|e| self.failed(e))?;
            let mark: i64 = row.get(0);
            let store = (row.get::<_, String>(1))
                .parse()
                .map_err(|_| WriteError::Unmigrated {
                    schema: self.schema().to_owned(),
                })?;
            Ok(Pruned {
                store,
                deleted,
                mark,
            })
        })
        .await
    }

    /// Lets `role` write credentials: `USAGE` on the schema; `SELECT, INSERT, UPDATE, DELETE`
    /// on `curve_keys` and `plain_users`; `SELECT` on `settings` (the store's uuid). Never
    /// `TRUNCATE`, `TRIGGER` or ownership, and nothing on the change log: the store's own
    /// functions log every write. The store's owner runs it.
    pub async fn grant_writer(&self, client: &mut Client, role: &str) -> Result<(), WriteError> {
        let schema = self.schema();
        self.grant(client, role, |role| {
            format!(
                "GRANT USAGE ON SCHEMA {schema} TO {role};
                 GRANT SELECT, INSERT, UPDATE, DELETE
                     ON {schema}.curve_keys, {schema}.plain_users TO {role};
                 GRANT SELECT ON {schema}.settings TO {role};"
            )
        })
        .await
    }

    /// Lets `role` follow the store: `USAGE` on the schema, `SELECT` on every table of it and
    /// on the change log's sequence `changes_seq_seq`. The store's owner runs it (again after
    /// a migration that adds tables).
    pub async fn grant_follower(&self, client: &mut Client, role: &str) -> Result<(), WriteError> {
        let schema = self.schema();
        self.grant(client, role, |role| {
            format!(
                "GRANT USAGE ON SCHEMA {schema} TO {role};
                 GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role};
                 GRANT SELECT ON SEQUENCE {schema}.changes_seq_seq TO {role};"
            )
        })
        .await
    }

    /// Runs the grants `sql` makes for `role`, an existing role quoted by the server
    /// (`quote_ident`), in one transaction.
    async fn grant(
        &self,
        client: &mut Client,
        role: &str,
        sql: impl FnOnce(&str) -> String,
    ) -> Result<(), WriteError> {
        self.transaction(client, async |tx| {
            let quoted = tx
                .query_opt(
                    "SELECT quote_ident(rolname::text) FROM pg_catalog.pg_roles \
                     WHERE rolname = $1",
                    &[&role],
                )
                .await
                .map_err(|e| self.failed(e))?
                .map(|row| row.get::<_, String>(0))
                .ok_or_else(|| WriteError::NoSuchRole(role.to_owned()))?;
            (tx.batch_execute(&sql(&quoted)).await).map_err(|e| self.failed(e))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_print_as_postgresql_does_and_parse_back() {
        let text = "7cd6249c-9d01-44d5-a5e3-890d25450097";
        let uuid: StoreUuid = text.parse().unwrap();
        assert_eq!(uuid.to_string(), text);
        assert_eq!(uuid.as_u128(), 0x7cd6249c_9d01_44d5_a5e3_890d25450097);
        assert_eq!("7CD6249C9D0144D5A5E3890D25450097".parse(), Ok(uuid));
        assert_eq!(
            StoreUuid::from_u128(1).to_string(),
            "00000000-0000-0000-0000-000000000001"
        );
        for bad in [
            "",
            "7cd6249c-9d01-44d5-a5e3",
            "+cd6249c-9d01-44d5-a5e3-890d25450097",
            "x",
        ] {
            assert!(bad.parse::<StoreUuid>().is_err(), "{bad}");
        }
        let position = Position {
            store: uuid,
            seq: 12,
        };
        assert_eq!(position.to_string(), format!("store {text} seq 12"));
    }

    #[test]
    fn metadata_set_by_name_replaces_or_adds() {
        let key = NewKey::new(CurvePublicKey::from_bytes([7; 32]))
            .meta("Role", "ops")
            .meta("zone", "a")
            .meta("role", "dev");
        assert_eq!(
            key.metadata,
            [("Role".into(), "dev".into()), ("zone".into(), "a".into())]
        );
    }
}
