//! The source's task, on the authenticator's actix runtime: connect, `LISTEN`, snapshot,
//! follow the change log; heartbeat, reconnect with backoff. Each read that proves the source
//! up to date ([`position`](super::position)) moves its domains' deadline forward; past it,
//! every decision refuses them, whatever this task is doing (connecting, waiting for a hung
//! query, sleeping before a reconnect).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use futures::channel::oneshot;
use futures::StreamExt as _;
use log::{debug, info, warn};
use tokio::sync::{mpsc, watch};
use tokio_postgres::{AsyncMessage, Client, Row};

use super::position::{log_end, store_id, LogEnd, Next, Position, HEARTBEAT};
use super::rows::{key_of, CurveRow, PlainRow};
use super::PostgresSource;
use crate::certs::CertStore;
use crate::messages::error::postgres_cause;
use crate::messages::store::{Apply, Report, SourceId, StoreLink, Unserve};
use crate::policy::Change;
use crate::policy::HashedTable;

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

struct Follower {
    source: PostgresSource,
    link: StoreLink,
    id: SourceId,
    /// The change-log position in force, in its store; `None`: a snapshot is needed.
    position: Option<Position>,
    /// When the read that last proved the source up to date was sent (for the log).
    proved: Option<Instant>,
    /// The staleness warning was logged since the last proof.
    warned: bool,
    synced: watch::Sender<Option<super::Position>>,
}

