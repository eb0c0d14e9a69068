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
//! # Writing, and knowing when a write is in force
//! [`Store`]'s typed writes ([`Store::add_key`], [`Store::remove_key`], [`Store::add_user`],
//! …; see [`WriteError`] for what each refuses) run one transaction each and answer the
//! change's [`Position`]: the store's uuid and the number the store's own trigger gave the
//! change. [`SourceHandle::synced`] answers once this authenticator has applied it, or says
//! why not at its deadline ([`SyncError`]). Who may write, follow or prune: the README's
//! "Three roles" ([`Store::grant_writer`], [`Store::grant_follower`], [`Store::prune`]).
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
//! # Starting
//! [`Authenticator::serve`](crate::Authenticator::serve) connects once before it registers a
//! source, and refuses ([`ConfigError::Store`](crate::ConfigError::Store)) a store that
//! cannot be followed as it is: none in that schema ([`StoreError::Missing`]), one older
//! than this crate follows ([`StoreError::Unmigrated`]: run `zapctl db migrate`), one
//! migrated by a newer version ([`StoreError::NewerSchema`]: upgrade this server), or a hot
//! standby ([`StoreError::HotStandby`]: `LISTEN` is refused there). A database out of reach
//! (or refusing the login, or whose certificate does not verify) is an outage, not a
//! configuration error: `serve` answers, and the source retries with its domains refusing
//! everyone until it has read the store; its stats show the last error. Followers need
//! `SELECT` on the store's tables, `schema_migrations` included.
//!
//! # TLS
//! The connection string takes libpq's `sslmode` and `sslrootcert=FILE` (in both forms,
//! `key=value` and `postgresql://…?sslmode=…`), which `tokio-postgres` does not know: they
//! are taken out and pick a rustls connector (the `ring` provider; TLS 1.2 and 1.3):
//!
//! | `sslmode` | TLS | what is checked of the server |
//! |---|---|---|
//! | `verify-full` | required | its certificate chains to a root of `sslrootcert` and names `host` |
//! | `verify-ca` | required | its certificate chains to a root of `sslrootcert` (any name) |
//! | `require` | required | nothing (as libpq: a warning is logged once, when the source is built); with a root file, as `verify-ca` (as libpq) |
//! | `prefer` (the default), `allow`, `disable` | none | — (as before: no TLS is attempted, unlike libpq's `prefer`) |
//!
//! `sslrootcert` is a PEM file of root certificates (a self-signed server certificate works
//! as its own root), read when the source is built; without it `verify-*` reads libpq's
//! default, `~/.postgresql/root.crt`, and is refused if there is none (`sslrootcert=system`
//! is not supported). The name verified is `host`, the address connected to `hostaddr` when
//! given (`host=db.internal hostaddr=10.0.0.5`: no name look-up); TLS needs a `host`. A
//! certificate that does not verify fails the connection (an outage: see above) with the
//! reason and what to do (`the server's certificate does not chain to a root of
//! sslrootcert=…`, `certificate not valid for name …`). Client certificates (`sslcert`,
//! `sslkey`) are not supported. [`PostgresSource::tls`] replaces the connector picked from the
//! string with any `tokio-postgres` connector of your own, which then alone decides what is
//! verified.
//!
//! Every statement of a source's session is limited by the server (`statement_timeout`, sent
//! with the login as `options`, unless the string's `options` set one) to the longest the
//! source waits for a read (`max_staleness`, or the heartbeat if longer), and every round
//! trip has a client-side deadline too (the heartbeat for a heartbeat or `LISTEN`, that
//! allowance for a read, twice the heartbeat, at least 1 s, for the connection and login):
//! a statement timeout never fires in a silent partition. Errors name the database by host,
//! port, user and dbname ([`Database`]'s `Display`), never the connection string or a
//! password, and keep their cause (the server's message, the TLS failure).
//!
//! ```no_run
//! # async fn demo(auth: actix_zap::Authenticator) -> Result<(), Box<dyn std::error::Error>> {
//! use actix_zap::postgres::{PostgresSource, Store};
//! let source = PostgresSource::new(
//!     "host=db.internal user=zap dbname=zap sslmode=verify-full sslrootcert=/etc/zap/db-root.pem",
//!     ["fleet"],
//! )?
//! .store(Store::new("actix_zap")?);
//! let handle = auth.serve(source).await?;
//! // ... every change in the database reaches this authenticator ...
//! handle.stop();
//! # Ok(()) }
//! ```

mod database;
mod digest;
mod follower;
mod position;
mod rows;
mod schema;
mod startup;
mod synced;
mod tls;
mod write;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::future::LocalBoxFuture;
use futures::stream::LocalBoxStream;
use futures::{FutureExt as _, StreamExt as _};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, Client, Socket};

pub use database::{Database, SslMode};
pub use schema::{Store, SCHEMA_VERSION};
pub use synced::SyncError;
pub use write::{BadUuid, Credential, NewKey, Position, Pruned, StoreUuid, WriteError};

pub use crate::messages::error::StoreError;

