//! The store's schema: names, and versioned, idempotent migrations shipped with the crate.

use tokio_postgres::Client;

use super::StoreError;

/// The migrations, in order; version N is the N-th entry. Each runs once per schema, in
/// the same transaction as the record that it ran.
const MIGRATIONS: &[&str] = &[
    include_str!("sql/0001_credentials.sql"),
    include_str!("sql/0002_guarded_log.sql"),
];

/// The newest schema version this crate knows.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Where a credential store lives in its database: a schema, and the `NOTIFY` channel its
/// triggers signal (channels are per database, so two stores in one database need two).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    schema: String,
    channel: String,
}

impl Default for Store {
    /// Schema `actix_zap`, channel `actix_zap_changes`.
    fn default() -> Self {
        Store::new("actix_zap").expect("a valid name")
    }
}

/// A PostgreSQL identifier this crate writes unquoted: lower-case ASCII letters, digits and
/// `_`, not starting with a digit, at most 63 bytes.
fn check_name(what: &'static str, name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::BadName {
            what,
            name: name.to_owned(),
        })
    }
}

impl Store {
    /// A store in `schema`, signalling the channel `<schema>_changes`.
    pub fn new(schema: &str) -> Result<Self, StoreError> {
        check_name("schema", schema)?;
        let channel = format!("{schema}_changes");
        check_name("channel", &channel)?;
        Ok(Store {
            schema: schema.to_owned(),
            channel,
        })
    }

    /// Uses another `NOTIFY` channel.
    pub fn with_channel(self, channel: &str) -> Result<Self, StoreError> {
        check_name("channel", channel)?;
        Ok(Store {
            channel: channel.to_owned(),
            ..self
        })
    }

    /// The schema.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The `NOTIFY` channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// `sql` with `{schema}` replaced by this store's schema (a checked identifier), for
    /// tools that write to the store's tables.
    pub fn sql(&self, sql: &str) -> String {
        sql.replace("{schema}", &self.schema)
    }

    /// Brings the schema to [`SCHEMA_VERSION`], creating it if needed; answers the version
    /// it was at before. Safe to run again and from several machines at once (an advisory
    /// lock makes them take turns). Records the channel name for the triggers.
    pub async fn migrate(&self, client: &mut Client) -> Result<i32, StoreError> {
        let tx = client.transaction().await?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&format!("{}.actix_zap_migrate", self.schema)],
        )
        .await?;
        tx.batch_execute(&self.sql(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
                 version integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now());",
        ))
        .await?;
        let row = tx
            .query_one(
                &self.sql("SELECT coalesce(max(version), 0) FROM {schema}.schema_migrations"),
                &[],
            )
            .await?;
        let before: i32 = row.get(0);
        if before > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                found: before,
                known: SCHEMA_VERSION,
            });
        }
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(before as usize) {
            let version = index as i32 + 1;
            tx.batch_execute(&self.sql(migration)).await?;
            tx.execute(
                &self.sql("INSERT INTO {schema}.schema_migrations (version) VALUES ($1)"),
                &[&version],
            )
            .await?;
        }
        tx.execute(
            &self.sql(
                "INSERT INTO {schema}.settings (channel) VALUES ($1)
                 ON CONFLICT (only_row) DO UPDATE SET channel = EXCLUDED.channel",
            ),
            &[&self.channel],
        )
        .await?;
        tx.commit().await?;
        Ok(before)
    }

    /// Drops the schema and everything in it (tests, and taking a store down).
    pub async fn drop_schema(&self, client: &Client) -> Result<(), StoreError> {
        client
            .batch_execute(&self.sql("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_identifiers() {
        assert_eq!(Store::default().channel(), "actix_zap_changes");
        assert_eq!(Store::new("t_1").unwrap().sql("{schema}.x"), "t_1.x");
        for bad in ["", "1a", "A", "a-b", "a;drop", &"x".repeat(64)] {
            assert!(Store::new(bad).is_err(), "{bad}");
        }
        assert!(Store::default().with_channel("Bad").is_err());
    }
}
