//! The look [`Authenticator::serve`](crate::Authenticator::serve) takes before a source is
//! registered: one connection attempt that tells a configuration error (a store missing,
//! unmigrated or of a newer version, a hot standby) from an outage (the database out of
//! reach), which the source rides out by retrying with its domains closed.

use futures::StreamExt as _;
use log::warn;

use super::{PostgresSource, StoreError, SCHEMA_VERSION};

/// What the look found.
#[derive(Debug)]
pub(crate) enum Found {
    /// A store this program can follow.
    Ready,
    /// No answer, or no connection: an outage; the source will retry (the error says why).
    Unreachable(StoreError),
}

impl PostgresSource {
    /// Connects once and checks that the store can be followed: on the primary, its schema
    /// there and at [`SCHEMA_VERSION`]. A store that cannot be followed as it is is an error;
    /// a database that cannot be reached is [`Found::Unreachable`].
    pub(crate) async fn check(&self) -> Result<Found, StoreError> {
        let (client, messages) = match self.connect().await {
            Ok(connected) => connected,
            Err(error) => return Ok(Found::Unreachable(error)),
        };
        // The connection makes progress only while its messages are polled.
        let driven = messages.for_each(|_| async {});
        let checked = self.check_with(&client);
        futures::pin_mut!(driven, checked);
        let within = (self.heartbeat * 2).max(std::time::Duration::from_secs(1));
        let answer = tokio::time::timeout(within, async {
            match futures::future::select(checked, driven).await {
                futures::future::Either::Left((checked, _)) => checked,
                futures::future::Either::Right(((), _)) => {
                    Ok(Found::Unreachable(StoreError::TimedOut {
                        database: self.database.to_string(),
                        what: "the connection closed while checking the store".into(),
                        after: within,
                    }))
                }
            }
        })
        .await;
        match answer {
            Ok(Err(StoreError::Postgres(error))) if error.as_db_error().is_none() => {
                // Not the server's answer: the connection failed.
                Ok(Found::Unreachable(StoreError::Connect {
                    database: self.database.to_string(),
                    hint: String::new(),
                    error,
                }))
            }
            Ok(found) => found,
            Err(_) => Ok(Found::Unreachable(StoreError::TimedOut {
                database: self.database.to_string(),
                what: "checking the store".into(),
                after: within,
            })),
        }
    }

    async fn check_with(&self, client: &tokio_postgres::Client) -> Result<Found, StoreError> {
        let schema = self.store.schema();
        let row = client
            .query_one(
                "SELECT pg_is_in_recovery(),
                        to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL",
                &[
                    &format!("{schema}.settings"),
                    &format!("{schema}.schema_migrations"),
                ],
            )
            .await?;
        let (standby, present): (bool, bool) = (row.try_get(0)?, row.try_get(1)?);
        if standby {
            return Err(StoreError::HotStandby {
                database: self.database.to_string(),
            });
        }
        if !present {
            return Err(StoreError::Missing {
                schema: schema.to_owned(),
                database: self.database.to_string(),
            });
        }
        let sql = self
            .store
            .sql("SELECT coalesce(max(version), 0) FROM {schema}.schema_migrations");
        let found: i32 = client.query_one(&sql, &[]).await?.try_get(0)?;
        match found.cmp(&SCHEMA_VERSION) {
            std::cmp::Ordering::Less => Err(StoreError::Unmigrated {
                schema: schema.to_owned(),
                found,
                known: SCHEMA_VERSION,
            }),
            std::cmp::Ordering::Greater => Err(StoreError::NewerSchema {
                found,
                known: SCHEMA_VERSION,
            }),
            std::cmp::Ordering::Equal => Ok(Found::Ready),
        }
    }

    /// [`check`](Self::check), as `serve` needs it: an error for a store that cannot be
    /// followed, a warning (and `Ok`) for an outage.
    pub(crate) async fn check_before_serving(&self) -> Result<(), StoreError> {
        match self.check().await? {
            Found::Ready => Ok(()),
            Found::Unreachable(error) => {
                warn!(
                    target: "actix_zap::postgres",
                    "credential source {:?}: {error}; serving its domains closed until it \
                     connects",
                    self.name()
                );
                Ok(())
            }
        }
    }
}