/// A `tokio_postgres::Error` on one line, with its cause: the database's message (with its
/// detail and hint) or the chain of causes — its `Display` alone says only "db error".
pub fn error_text(error: &tokio_postgres::Error) -> String {
    crate::messages::error::postgres_cause(error)
}

/// The statement of one anti-entropy comparison's digest (`$1`: the served domains), for
/// the store's tests and `benches/fleet_bench`; not a stable interface (feature `test-hooks`).
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub const DIGEST_SQL: &str = digest::DIGEST;

use crate::messages::store::{CheckSource, Serve, StoreLink};
use crate::policy::Argon2Limits;

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
    database: Database,
    store: Store,
    domains: Vec<String>,
    name: Option<String>,
    max_staleness: Duration,
    heartbeat: Duration,
    anti_entropy: Duration,
    backoff: (Duration, Duration),
    limits: Argon2Limits,
    take_over: bool,
}

impl std::fmt::Debug for PostgresSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSource")
            .field("database", &self.database)
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

    /// A source for `domains`, connecting with a libpq connection string (`host=… user=…
    /// dbname=…` or `postgresql://…`, see [`Database::new`]: its `sslmode` and
    /// `sslrootcert` pick the TLS connector), to the default [`Store`].
    pub fn new<D: Into<String>>(
        connection: &str,
        domains: impl IntoIterator<Item = D>,
    ) -> Result<Self, StoreError> {
        Ok(Self::with_database(Database::new(connection)?, domains))
    }

    /// A source for `domains` in `database`, to the default [`Store`].
    pub fn with_database<D: Into<String>>(
        database: Database,
        domains: impl IntoIterator<Item = D>,
    ) -> Self {
        PostgresSource {
            database,
            store: Store::default(),
            domains: domains.into_iter().map(Into::into).collect(),
            name: None,
            max_staleness: Self::DEFAULT_MAX_STALENESS,
            heartbeat: Self::DEFAULT_HEARTBEAT,
            anti_entropy: Self::DEFAULT_ANTI_ENTROPY,
            backoff: (Duration::from_millis(50), Duration::from_secs(5)),
            limits: Argon2Limits::default(),
            take_over: false,
        }
    }

    /// The database it follows.
    pub fn database(&self) -> &Database {
        &self.database
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

    /// Connects through a TLS connector of `tokio-postgres` of your own (e.g.
    /// `postgres_native_tls::MakeTlsConnector`) instead of the one the connection string's
    /// `sslmode` picked: that connector alone then decides what is verified. With
    /// `sslmode=require` (or `verify-*`) in the string a server without TLS is refused.
    pub fn tls<T>(self, connector: T) -> Self
    where
        T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
        T::Stream: 'static,
        T::TlsConnect: 'static,
        <T::TlsConnect as TlsConnect<Socket>>::Future: 'static,
    {
        PostgresSource {
            database: self.database.clone().tls(connector),
            ..self
        }
    }

    /// The longest a statement of this source may run on the server (`statement_timeout`):
    /// the longest the follower waits for a read (a snapshot gets `max_staleness`).
    pub(super) fn statement_timeout(&self) -> Duration {
        self.max_staleness.max(self.heartbeat)
    }

    /// One connection of this source: as `actix-zap/<name>`, within twice the heartbeat (at
    /// least 1 s), every statement limited by the server to
    /// [`statement_timeout`](Self::statement_timeout).
    pub(super) async fn connect(&self) -> Result<(Client, Messages), StoreError> {
        let within = (self.heartbeat * 2).max(Duration::from_secs(1));
        let name = format!("actix-zap/{}", self.name());
        (self.database)
            .connect(&name, within, self.statement_timeout())
            .await
    }

    /// The look at the store that [`Authenticator::serve`](crate::Authenticator::serve) has
    /// the policy actor's runtime take before registering this source.
    pub(crate) fn check_source(&self) -> CheckSource {
        let source = self.clone();
        CheckSource(Box::new(move || {
            async move { Ok(source.check_before_serving().await?) }.boxed_local()
        }))
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
        let state = link.state.clone();
        let started = Arc::new(OnceLock::new());
        let starting = started.clone();
        let start = Box::new(move |source| {
            let _ = starting.set(synced::Started {
                id: source,
                arbiter: actix::Arbiter::current(),
            });
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
            started,
            state,
        };
        (serve, handle)
    }
}

/// A running source. Dropping it keeps the source running for as long as the authenticator;
/// [`stop`](Self::stop) ends it, leaving the policy it installed in force.
/// [`synced`](Self::synced) says when a change written to the store is in force here.
pub struct SourceHandle {
    name: String,
    stop: Option<futures::channel::oneshot::Sender<()>>,
    synced: tokio::sync::watch::Receiver<Option<Position>>,
    /// Set when the authenticator starts the source (before `serve` answers).
    started: Arc<OnceLock<synced::Started>>,
    state: actix::Recipient<crate::messages::store::StatsOf>,
}

impl std::fmt::Debug for SourceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceHandle")
            .field("name", &self.name)
            .field("applied", &*self.synced.borrow())
            .finish()
    }
}

impl SourceHandle {
    /// The source's name in [`Stats::sources`](crate::messages::Stats::sources).
    pub fn name(&self) -> &str {
        &self.name
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
