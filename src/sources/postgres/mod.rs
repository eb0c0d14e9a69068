//! A fleet-wide credential store on PostgreSQL (feature `postgres`): many authenticators
//! follow one database, and a change — a revocation above all — reaches every one of them
//! within moments, through `LISTEN/NOTIFY`.
//!
//! # What is stored
//! [`Store::migrate`] (or `zapctl db migrate`) creates, in one schema: `curve_keys` (per
//! domain: Z85 public key, user id, metadata, enabled, optional expiry), `plain_users` (per
//! domain: username, an **argon2id PHC string** — never a password — enabled), and
//! `changes`, a log with a sequence number written by triggers on every insert, update and
//! delete; the triggers also `NOTIFY` the store's channel with that sequence number only.
//! Writers take turns (a lock of the log table, held to commit, that only the store's own
//! trigger functions take), so sequence numbers become visible in order. Each log row also
//! has a random 64-bit tag, and the store a uuid of its own (schema version 2).
//!
//! # How a source follows it
//! [`PostgresSource`] serves a list of domains. Each starts out refusing everyone (an empty
//! key set and an empty password table: never a fallback to `"*"`). The source connects
//! (with an `application_name`), `LISTEN`s **first**, then reads a consistent snapshot (one
//! `REPEATABLE READ` transaction that also notes the change-log position), installs it, and
//! from then on applies each change after that position, in order, as a delta: one key or
//! user added or removed costs O(1), however many the domain has. Decisions stay in memory:
//! no database round trip per handshake. Expiry is checked as each handshake is decided.
//! A user who configures a served domain by hand (any configuration message, delta message
//! or watch) takes that domain's mechanism over from the source.
//!
//! # When the database is away
//! - Notifications sent while the listener is disconnected are lost, so after every
//!   reconnect the source reads the change log from the last position it applied (or a
//!   snapshot again, if that position no longer checks out: see below).
//! - Reconnects back off from [`PostgresSource::backoff`]'s minimum to its maximum.
//! - A silent partition is found by a heartbeat query every [`PostgresSource::heartbeat`]
//!   (default 5 s) that must answer within that time: TCP keepalive would take hours.
//! - **Staleness is a deadline.** The served domains decide only while a recent read proved
//!   the source up to date: a read of the log's end (a heartbeat, or the read of what
//!   changed) that found nothing committed beyond the position applied, in the same store,
//!   with that position checked (below). Such a proof dates from the read's *sending*, and
//!   keeps the domains trusted for [`PostgresSource::max_staleness`] (default 3 minutes) from
//!   then. Every decision compares that deadline with its own time, so past it the served
//!   domains **fail closed** (refuse everyone: `500 Credential store out of touch`, never a
//!   fallback to `"*"`) whatever the source is doing — a silent partition, a query hung on a
//!   locked table, a reconnect, a long snapshot — and until a read proves them up to date
//!   again. A connection, a `LISTEN` or a notification proves nothing. The same goes before
//!   the first read.
//!
//! # What a follower trusts
//! - **A position only while it can verify it.** The position is (store, sequence number,
//!   tag of the row applied last). Every catch-up and every heartbeat reads, in one
//!   statement, where the log ends, the last number the store's identity sequence issued,
//!   the pruning mark, the store's identity (cluster system identifier, the log table's OID
//!   and the store's uuid) and the tag of the row at the position. Another store, a position
//!   beyond what the store issued (a log renumbered by `TRUNCATE … RESTART IDENTITY`, a
//!   restore), a log pruned past the position, the row applied last gone above the mark or
//!   carrying another tag: each makes the source read a snapshot again. Such a **forced
//!   snapshot** is logged at `warn` with its reason, counted
//!   ([`SourceStats::snapshots_forced`](crate::messages::SourceStats::snapshots_forced),
//!   `last_snapshot_reason`), and the position in force may go down. It starts after a
//!   random wait of up to 1 s (at most a tenth of `max_staleness`), so that a fleet that
//!   finds the same damage does not read its snapshots at the same instant. Meanwhile the
//!   policy in force stays trusted until its deadline, and only the snapshot, once applied,
//!   moves the deadline again: **`max_staleness` must exceed the time a snapshot takes at
//!   your size** (1,000,000 keys: 10.5 s for one follower, 18.7 s for three at once on a
//!   2-core machine, see BENCHMARKS.md), or the domains refuse everyone while it is read.
//! - **Anti-entropy** catches what no trigger logs (`DISABLE TRIGGER`, `pg_restore
//!   --disable-triggers`, a hand edit by the owner): every
//!   [`PostgresSource::anti_entropy`] (default 5 minutes, each wait drawn between ¾ and 1¼ of
//!   it), at a heartbeat that finds the position at the log's end, the source compares the
//!   store's digest of its domains' rows (XOR and count of 64-bit row hashes, computed in the
//!   same `REPEATABLE READ` transaction that reads the log's end) with the one it keeps of
//!   the rows it applied; a difference forces a snapshot (`"digest mismatch"`). The
//!   comparison reads and hashes every row of the served domains on the database (0.16 s at
//!   100,000 keys, 2.1 s at 1,000,000 on a 2-core machine).
//! - **Notifications are hints.** A payload that is not a plausible sequence number (the
//!   decimal form of a number beyond the position, not far beyond what the store issued) is
//!   ignored, and the reads notifications call for are paced: a few at once, then one per
//!   5 ms, so a flood costs a bounded number of reads
//!   ([`SourceStats::reads`](crate::messages::SourceStats::reads)) while a real change is
//!   still read at once.
//! - **A bad row refuses only itself.** Rows are decoded one by one: a malformed row (bad
//!   Z85, metadata that is not an object of strings — a JSON `null` value —, an expiry out of
//!   range, a hash that is not argon2id or asks for more than [`Argon2Limits`]) is refused,
//!   logged, counted and named in the stats (`rejected_rows`, `last_rejected_row`); a row
//!   whose domain and key or username decode removes any earlier good version of that
//!   credential. No row fails a read.
//! - The state — connected, last applied sequence number, staleness since the last proof,
//!   whether the domains fail closed, last error, rows refused, reads, forced snapshots,
//!   digest comparisons — is in [`Stats::sources`](crate::messages::Stats::sources) under
//!   the source's name.
//! - A follower's role needs `SELECT` on the store's tables and on its sequence
//!   `changes_seq_seq` (the issued end), and `USAGE` on the schema.
//!
//! # TLS
//! Tests and local databases use no TLS. For a database across an untrusted network, pass
//! any `tokio-postgres` TLS connector (e.g. `postgres-native-tls` or `tokio-postgres-rustls`)
//! with [`PostgresSource::tls`] and put `sslmode=require` in the connection string.
//!
//! ```no_run
//! # async fn demo(auth: actix_zap::Authenticator) -> Result<(), Box<dyn std::error::Error>> {
//! use actix_zap::postgres::{PostgresSource, Store};
//! let source = PostgresSource::new("host=db.internal user=zap dbname=zap", ["fleet"])?
//!     .store(Store::new("actix_zap")?);
//! let handle = auth.serve(source).await?;
//! // ... every change in the database reaches this authenticator ...
//! handle.stop();
//! # Ok(()) }
//! ```

