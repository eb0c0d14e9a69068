//! The source's task, on the authenticator's actix runtime: connect, `LISTEN`, snapshot,
//! follow the change log; heartbeat, compare digests now and then, reconnect with backoff.
//! Each read that proves the source up to date ([`position`](super::position)) moves its
//! domains' deadline forward; past it, every decision refuses them, whatever this task is
//! doing (connecting, waiting for a hung query, sleeping before a reconnect, reading a
//! snapshot).
//!
//! Every read checks the position it continues from (same store, not beyond what the store
//! issued, not pruned past, the row applied last still there with its tag); a position that
//! fails a check is given up for a snapshot (forced: counted, logged, in the stats), after a
//! short random wait so that a fleet does not read its snapshots at the same instant.
//! Notifications are hints only: an implausible one is ignored, and the reads they call for
//! are paced ([`Pace`]: a few at once, then at least 5 ms apart; the first after a quiet spell
//! is read at once).

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher as _;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use futures::StreamExt as _;
use log::{debug, info, warn};
use tokio::sync::{mpsc, watch};
use tokio_postgres::{AsyncMessage, Client, Row, Statement};

use super::digest::{curve_hash, plain_hash, Digest, Ident, Kind, Sum, DIGEST};
use super::position::{
    check_columns, check_from, plausible_hint, LogEnd, Next, Pace, Position, Why, HEARTBEAT,
};
use super::rows::{key_of, CurveRow, Micros, PlainRow, Refused};
use super::PostgresSource;
use crate::certs::CertStore;
use crate::messages::error::postgres_cause;
use crate::messages::store::{Apply, Progress, Report, SourceId, StoreLink, Unserve};
use crate::policy::Change;
use crate::policy::HashedTable;

/// The log target: a public path, what a user looks up.
const LOG_TARGET: &str = "actix_zap::postgres";

/// The longest random wait before a forced snapshot (and at most a tenth of
/// `max_staleness`): followers that find the same damage spread their snapshots out.
const SNAPSHOT_JITTER: Duration = Duration::from_secs(1);

/// Why a session with the database ended.
enum Ended {
    /// The handle asked the source to stop, or the authenticator is gone.
    Stop,
    /// The connection failed or went silent: reconnect.
    Lost(String),
}

/// A query error or timeout, as text for the stats.
fn lost<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> Ended + '_ {
    move |e| Ended::Lost(format!("{what}: {e}"))
}

/// A random duration in `[0, max]`.
fn jitter(max: Duration) -> Duration {
    let random = std::collections::hash_map::RandomState::new().hash_one(Instant::now());
    max.mul_f64((random >> 11) as f64 / (1u64 << 53) as f64)
}

struct Follower {
    source: PostgresSource,
    link: StoreLink,
    id: SourceId,
    /// The change-log position in force, in its store; `None`: a snapshot is needed, for
    /// the reason in `why`.
    position: Option<Position>,
    why: Why,
    /// The last number a read saw the store issue (bounds the plausible notifications).
    issued: i64,
    /// The digest of the rows applied (anti-entropy).
    digest: Digest,
    /// When the next digest comparison is due.
    compare_at: Instant,
    /// The pace of the reads notifications call for.
    pace: Pace,
    /// A read that notifications called for is due at this instant.
    wake: Option<Instant>,
    /// What happened since the last report.
    progress: Progress,
    /// The session's prepared catch-up statement ([`CHANGES`]): one round trip per read.
    prepared: Option<Statement>,
    /// When the read that last proved the source up to date was sent (for the log).
    proved: Option<Instant>,
    /// The staleness warning was logged since the last proof.
    warned: bool,
    synced: watch::Sender<Option<super::Position>>,
}

/// What a read brought: the log end it found (and when it was sent), what changed up to it,
/// the rows refused as malformed, and what the digest of the rows applied becomes.
struct Read {
    end: LogEnd,
    deltas: Vec<Change>,
    rejected: Vec<Refused>,
    digest: DigestUpdate,
}

/// How a read changes the digest of the rows applied.
enum DigestUpdate {
    /// A snapshot: this one instead.
    Replace(Digest),
    /// Changes: these credentials are now these row hashes (`None`: gone or disabled).
    Rows(Vec<(Ident, Option<i64>)>),
}