/// What a read brought: the log end it found (and when it was sent), what changed up to it,
/// and the rows refused as malformed.
struct Read {
    end: LogEnd,
    deltas: Vec<Change>,
    rejected: Vec<String>,
    /// The store's uuid, read with a snapshot (a read of the log keeps the store's).
    uuid: Option<super::StoreUuid>,
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
        proved: None,
        warned: false,
        synced,
    };
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
    debug!("credential source {:?} stopped", follower.source.name());
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
                "credential source {:?}: nothing proved it up to date for {max:?} \
                 (max_staleness): its domains refuse everyone until it catches up",
                self.source.name()
            );
        }
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
        let heartbeat_sql = store.sql(HEARTBEAT);
        // LISTEN before the snapshot: nothing committed after the snapshot goes unnoticed.
        let listen = format!("LISTEN {}", store.channel());
        if let Err(e) = self.timed(client.batch_execute(&listen)).await {
            return lost("LISTEN failed")(e);
        }
        if let Err(ended) = self.catch_up(&client).await {
            return ended;
        }
        self.report(true, None, 0, reconnect).await;
        info!(
            "credential source {:?} following {} (change {})",
            self.source.name(),
            store.schema(),
            self.position.map_or(0, |p| p.applied)
        );
        let mut heartbeat = tokio::time::interval(self.source.heartbeat_interval());
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.tick().await;
        loop {
            tokio::select! {
                notice = notified.recv() => match notice {
                    Some(Ok(payload)) => {
                        let mut seq = payload.parse::<i64>().unwrap_or(i64::MAX);
                        // One read covers every notification already queued.
                        while let Ok(more) = notified.try_recv() {
                            match more {
                                Ok(more) => seq = seq.max(more.parse().unwrap_or(i64::MAX)),
                                Err(error) => {
                                    return Ended::Lost(format!("connection lost: {error}"))
                                }
                            }
                        }
                        // Nothing new: nothing to read (and a notification proves nothing).
                        if self.position.is_some_and(|p| seq <= p.applied) {
                            continue;
                        }
                        if let Err(ended) = self.catch_up(&client).await {
                            return ended;
                        }
                    }
                    Some(Err(error)) => return Ended::Lost(format!("connection lost: {error}")),
                    None => return Ended::Lost("connection closed".into()),
                },
                _ = heartbeat.tick() => {
                    // The proof dates from the sending: take the time before the query goes.
                    let sent = Instant::now();
                    let end = match self.timed(client.query_one(&heartbeat_sql, &[])).await {
                        Ok(row) => LogEnd::read(&row, 0, sent).map_err(|e| e.to_string()),
                        Err(e) => Err(e),
                    };
                    let end = match end {
                        Ok(end) => end,
                        Err(e) => return lost("heartbeat failed")(e),
                    };
                    match Position::next(self.position, &end) {
                        Next::Proved(sent) => {
                            if let Applied::Gone = self.prove(sent).await {
                                return Ended::Stop;
                            }
                        }
                        next => {
                            if next == Next::Snapshot {
                                self.position = None;
                            }
                            if let Err(ended) = self.catch_up(&client).await {
                                return ended;
                            }
                        }
                    }
                }
            }
        }
    }

    /// A query under the heartbeat's deadline (a silent partition must not hang it).
    async fn timed<T>(
        &self,
        query: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, String> {
        let within = self.source.heartbeat_interval();
        match tokio::time::timeout(within, query).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(postgres_cause(&error)),
            Err(_) => Err(format!("no answer within {within:?}")),
        }
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

    /// Reads a snapshot (when none is in force, or the log was pruned past it, or the store
    /// is another) or the change log after the position in force, and applies it; the read
    /// proves the position as of its sending.
    async fn catch_up(&mut self, client: &Client) -> Result<(), Ended> {
        // A snapshot may be large: it gets the staleness allowance, not the heartbeat's.
        let deadline = self.source.max_staleness.max(self.source.heartbeat);
        let sent = Instant::now();
        let read = tokio::time::timeout(deadline, self.read(client, sent));
        let Read {
            end,
            deltas,
            rejected,
            uuid,
        } = match read.await {
            Ok(Ok(read)) => read,
            Ok(Err(error)) => return Err(lost("reading the store failed")(postgres_cause(&error))),
            Err(_) => {
                return Err(Ended::Lost(format!(
                    "reading the store took over {deadline:?}"
                )))
            }
        };
        let mut error = rejected.last().cloned();
        for row in &rejected {
            warn!("credential source {:?}: refused {row}", self.source.name());
        }
        // Once applied, the position is the log end the read found: a proof from its sending.
        match self.apply(Some(end.seq), deltas, Some(end.sent)).await {
            Applied::Gone => return Err(Ended::Stop),
            Applied::Failed => {
                // Not in force as read: the next read is a snapshot, and nothing is proved.
                self.position = None;
                error = Some("a change from the store was refused (see the log)".into());
            }
            Applied::Done => {
                self.position = Some(Position {
                    store: end.store,
                    applied: end.seq,
                });
                self.proved = self.proved.max(Some(end.sent));
                self.warned = false;
                // Published with the store's uuid, for writers waiting for their change.
                let uuid = uuid.or_else(|| self.synced.borrow().map(|p| p.store));
                if let Some(store) = uuid {
                    let seq = end.seq;
                    let _ = self.synced.send(Some(super::Position { store, seq }));
                }
            }
        }
        self.report(true, error, rejected.len() as u64, false).await;
        Ok(())
    }

    /// The log end and what changed up to it: a snapshot in one `REPEATABLE READ`
    /// transaction, or the log after the position in force. The log needs no transaction:
    /// its rows are read before the credentials they name, so those are at least as new,
    /// and applying a credential's current state twice changes nothing.
    async fn read(&self, client: &Client, sent: Instant) -> Result<Read, tokio_postgres::Error> {
        let store = &self.source.store;
        if let Some(position) = self.position {
            if let Some(changes) = self.changes(client, position, sent).await? {
                return Ok(changes);
            }
        }
        let position = store.sql(concat!(
            "SELECT ",
            log_end!(),
            ", ",
            store_id!(),
            ", (SELECT store_id::text FROM {schema}.settings)"
        ));
        // A transaction needs `&mut Client`; the same statements by hand need only `&`.
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        let result = async {
            let row = client.query_one(&position, &[]).await?;
            let end = LogEnd::read(&row, 0, sent)?;
            let uuid = row.try_get::<_, String>(3)?.parse().ok();
            let read = self.snapshot(client, &self.source.domains, end).await?;
            Ok(Read { uuid, ..read })
        }
        .await;
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        let ended = client.batch_execute(end).await;
        let read = result?;
        ended?;
        Ok(read)
    }

    async fn snapshot(
        &self,
        client: &Client,
        domains: &[String],
        end: LogEnd,
    ) -> Result<Read, tokio_postgres::Error> {
        let store = &self.source.store;
        let mut keys: BTreeMap<&str, CertStore> = domains
            .iter()
            .map(|d| (d.as_str(), CertStore::new()))
            .collect();
        let mut users: BTreeMap<&str, HashedTable> = domains
            .iter()
            .map(|d| (d.as_str(), HashedTable::new()))
            .collect();
        let mut rejected = Vec::new();
        let sql = store.sql(&format!(
            "{CURVE_COLUMNS} WHERE domain = ANY($1) AND enabled"
        ));
        let rows = client.query_raw(&sql, [&domains]).await?;
        futures::pin_mut!(rows);
        while let Some(row) = rows.next().await {
            let row = curve_row(&row?)?;
            match row.entry() {
                Ok(entry) => {
                    if let Some(set) = keys.get_mut(row.domain.as_str()) {
                        set.upsert(entry.key, entry.metadata, entry.user_id, entry.expires);
                    }
                }
                Err(error) => rejected.push(error),
            }
        }
        let sql = store.sql(&format!(
            "{PLAIN_COLUMNS} WHERE domain = ANY($1) AND enabled"
        ));
        for row in client.query(&sql, &[&domains]).await? {
            let row = plain_row(&row)?;
            match row.hash(&self.source.limits) {
                Ok(hash) => {
                    if let Some(table) = users.get_mut(row.domain.as_str()) {
                        table.upsert(row.username.into_bytes(), hash);
                    }
                }
                Err(error) => rejected.push(error),
            }
        }
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
            uuid: None,
        })
    }

    /// The changes after the position, with each changed credential as it is now, in one
    /// statement (one snapshot, one round trip); `None` when a snapshot is needed instead:
    /// the log was pruned past the position, or the log end says the position does not count
    /// in this store ([`Next::Snapshot`]).
    async fn changes(
        &self,
        client: &Client,
        position: Position,
        sent: Instant,
    ) -> Result<Option<Read>, tokio_postgres::Error> {
        let store = &self.source.store;
        let domains = &self.source.domains;
        let applied = position.applied;
        let rows = client
            .query(&store.sql(CHANGES), &[&applied, domains])
            .await?;
        // The settings row makes sure one row comes back; its log end is the statement's.
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let end = LogEnd::read(first, 13, sent)?;
        if Position::next(Some(position), &end) == Next::Snapshot {
            return Ok(None);
        }
        // The last change of each credential decides; the joined row says what it is now.
        let mut order: Vec<(String, String, String)> = Vec::new();
        let mut now: HashMap<(String, String, String), Current> = HashMap::new();
        for row in &rows {
            let pruned: i64 = row.try_get(0)?;
            if pruned > applied {
                return Ok(None);
            }
            if row.try_get::<_, Option<i64>>(1)?.is_none() {
                continue; // no change after `applied`
            }
            let (kind, domain, ident): (String, String, String) =
                (row.try_get(2)?, row.try_get(3)?, row.try_get(4)?);
            if !domains.contains(&domain) {
                continue; // not one of ours (the statement already filters)
            }
            let current = if kind == "curve" {
                match row.try_get::<_, Option<String>>(5)? {
                    None => Current::Gone,
                    Some(public_key) => Current::Curve(CurveRow {
                        domain: domain.clone(),
                        public_key,
                        user_id: row.try_get(6)?,
                        names: row.try_get(7)?,
                        values: row.try_get(8)?,
                        enabled: row.try_get(9)?,
                        expires: row.try_get(10)?,
                    }),
                }
            } else {
                match row.try_get::<_, Option<String>>(11)? {
                    None => Current::Gone,
                    Some(password_hash) => Current::Plain(PlainRow {
                        domain: domain.clone(),
                        username: ident.clone(),
                        password_hash,
                        enabled: row.try_get(12)?,
                    }),
                }
            };
            let key = (kind, domain, ident);
            if now.insert(key.clone(), current).is_none() {
                order.push(key);
            }
        }
        let mut deltas = Vec::new();
        let mut rejected = Vec::new();
        for key in order {
            let current = now.remove(&key).unwrap_or(Current::Gone);
            let (kind, domain, ident) = key;
            if kind == "curve" {
                let entry = match current {
                    Current::Curve(row) if row.enabled => {
                        row.entry().map_err(|e| rejected.push(e)).ok()
                    }
                    _ => None,
                };
                match (entry, key_of(&ident)) {
                    (Some(entry), _) => deltas.push(Change::AddCurveKeys {
                        domain,
                        entries: vec![entry],
                    }),
                    (None, Some(key)) => deltas.push(Change::RemoveCurveKeys {
                        domain,
                        keys: vec![key],
                    }),
                    (None, None) => {} // never installable, nothing to remove
                }
            } else {
                let hash = match current {
                    Current::Plain(row) if row.enabled => row
                        .hash(&self.source.limits)
                        .map_err(|e| rejected.push(e))
                        .ok(),
                    _ => None,
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
        Ok(Some(Read {
            end,
            deltas,
            rejected,
            uuid: None,
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
                warn!("credential source {:?}: {error}", self.source.name());
                Applied::Failed
            }
            Err(_) => Applied::Gone,
        }
    }

    async fn report(
        &self,
        connected: bool,
        error: Option<String>,
        rejected: u64,
        reconnected: bool,
    ) {
        let _ = self
            .link
            .report
            .send(Report {
                source: self.id,
                connected,
                error,
                rejected,
                reconnected,
            })
            .await;
    }
}

const CURVE_COLUMNS: &str = "SELECT domain, public_key, user_id,
        ARRAY(SELECT e.key FROM jsonb_each_text(metadata) e ORDER BY e.key),
        ARRAY(SELECT e.value FROM jsonb_each_text(metadata) e ORDER BY e.key),
        enabled, expires_at
    FROM {schema}.curve_keys";

/// A credential named by the change log, as it is now.
enum Current {
    Gone,
    Curve(CurveRow),
    Plain(PlainRow),
}

/// The change log after `$1` for the domains `$2`, each joined with its credential as it is
/// now, the pruning mark, and the log end and store (columns 13 to 15) — in one statement, so
/// one snapshot. The settings row makes sure one row comes back.
const CHANGES: &str = concat!(
    "SELECT s.pruned_through, c.seq, c.kind, c.domain, c.ident,
        k.public_key, k.user_id,
        ARRAY(SELECT e.key FROM jsonb_each_text(k.metadata) e ORDER BY e.key),
        ARRAY(SELECT e.value FROM jsonb_each_text(k.metadata) e ORDER BY e.key),
        k.enabled, k.expires_at,
        u.password_hash, u.enabled, ",
    log_end!(),
    ", ",
    store_id!(),
    "
    FROM {schema}.settings s
    LEFT JOIN ({schema}.changes c
        LEFT JOIN {schema}.curve_keys k
            ON c.kind = 'curve' AND k.domain = c.domain AND k.public_key = c.ident
        LEFT JOIN {schema}.plain_users u
            ON c.kind = 'plain' AND u.domain = c.domain AND u.username = c.ident)
    ON c.seq > $1 AND c.domain = ANY($2)
    ORDER BY c.seq"
);

const PLAIN_COLUMNS: &str =
    "SELECT domain, username, password_hash, enabled FROM {schema}.plain_users";

fn curve_row(row: &Row) -> Result<CurveRow, tokio_postgres::Error> {
    Ok(CurveRow {
        domain: row.try_get(0)?,
        public_key: row.try_get(1)?,
        user_id: row.try_get(2)?,
        names: row.try_get(3)?,
        values: row.try_get(4)?,
        enabled: row.try_get(5)?,
        expires: row.try_get(6)?,
    })
}

fn plain_row(row: &Row) -> Result<PlainRow, tokio_postgres::Error> {
    Ok(PlainRow {
        domain: row.try_get(0)?,
        username: row.try_get(1)?,
        password_hash: row.try_get(2)?,
        enabled: row.try_get(3)?,
    })
}