mod digest;
mod follower;
mod position;
mod rows;
mod schema;

use std::sync::Arc;
use std::time::Duration;

use futures::future::LocalBoxFuture;
use futures::stream::LocalBoxStream;
use futures::{FutureExt as _, StreamExt as _};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, Client, Socket};

pub use schema::{Store, SCHEMA_VERSION};

/// The statement of one anti-entropy comparison's digest (`$1`: the served domains), for
/// `examples/fleet_bench`; not a stable interface.
#[doc(hidden)]
pub const DIGEST_SQL: &str = digest::DIGEST;

use crate::messages::store::{Serve, StoreLink};
use crate::policy::Argon2Limits;

/// What went wrong with the store's database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A schema or channel name this crate will not write into SQL.
    #[error(
        "{what} name {name:?} must be lower-case letters, digits and '_', not start with a \
         digit, and be at most 63 bytes"
    )]
    BadName {
        /// `"schema"` or `"channel"`.
        what: &'static str,
        /// The name.
        name: String,
    },
    /// The connection string did not parse.
    #[error("bad connection string: {0}")]
    Config(String),
    /// The schema was migrated by a newer version of this crate.
    #[error("schema version {found} is newer than this program knows ({known}); upgrade it")]
    NewerSchema {
        /// The schema's version.
        found: i32,
        /// This crate's.
        known: i32,
    },
    /// The database refused or the connection failed.
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
}

/// Notifications and other messages of one connection.
pub type Messages = LocalBoxStream<'static, Result<AsyncMessage, tokio_postgres::Error>>;

/// Opens connections for a source: without TLS ([`tokio_postgres::NoTls`]) or with any
/// `tokio-postgres` TLS connector.
pub trait Connector: 'static {
    /// Connects with `config`; the stream must be polled for the client to make progress.
    fn connect(
        &self,
        config: &tokio_postgres::Config,
    ) -> LocalBoxFuture<'static, Result<(Client, Messages), tokio_postgres::Error>>;
}