/// What became of changes handed to the policy actor.
enum Applied {
    /// All in force.
    Done,
    /// Some change was refused: the position is not in force, and proves nothing.
    Failed,
    /// The authenticator is gone.
    Gone,
}

/// Follows the store until stopped (or the authenticator is gone).
pub(super) async fn follow(
    source: PostgresSource,
    link: StoreLink,
    id: SourceId,
    stopped: oneshot::Receiver<()>,
    synced: watch::Sender<Option<super::Position>>,
) {
    let mut follower = Follower {
        source,
        link,
        id,
        position: None,
        why: Why::Start,
        issued: 0,
        digest: Digest::default(),
        compare_at: Instant::now(),
        pace: Pace::default(),
        wake: None,
        progress: Progress::default(),
        prepared: None,
        proved: None,
        warned: false,
        synced,
    };
    follower.schedule_comparison();
    // A dropped handle detaches the source: only an explicit stop ends it.
    let stop = async {
        if stopped.await.is_err() {
            futures::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = stop => {}
        () = follower.run() => {}
    }
    follower.link.unserve.do_send(Unserve(follower.id));
    debug!(target: LOG_TARGET, "credential source {:?} stopped", follower.source.name());
}

impl Follower {
    async fn run(&mut self) {
        let (min, max) = self.source.backoff;
        let mut backoff = min;
        let mut sessions = 0u64;
        loop {
            let started = Instant::now();
            let ended = self.session(sessions > 0).await;
            sessions += 1;
            let error = match ended {
                Ended::Stop => return,
                Ended::Lost(error) => error,
            };
            warn!(
                target: LOG_TARGET,
                "credential source {:?}: {error}; reconnecting",
                self.source.name()
            );
            self.warn_if_stale();
            self.report(false, Some(error), 0, false).await;
            // A session that lasted resets the backoff.
            if started.elapsed() > max {
                backoff = min;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(max);
        }
    }

    /// Says so (once per proof) when the domains refuse everyone for want of a recent proof;
    /// the decisions need no word from here: they compare the deadline with their own time.
    fn warn_if_stale(&mut self) {
        let max = self.source.max_staleness;
        let stale = self.proved.is_none_or(|at| at.elapsed() >= max);
        if stale && !self.warned {
            self.warned = true;
            warn!(
                target: LOG_TARGET,
                "credential source {:?}: nothing proved it up to date for {max:?} \
                 (max_staleness): its domains refuse everyone until it catches up",
                self.source.name()
            );
        }
    }

    /// The next digest comparison: after ¾ to 1¼ of the interval (at least the heartbeat).
    fn schedule_comparison(&mut self) {
        let every = self
            .source
            .anti_entropy
            .max(self.source.heartbeat_interval());
        self.compare_at = Instant::now() + every * 3 / 4 + jitter(every / 2);
    }

    /// One connection: connect, listen, catch up, then follow until it fails.
    async fn session(&mut self, reconnect: bool) -> Ended {
        // The database (never the password) and the cause are in the error.
        let (client, mut messages) = match self.source.connect().await {
            Ok(connected) => connected,
            Err(error) => return Ended::Lost(error.to_string()),
        };
        // The connection makes progress only while polled: a task of its own forwards the
        // notifications and tells when the connection ends.
        let (notices, mut notified) = mpsc::unbounded_channel::<Result<String, String>>();
        actix::spawn(async move {
            while let Some(message) = messages.next().await {
                let forwarded = match message {
                    Ok(AsyncMessage::Notification(n)) => notices.send(Ok(n.payload().to_owned())),
                    Ok(_) => Ok(()),
                    Err(error) => {
                        let _ = notices.send(Err(postgres_cause(&error)));
                        return;
                    }
                };
                if forwarded.is_err() {
                    return;
                }
            }
        });
        let store = self.source.store.clone();
        // LISTEN before the snapshot: nothing committed after the snapshot goes unnoticed.
        let listen = format!("LISTEN {}", store.channel());
        if let Err(e) = self.timed(client.batch_execute(&listen)).await {
            return lost("LISTEN failed")(e);
        }
        // The statements a session repeats are prepared once: each read is one round trip.
        self.prepared = None;
        let heartbeat_sql = match self.timed(client.prepare(&store.sql(HEARTBEAT))).await {
            Ok(statement) => statement,
            Err(e) => return lost("preparing the heartbeat failed")(e),
        };
        match self.timed(client.prepare(&store.sql(CHANGES))).await {
            Ok(statement) => self.prepared = Some(statement),
            Err(e) => return lost("preparing the catch-up failed")(e),
        }
        if let Err(ended) = self.catch_up(&client).await {
            return ended;
        }
        self.report(true, None, 0, reconnect).await;
        info!(
            target: LOG_TARGET,
            "credential source {:?} following {} (change {})",
            self.source.name(),
            store.schema(),
            self.position.map_or(0, |p| p.applied)
        );
        let mut heartbeat = tokio::time::interval(self.source.heartbeat_interval());
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.tick().await;
        loop {
            let wake = self.wake;
            tokio::select! {
                notice = notified.recv() => match notice {
                    Some(Ok(payload)) => {
                        // One look covers every notification already queued.
                        let mut hinted = self.hints(&payload);
                        while let Ok(more) = notified.try_recv() {
                            match more {
                                Ok(more) => hinted |= self.hints(&more),
                                Err(error) => {
                                    return Ended::Lost(format!("connection lost: {error}"))
                                }
                            }
                        }
                        if !hinted {
                            continue; // nothing new (and a notification proves nothing)
                        }
                        // Read at once, unless a flood has used up the burst.
                        let now = Instant::now();
                        let at = self.pace.allowed_at(now);
                        if at <= now {
                            if let Err(ended) = self.catch_up(&client).await {
                                return ended;
                            }
                        } else {
                            self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
                        }
                    }
                    Some(Err(error)) => return Ended::Lost(format!("connection lost: {error}")),
                    None => return Ended::Lost("connection closed".into()),
                },
                () = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now).into()),
                    if wake.is_some() =>
                {
                    if let Err(ended) = self.catch_up(&client).await {
                        return ended;
                    }
                }
                _ = heartbeat.tick() => {
                    let compare = Instant::now() >= self.compare_at;
                    let next = if compare {
                        self.compare(&client).await
                    } else {
                        self.check(&client, &heartbeat_sql).await
                    };
                    let next = match next {
                        Ok(next) => next,
                        Err(ended) => return ended,
                    };
                    let done = match next {
                        Next::Proved(sent) => match self.prove(sent).await {
                            Applied::Gone => Err(Ended::Stop),
                            _ => Ok(()),
                        },
                        Next::CatchUp => self.catch_up(&client).await,
                        Next::Snapshot(why) => self.snapshot(&client, why).await,
                    };
                    if let Err(ended) = done {
                        return ended;
                    }
                    if compare {
                        // A digest comparison that changed nothing still shows in the stats.
                        self.report(true, None, 0, false).await;
                    }
                }
            }
        }
    }

    /// Whether a notification's payload is a plausible hint of a change not yet applied.
    fn hints(&self, payload: &str) -> bool {
        let applied = self.position.map(|p| p.applied);
        plausible_hint(payload, applied, self.issued)
    }

    /// A query under the heartbeat's deadline (a silent partition must not hang it).
    async fn timed<T, E: Into<ReadError>>(
        &self,
        query: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, String> {
        let within = self.source.heartbeat_interval();
        match tokio::time::timeout(within, query).await {
            Ok(Ok(value)) => Ok(value),
            // With its cause: a `tokio_postgres::Error` alone says "db error".
            Ok(Err(error)) => Err(error.into().to_string()),
            Err(_) => Err(format!("no answer within {within:?}")),
        }
    }

    /// A long read (a snapshot, a digest) gets the staleness allowance, not the heartbeat's.
    fn long_read(&self) -> Duration {
        self.source.max_staleness.max(self.source.heartbeat)
    }

    /// The position's check against the store: what it calls for.
    fn next(&mut self, end: &LogEnd) -> Next {
        self.issued = end.issued;
        match &self.position {
            Some(position) => position.next(end),
            None => Next::Snapshot(self.why.clone()),
        }
    }

    /// The heartbeat: checks the position against the store.
    async fn check(&mut self, client: &Client, sql: &Statement) -> Result<Next, Ended> {
        let applied = self.position.map_or(0, |p| p.applied);
        // The proof dates from the sending: take the time before the query goes.
        let sent = Instant::now();
        let row = self.timed(client.query_one(sql, &[&applied])).await;
        let end = row.and_then(|row| LogEnd::read(&row, 0, sent));
        match end {
            Ok(end) => Ok(self.next(&end)),
            Err(e) => Err(lost("heartbeat failed")(e)),
        }
    }

    /// Anti-entropy, in place of a heartbeat: checks the position and, if it is the log's
    /// end, compares the store's digest of the served domains (in the same `REPEATABLE READ`
    /// transaction) with the one of the rows applied. At another position, the comparison
    /// waits for a later heartbeat.
    async fn compare(&mut self, client: &Client) -> Result<Next, Ended> {
        let store = &self.source.store;
        let (check, digest) = (
            store.sql(concat!(
                "SELECT ",
                check_columns!(),
                " FROM ",
                check_from!()
            )),
            store.sql(DIGEST),
        );
        let position = self.position;
        let applied = position.map_or(0, |p| p.applied);
        let domains = &self.source.domains;
        self.progress.reads += 1;
        let sent = Instant::now();
        let read = async {
            client
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await?;
            let result = async {
                let row = client.query_one(&check, &[&applied]).await?;
                let end = LogEnd::read(&row, 0, sent).map_err(ReadError::Store)?;
                // The digest is worth reading only at the log's end (the transaction's
                // snapshot is the check's).
                let at_end = position.is_some_and(|p| matches!(p.next(&end), Next::Proved(_)));
                if !at_end {
                    return Ok((end, None));
                }
                let row = client.query_one(&digest, &[domains]).await?;
                let sum = Sum::of_tables(
                    (row.try_get(0)?, row.try_get(1)?),
                    (row.try_get(2)?, row.try_get(3)?),
                );
                Ok::<_, ReadError>((end, Some(sum)))
            }
            .await;
            let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
            let ended = client.batch_execute(end).await;
            let read = result?;
            ended?;
            Ok::<_, ReadError>(read)
        };
        let (end, sum) = match tokio::time::timeout(self.long_read(), read).await {
            Ok(Ok(read)) => read,
            Ok(Err(error)) => return Err(Ended::Lost(format!("comparing digests: {error}"))),
            Err(_) => {
                let within = self.long_read();
                return Err(Ended::Lost(format!(
                    "comparing digests: no answer within {within:?}"
                )));
            }
        };
        let next = self.next(&end);
        let (Next::Proved(_), Some(sum)) = (&next, sum) else {
            return Ok(next);
        };
        self.progress.digest_checks += 1;
        self.schedule_comparison();
        let held = self.digest.sum();
        if held == sum {
            debug!(
                target: LOG_TARGET,
                "credential source {:?}: digest of {} rows agrees at change {}",
                self.source.name(),
                sum.count,
                end.seq
            );
            return Ok(next);
        }
        warn!(
            target: LOG_TARGET,
            "credential source {:?}: the store's digest of its domains ({} rows) differs from \
             the {} rows applied at change {}: rows were changed without a log entry",
            self.source.name(),
            sum.count,
            held.count,
            end.seq
        );
        Ok(Next::Snapshot(Why::DigestMismatch))
    }

    /// Everything committed before `sent` is in force: the domains may decide until `sent`
    /// plus `max_staleness`.
    async fn prove(&mut self, sent: Instant) -> Applied {
        let applied = self.apply(None, Vec::new(), Some(sent)).await;
        if let Applied::Done = applied {
            self.proved = self.proved.max(Some(sent));
            self.warned = false;
        }
        applied
    }

    /// Reads the change log after the position in force (or a snapshot when none is in
    /// force, or the read finds the position cannot be trusted) and applies it; the read
    /// proves the position as of its sending.
    async fn catch_up(&mut self, client: &Client) -> Result<(), Ended> {
        let Some(position) = self.position else {
            return self.snapshot(client, self.why.clone()).await;
        };
        self.progress.reads += 1;
        // Every hint seen so far is covered by this read.
        self.wake = None;
        let sent = Instant::now();
        self.pace.read(sent);
        let read = self.timed(self.changes(client, position, sent)).await;
        match read {
            Ok(Ok(read)) => self.install(read).await,
            Ok(Err(why)) => self.snapshot(client, why).await,
            Err(error) => Err(lost("reading the store failed")(error)),
        }
    }

    /// Reads a snapshot (one `REPEATABLE READ` transaction) and applies it. A forced one
    /// (any reason but the first read) is counted, logged, and waits a moment first.
    async fn snapshot(&mut self, client: &Client, why: Why) -> Result<(), Ended> {
        // Until it is read and applied, the position is gone; the policy in force stays
        // trusted until its deadline, and nothing read meanwhile extends it.
        self.position = None;
        self.why = why.clone();
        self.wake = None;
        if why.forced() {
            self.progress.forced += 1;
            let wait = jitter(SNAPSHOT_JITTER.min(self.source.max_staleness / 10));
            warn!(
                target: LOG_TARGET,
                "credential source {:?}: reading a snapshot ({why}) in {wait:?}",
                self.source.name()
            );
            tokio::time::sleep(wait).await;
        }
        self.progress.snapshot_reason = Some(why.to_string());
        self.progress.reads += 1;
        let deadline = self.long_read();
        let sent = Instant::now();
        self.pace.read(sent);
        let read = tokio::time::timeout(deadline, self.read_snapshot(client, sent)).await;
        match read {
            Ok(Ok(read)) => {
                self.install(read).await?;
                if self.position.is_some() {
                    // The digest is the store's by construction: compare it later.
                    self.schedule_comparison();
                }
                Ok(())
            }
            Ok(Err(error)) => Err(lost("reading a snapshot failed")(error)),
            Err(_) => Err(Ended::Lost(format!(
                "reading a snapshot took over {deadline:?}"
            ))),
        }
    }

    /// Hands what a read brought to the policy actor; once applied, its end is the position
    /// in force, proved from the read's sending.
    async fn install(&mut self, read: Read) -> Result<(), Ended> {
        let Read {
            end,
            deltas,
            rejected,
            digest,
        } = read;
        let mut error = None;
        for row in &rejected {
            warn!(
                target: LOG_TARGET,
                "credential source {:?}: refused {}",
                self.source.name(),
                row.why
            );
            error = Some(row.why.clone());
        }
        self.progress.rejected_row = error.clone().or(self.progress.rejected_row.take());
        match self.apply(Some(end.seq), deltas, Some(end.sent)).await {
            Applied::Gone => return Err(Ended::Stop),
            Applied::Failed => {
                // Not in force as read: the next read is a snapshot, and nothing is proved.
                self.position = None;
                self.why = Why::Refused;
                error = Some("a change from the store was refused (see the log)".into());
            }
            Applied::Done => {
                self.position = Some(Position::at(&end));
                self.issued = end.issued;
                match digest {
                    DigestUpdate::Replace(digest) => self.digest = digest,
                    DigestUpdate::Rows(rows) => {
                        for (ident, hash) in rows {
                            self.digest.set(ident, hash);
                        }
                    }
                }
                self.proved = self.proved.max(Some(end.sent));
                self.warned = false;
                // Published with the store's uuid, for writers waiting for their change.
                let store = super::StoreUuid::from_u128(end.store.uuid);
                let seq = end.seq;
                let _ = self.synced.send(Some(super::Position { store, seq }));
            }
        }
        self.report(true, error, rejected.len() as u64, false).await;
        Ok(())
    }

    /// A snapshot in one `REPEATABLE READ` transaction: the log end, then every enabled row
    /// of the served domains with its hash.
    async fn read_snapshot(&self, client: &Client, sent: Instant) -> Result<Read, ReadError> {
        let store = &self.source.store;
        let check = store.sql(concat!(
            "SELECT ",
            check_columns!(),
            " FROM ",
            check_from!()
        ));
        // A transaction needs `&mut Client`; the same statements by hand need only `&`.
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        let result = async {
            let row = client.query_one(&check, &[&0i64]).await?;
            let end = LogEnd::read(&row, 0, sent).map_err(ReadError::Store)?;
            self.snapshot_rows(client, end).await
        }
        .await;
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        let ended = client.batch_execute(end).await;
        let read = result?;
        ended?;
        Ok(read)
    }

    async fn snapshot_rows(&self, client: &Client, end: LogEnd) -> Result<Read, ReadError> {
        let store = &self.source.store;
        let domains = &self.source.domains;
        let mut keys: BTreeMap<&str, CertStore> = domains
            .iter()
            .map(|d| (d.as_str(), CertStore::new()))
            .collect();
        let mut users: BTreeMap<&str, HashedTable> = domains
            .iter()
            .map(|d| (d.as_str(), HashedTable::new()))
            .collect();
        let mut digest = Digest::like(&self.digest);
        digest.reserve(self.digest.sum().count.max(0) as usize);
        let mut rejected = Vec::new();
        let rows = client
            .query_raw(&store.sql(CURVE_SNAPSHOT), [domains])
            .await?;
        futures::pin_mut!(rows);
        while let Some(row) = rows.next().await {
            let row = row?;
            let (domain, key) = (text(&row, 0), text(&row, 1));
            if let (Some(domain), Some(key)) = (&domain, &key) {
                let ident = digest.ident(Kind::Curve, domain, key);
                digest.set(ident, row.try_get(7).ok());
            }
            match curve_row(&row, 0, 1).and_then(|row| row.entry()) {
                Ok(entry) => {
                    let set = domain.as_deref().and_then(|d| keys.get_mut(d));
                    if let Some(set) = set {
                        set.upsert(entry.key, entry.metadata, entry.user_id, entry.expires);
                    }
                }
                // Nothing earlier to remove: the snapshot replaces the domain's keys.
                Err(refused) => rejected.push(refused),
            }
        }
        for row in client.query(&store.sql(PLAIN_SNAPSHOT), &[domains]).await? {
            let (domain, username) = (text(&row, 0), text(&row, 1));
            if let (Some(domain), Some(username)) = (&domain, &username) {
                let ident = digest.ident(Kind::Plain, domain, username);
                digest.set(ident, row.try_get(4).ok());
            }
            let hash = plain_row(&row, 0, 1).and_then(|row| {
                let hash = row.hash(&self.source.limits)?;
                Ok((row, hash))
            });
            match hash {
                Ok((row, hash)) => {
                    if let Some(table) = users.get_mut(row.domain.as_str()) {
                        table.upsert(row.username.into_bytes(), hash);
                    }
                }
                Err(refused) => rejected.push(refused),
            }
        }
        digest.shrink_to_fit();
        let mut deltas: Vec<Change> = Vec::new();
        for (domain, mut set) in keys {
            set.shrink_to_fit();
            deltas.push(Change::curve_keys(domain, set));
        }
        for (domain, table) in users {
            deltas.push(Change::hashed_users(domain, table));
        }
        Ok(Read {
            end,
            deltas,
            rejected,
            digest: DigestUpdate::Replace(digest),
        })
    }

    /// The changes after the position, with each changed credential as it is now, in one
    /// statement (one snapshot, one round trip) that also checks the position; `Err(why)`
    /// when the check says a snapshot is needed instead.
    async fn changes(
        &self,
        client: &Client,
        position: Position,
        sent: Instant,
    ) -> Result<Result<Read, Why>, ReadError> {
        let store = &self.source.store;
        let domains = &self.source.domains;
        let applied = position.applied;
        let rows = match &self.prepared {
            Some(statement) => client.query(statement, &[&applied, domains]).await?,
            None => {
                let sql = store.sql(CHANGES);
                client.query(&sql, &[&applied, domains]).await?
            }
        };
        // The settings row makes sure one row comes back; its log end is the statement's.
        let Some(first) = rows.first() else {
            return Err(ReadError::Store("the store has no settings row".into()));
        };
        let end = LogEnd::read(first, CHANGE_COLUMNS, sent).map_err(ReadError::Store)?;
        match position.next(&end) {
            Next::Snapshot(why) => return Ok(Err(why)),
            Next::Proved(_) | Next::CatchUp => {}
        }
        // The last change of each credential decides; the joined row says what it is now.
        let mut order: Vec<(Kind, String, String)> = Vec::new();
        let mut now: HashMap<(Kind, String, String), &Row> = HashMap::new();
        for row in &rows {
            let (Ok(Some(_)), Some(kind), Some(domain), Some(ident)) = (
                row.try_get::<_, Option<i64>>(0),
                text(row, 1),
                text(row, 2),
                text(row, 3),
            ) else {
                continue; // no change after `applied`
            };
            if !domains.contains(&domain) {
                continue; // not one of ours (the statement already filters)
            }
            let kind = if kind == "curve" {
                Kind::Curve
            } else {
                Kind::Plain
            };
            let key = (kind, domain, ident);
            if now.insert(key.clone(), row).is_none() {
                order.push(key);
            }
        }
        let mut deltas = Vec::new();
        let mut rejected = Vec::new();
        let mut digest = Vec::with_capacity(order.len());
        for key in order {
            let row = now[&key];
            let (kind, domain, ident) = key;
            let id = self.digest.ident(kind, &domain, &ident);
            match kind {
                Kind::Curve => {
                    // The credential as the store's digest counts it: enabled rows only.
                    let enabled = text(row, 4).is_some()
                        && row.try_get::<_, Option<bool>>(8).ok().flatten() == Some(true);
                    digest.push((id, if enabled { row.try_get(10).ok() } else { None }));
                    let entry = if enabled {
                        match curve_row(row, 2, 4).and_then(|row| row.entry()) {
                            Ok(entry) => Some(entry),
                            Err(refused) => {
                                rejected.push(refused);
                                None
                            }
                        }
                    } else {
                        None
                    };
                    match (entry, key_of(&ident)) {
                        (Some(entry), _) => deltas.push(Change::AddCurveKeys {
                            domain,
                            entries: vec![entry],
                        }),
                        // Gone, disabled or refused: any earlier version goes.
                        (None, Some(key)) => deltas.push(Change::RemoveCurveKeys {
                            domain,
                            keys: vec![key],
                        }),
                        (None, None) => {} // never installable, nothing to remove
                    }
                }
                Kind::Plain => {
                    let enabled = text(row, 11).is_some()
                        && row.try_get::<_, Option<bool>>(13).ok().flatten() == Some(true);
                    digest.push((id, if enabled { row.try_get(14).ok() } else { None }));
                    let hash = if enabled {
                        let decoded =
                            plain_row(row, 2, 11).and_then(|row| row.hash(&self.source.limits));
                        match decoded {
                            Ok(hash) => Some(hash),
                            Err(refused) => {
                                rejected.push(refused);
                                None
                            }
                        }
                    } else {
                        None
                    };
                    deltas.push(match hash {
                        Some(hash) => Change::AddPlainUsers {
                            domain,
                            users: vec![(ident.into_bytes(), hash)],
                        },
                        None => Change::RemovePlainUsers {
                            domain,
                            users: vec![ident.into_bytes()],
                        },
                    });
                }
            }
        }
        Ok(Ok(Read {
            end,
            deltas,
            rejected,
            digest: DigestUpdate::Rows(digest),
        }))
    }

    /// Hands deltas to the policy actor, with the sending time of the read that proves them
    /// complete (if any).
    async fn apply(
        &self,
        seq: Option<i64>,
        deltas: Vec<Change>,
        proof: Option<Instant>,
    ) -> Applied {
        let applied = self.link.apply.send(Apply {
            source: self.id,
            seq,
            changes: deltas,
            proof,
        });
        match applied.await {
            Ok(Ok(())) => Applied::Done,
            Ok(Err(error)) => {
                warn!(target: LOG_TARGET, "credential source {:?}: {error}", self.source.name());
                Applied::Failed
            }
            Err(_) => Applied::Gone,
        }
    }

    async fn report(
        &mut self,
        connected: bool,
        error: Option<String>,
        rejected: u64,
        reconnected: bool,
    ) {
        let progress = std::mem::take(&mut self.progress);
        let _ = self
            .link
            .report
            .send(Report {
                source: self.id,
                connected,
                error,
                rejected,
                reconnected,
                progress,
            })
            .await;
    }
}

/// Why a read of the store failed.
#[derive(Debug)]
enum ReadError {
    /// The database refused, or the connection failed.
    Db(tokio_postgres::Error),
    /// The store answered what no store of this schema version would.
    Store(String),
}

impl From<tokio_postgres::Error> for ReadError {
    fn from(error: tokio_postgres::Error) -> Self {
        ReadError::Db(error)
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Db(error) => f.write_str(&postgres_cause(error)),
            ReadError::Store(error) => write!(f, "{error}"),
        }
    }
}