impl<T> Connector for T
where
    T: MakeTlsConnect<Socket> + Clone + 'static,
    T::Stream: 'static,
    T::TlsConnect: 'static,
    <T::TlsConnect as TlsConnect<Socket>>::Future: 'static,
{
    fn connect(
        &self,
        config: &tokio_postgres::Config,
    ) -> LocalBoxFuture<'static, Result<(Client, Messages), tokio_postgres::Error>> {
        let (config, tls) = (config.clone(), self.clone());
        async move {
            let (client, mut connection) = config.connect(tls).await?;
            let messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            Ok((client, messages.boxed_local()))
        }
        .boxed_local()
    }
}

/// A source that serves some domains from a PostgreSQL credential store. Build it, then
/// start it with [`Authenticator::serve`](crate::Authenticator::serve).
#[derive(Clone)]
pub struct PostgresSource {
    config: tokio_postgres::Config,
    store: Store,
    domains: Vec<String>,
    name: Option<String>,
    max_staleness: Duration,
    heartbeat: Duration,
    anti_entropy: Duration,
    backoff: (Duration, Duration),
    limits: Argon2Limits,
    connector: Arc<dyn Fn() -> Box<dyn Connector> + Send + Sync>,
    take_over: bool,
}

impl std::fmt::Debug for PostgresSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSource")
            .field("store", &self.store)
            .field("domains", &self.domains)
            .field("name", &self.name())
            .field("max_staleness", &self.max_staleness)
            .field("heartbeat", &self.heartbeat)
            .field("anti_entropy", &self.anti_entropy)
            .field("backoff", &self.backoff)
            .field("take_over", &self.take_over)
            .finish()
    }
}