/// A text column, if it is there and text.
fn text(row: &Row, column: usize) -> Option<String> {
    row.try_get::<_, Option<String>>(column).ok().flatten()
}

/// A `curve_keys` row's metadata as two columns — its names, and its values in the same
/// order — for the row `k`; the names are NULL when the metadata is not a JSON object (so
/// no row's metadata can fail a read).
macro_rules! metadata_columns {
    () => {
        "CASE WHEN jsonb_typeof(k.metadata) = 'object' THEN ARRAY(SELECT e.key
             FROM jsonb_each_text(CASE WHEN jsonb_typeof(k.metadata) = 'object'
                 THEN k.metadata END) e ORDER BY e.key) END,
         ARRAY(SELECT e.value
             FROM jsonb_each_text(CASE WHEN jsonb_typeof(k.metadata) = 'object'
                 THEN k.metadata END) e ORDER BY e.key)"
    };
}

/// Every enabled key of the domains `$1`: domain, key, user id, metadata names and values,
/// enabled, expiry, row hash.
const CURVE_SNAPSHOT: &str = concat!(
    "SELECT k.domain, k.public_key, k.user_id, ",
    metadata_columns!(),
    ", k.enabled, k.expires_at, ",
    curve_hash!(),
    " FROM {schema}.curve_keys k WHERE k.domain = ANY($1) AND k.enabled"
);