impl PostgresSource {
    /// Default [`max_staleness`](Self::max_staleness): 3 minutes.
    pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(180);
    /// Default [`heartbeat`](Self::heartbeat): 5 s.
    pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);
    /// Default [`anti_entropy`](Self::anti_entropy): 5 minutes.
    pub const DEFAULT_ANTI_ENTROPY: Duration = Duration::from_secs(300);

    /// A source for `domains`, connecting with a libpq-style connection string
    /// (`host=… user=… dbname=…` or `postgresql://…`), without TLS, to the default [`Store`].
    pub fn new<D: Into<String>>(
        connection: &str,
        domains: impl IntoIterator<Item = D>,
    ) -> Result<Self, StoreError> {
        let config: tokio_postgres::Config = connection
            .parse()
            .map_err(|e: tokio_postgres::Error| StoreError::Config(e.to_string()))?;
        Ok(PostgresSource {
            config,
            store: Store::default(),
            domains: domains.into_iter().map(Into::into).collect(),
            name: None,
            max_staleness: Self::DEFAULT_MAX_STALENESS,
            heartbeat: Self::DEFAULT_HEARTBEAT,
            anti_entropy: Self::DEFAULT_ANTI_ENTROPY,
            backoff: (Duration::from_millis(50), Duration::from_secs(5)),
            limits: Argon2Limits::default(),
            connector: Arc::new(|| Box::new(tokio_postgres::NoTls)),
            take_over: false,
        })
    }

    /// The store (schema and channel) to follow.
    pub fn store(self, store: Store) -> Self {
        PostgresSource { store, ..self }
    }

    /// The source's name in [`Stats::sources`](crate::messages::Stats::sources), and (prefixed with
    /// `actix-zap/`) its connection's `application_name`, so operators can find it in
    /// `pg_stat_activity`. Default: the schema.
    pub fn name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| self.store.schema().to_owned())
    }

    /// Takes its domains over from a watch or another store that owns them, which then stop
    /// changing them (see the README's "Who may change a domain"). Without it, serving a
    /// domain another owner holds is refused with
    /// [`PolicyError::OwnedBy`](crate::policy::PolicyError::OwnedBy) and nothing changes.
    pub fn take_over(self) -> Self {
        PostgresSource {
            take_over: true,
            ..self
        }
    }

    /// Sets the [`name`](Self::name).
    pub fn named(self, name: impl Into<String>) -> Self {
        PostgresSource {
            name: Some(name.into()),
            ..self
        }
    }

    /// How long the last known policy stays in force without a proof that it is up to date
    /// (a read that found nothing committed beyond what the source applied, counted from its
    /// sending); after it, every decision for the served domains refuses everyone until a
    /// read proves them up to date again. The heartbeat runs at least four times within it.
    pub fn max_staleness(self, max_staleness: Duration) -> Self {
        PostgresSource {
            max_staleness,
            ..self
        }
    }

    /// How often the source asks the database where its change log ends — which, when
    /// nothing is new, proves the source up to date (and otherwise makes it read the
    /// changes it missed); a heartbeat not answered within this time counts as a lost
    /// connection. At most a quarter of [`max_staleness`](Self::max_staleness), so that a
    /// healthy source proves itself well before its deadline.
    pub fn heartbeat(self, heartbeat: Duration) -> Self {
        PostgresSource { heartbeat, ..self }
    }

    /// The heartbeat in use: as set, at most a quarter of `max_staleness`, at least 10 ms.
    pub(super) fn heartbeat_interval(&self) -> Duration {
        (self.heartbeat)
            .min(self.max_staleness / 4)
            .max(Duration::from_millis(10))
    }

    /// How often (on average: each wait is drawn between ¾ and 1¼ of it, so that followers
    /// spread out) the source compares the store's digest of its domains' rows with the one
    /// it keeps of the rows it applied, at a heartbeat that finds it at the log's end; a
    /// difference (rows changed without a log entry: triggers disabled, `pg_restore
    /// --disable-triggers`, a hand edit by the owner) makes it read a snapshot. Each
    /// comparison reads every row of the served domains on the database (see BENCHMARKS.md,
    /// "Store anti-entropy"). Default 5 minutes; at least the heartbeat.
    pub fn anti_entropy(self, every: Duration) -> Self {
        PostgresSource {
            anti_entropy: every,
            ..self
        }
    }

    /// The wait before the first reconnect, doubled after each failure up to `max`.
    pub fn backoff(self, min: Duration, max: Duration) -> Self {
        PostgresSource {
            backoff: (min, max.max(min)),
            ..self
        }
    }

    /// Limits on argon2 parameters of stored hashes; a row above them is refused.
    pub fn argon2_limits(self, limits: Argon2Limits) -> Self {
        PostgresSource { limits, ..self }
    }

    /// Connects through a TLS connector of `tokio-postgres` (e.g.
    /// `postgres_native_tls::MakeTlsConnector`); put `sslmode=require` in the connection
    /// string so that a server without TLS is refused.
    pub fn tls<T>(self, connector: T) -> Self
    where
        T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
        T::Stream: 'static,
        T::TlsConnect: 'static,
        <T::TlsConnect as TlsConnect<Socket>>::Future: 'static,
    {
        PostgresSource {
            connector: Arc::new(move || Box::new(connector.clone())),
            ..self
        }
    }

    /// The registration of this source with a policy actor (sent by
    /// [`Authenticator::serve`](crate::Authenticator::serve)), and the handle of the source it
    /// starts: once registered, the follower runs on the authenticator's own actix runtime and
    /// sends what it reads through `link`.
    pub(crate) fn into_serve(self, link: StoreLink) -> (Serve, SourceHandle) {
        let name = self.name();
        let (stop, stopped) = futures::channel::oneshot::channel();
        let (synced_tx, synced) = tokio::sync::watch::channel(None);
        let domains = self.domains.clone();
        let max_staleness = self.max_staleness;
        let self_take_over = self.take_over;
        let start = Box::new(move |source| {
            actix::spawn(follower::follow(self, link, source, stopped, synced_tx));
        });
        let serve = Serve {
            name: name.clone(),
            domains,
            take_over: self_take_over,
            max_staleness,
            start,
        };
        let handle = SourceHandle {
            name,
            stop: Some(stop),
            synced,
        };
        (serve, handle)
    }
}

/// A running source. Dropping it keeps the source running for as long as the authenticator;
/// [`stop`](Self::stop) ends it, leaving the policy it installed in force.
pub struct SourceHandle {
    name: String,
    stop: Option<futures::channel::oneshot::Sender<()>>,
    synced: tokio::sync::watch::Receiver<Option<i64>>,
}

impl std::fmt::Debug for SourceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceHandle")
            .field("name", &self.name)
            .finish()
    }
}

impl SourceHandle {
    /// The source's name in [`Stats::sources`](crate::messages::Stats::sources).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits until the changes up to `seq` (or, with `None`, a first snapshot) are in force;
    /// `false` if the source ended first.
    pub async fn synced(&self, seq: Option<i64>) -> bool {
        let mut synced = self.synced.clone();
        let reached = synced
            .wait_for(|applied| match (applied, seq) {
                (Some(applied), Some(seq)) => *applied >= seq,
                (Some(_), None) => true,
                (None, _) => false,
            })
            .await
            .is_ok();
        reached
    }

    /// Stops following the store; the domains keep the policy last installed, and the
    /// authenticator no longer counts them as served (configure them by hand, or start a
    /// source again).
    pub fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