/// Every enabled user of the domains `$1`: domain, username, hash, enabled, row hash.
const PLAIN_SNAPSHOT: &str = concat!(
    "SELECT u.domain, u.username, u.password_hash, u.enabled, ",
    plain_hash!(),
    " FROM {schema}.plain_users u WHERE u.domain = ANY($1) AND u.enabled"
);

/// How many columns [`CHANGES`] has before the check's.
const CHANGE_COLUMNS: usize = 15;

/// The change log after `$1` for the domains `$2`, each joined with its credential as it is
/// now (with its row hash), then the check of the position `$1` (columns from
/// [`CHANGE_COLUMNS`]) — in one statement, so one snapshot. The settings row makes sure one
/// row comes back.
const CHANGES: &str = concat!(
    "SELECT c.seq, c.kind, c.domain, c.ident,
        k.public_key, k.user_id, ",
    metadata_columns!(),
    ", k.enabled, k.expires_at, ",
    curve_hash!(),
    ", u.username, u.password_hash, u.enabled, ",
    plain_hash!(),
    ", ",
    check_columns!(),
    "
    FROM ",
    check_from!(),
    "
    LEFT JOIN ({schema}.changes c
        LEFT JOIN {schema}.curve_keys k
            ON c.kind = 'curve' AND k.domain = c.domain AND k.public_key = c.ident
        LEFT JOIN {schema}.plain_users u
            ON c.kind = 'plain' AND u.domain = c.domain AND u.username = c.ident)
    ON c.seq > $1 AND c.domain = ANY($2)
    ORDER BY c.seq"
);

/// The `curve_keys` row with its domain in column `domain` and its key, user id, metadata
/// names and values, enabled and expiry in the six columns from `key`: decoded column by
/// column, so that a column that does not decode refuses this row only (by name, if its
/// identity decoded).
fn curve_row(row: &Row, domain: usize, key: usize) -> Result<CurveRow, Refused> {
    let (Some(domain), Some(public_key)) = (text(row, domain), text(row, key)) else {
        return Err(Refused {
            why: "curve_keys row without a domain or key".into(),
            named: false,
        });
    };
    let named = key_of(&public_key).is_some();
    let refused = |column: &str, e: tokio_postgres::Error| Refused {
        why: format!("curve_keys row ({domain:?}, {public_key:?}): bad {column}: {e}"),
        named,
    };
    Ok(CurveRow {
        user_id: row.try_get(key + 1).map_err(|e| refused("user id", e))?,
        names: row.try_get(key + 2).map_err(|e| refused("metadata", e))?,
        values: row.try_get(key + 3).map_err(|e| refused("metadata", e))?,
        enabled: row.try_get(key + 4).map_err(|e| refused("enabled", e))?,
        expires: row
            .try_get::<_, Option<Micros>>(key + 5)
            .map_err(|e| refused("expiry", e))?,
        domain,
        public_key,
    })
}

/// The `plain_users` row with its domain in column `domain` and its username, hash and
/// enabled in the three columns from `user`, decoded as [`curve_row`] does.
fn plain_row(row: &Row, domain: usize, user: usize) -> Result<PlainRow, Refused> {
    let (Some(domain), Some(username)) = (text(row, domain), text(row, user)) else {
        return Err(Refused {
            why: "plain_users row without a domain or username".into(),
            named: false,
        });
    };
    let refused = |column: &str, e: tokio_postgres::Error| Refused {
        why: format!("plain_users row ({domain:?}, {username:?}): bad {column}: {e}"),
        named: true,
    };
    Ok(PlainRow {
        password_hash: row.try_get(user + 1).map_err(|e| refused("hash", e))?,
        enabled: row.try_get(user + 2).map_err(|e| refused("enabled", e))?,
        domain,
        username,
    })
}
