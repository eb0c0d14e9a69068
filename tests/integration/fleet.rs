//! Many servers, one credential store: authenticators following a real PostgreSQL (at
//! 127.0.0.1:5432, or `ZAP_TEST_DATABASE`) through `LISTEN/NOTIFY`, judged by real CURVE
//! and PLAIN handshakes. Each test works in a schema (and NOTIFY channel) of its own, dropped
//! at the end even when the test fails. Tests wait for the sequence number a source applied,
//! never for time to pass.

use std::time::{Duration, Instant};

use crate::common::*;
use actix_zap::messages::{ConfigureCurve, RemoveCurveKeys, RemovePlainUsers, TakeOver};
use actix_zap::policy::PolicyError;
use actix_zap::postgres::{PostgresSource, SourceHandle, Store};
use actix_zap::{ConfigError, ThreadAuthenticator};
use futures::executor::block_on;

/// The store's revocations win over argon2 and user code under way.
mod held;
mod startup;
mod tls;
/// Writes through the library and zapctl, `synced`, roles and pruning (uses the helpers here).
mod writes;

/// A connection for the test's own SQL, with the schema it created; drops the schema (and
/// the test's role, if any) when the test ends, however it ends.
pub(crate) struct Db {
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) client: tokio_postgres::Client,
    pub(crate) store: Store,
    roles: Vec<String>,
}

pub(crate) fn conninfo() -> String {
    std::env::var("ZAP_TEST_DATABASE")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=test".into())
}

impl Db {
    pub(crate) fn new(test: &str) -> Db {
        init_logging();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let connected = runtime.block_on(async {
            let (client, connection) =
                tokio_postgres::connect(&conninfo(), tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            Ok::<_, tokio_postgres::Error>(client)
        });
        let mut client = connected.unwrap_or_else(|error| {
            panic!(
                "PostgreSQL is not reachable at {:?} ({error}). These tests need it: start \
                 PostgreSQL 15 on 127.0.0.1:5432 with trust authentication and a database \
                 `test` (Debian: apt-get install postgresql && pg_ctlcluster 15 main start), \
                 or set ZAP_TEST_DATABASE to a libpq connection string.",
                conninfo()
            )
        });
        let schema = format!("fleet_{}_{test}", std::process::id());
        let store = Store::new(&schema).unwrap();
        runtime.block_on(store.drop_schema(&client)).unwrap();
        runtime.block_on(store.migrate(&mut client)).unwrap();
        Db {
            runtime,
            client,
            store,
            roles: Vec::new(),
        }
    }

    pub(crate) fn execute(&self, sql: &str) -> i64 {
        let sql = sql.replace("{schema}", self.store.schema());
        self.runtime
            .block_on(self.client.batch_execute(&sql))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        self.latest()
    }

    /// The newest change-log sequence number.
    pub(crate) fn latest(&self) -> i64 {
        let sql = format!(
            "SELECT coalesce(max(seq), 0) FROM {}.changes",
            self.store.schema()
        );
        self.runtime
            .block_on(self.client.query_one(&sql, &[]))
            .unwrap()
            .get(0)
    }

    pub(crate) fn add_key(&self, keys: &Keys, extra: &str) -> i64 {
        self.execute(&format!(
            "INSERT INTO {{schema}}.curve_keys (domain, public_key{}) VALUES ('fleet', '{}'{})",
            if extra.is_empty() { "" } else { ", user_id" },
            keys.public.to_z85(),
            if extra.is_empty() {
                String::new()
            } else {
                format!(", '{extra}'")
            }
        ))
    }

    pub(crate) fn set_key(&self, keys: &Keys, set: &str) -> i64 {
        self.execute(&format!(
            "UPDATE {{schema}}.curve_keys SET {set} WHERE public_key = '{}'",
            keys.public.to_z85()
        ))
    }

    pub(crate) fn add_user(&self, name: &str, password: &str) -> i64 {
        self.execute(&format!(
            "INSERT INTO {{schema}}.plain_users (domain, username, password_hash)
             VALUES ('fleet', '{name}', '{}')",
            cheap_phc(password)
        ))
    }

    /// Ends every connection of the sources of this test.
    pub(crate) fn terminate_sources(&self) -> i64 {
        let sql = format!(
            "SELECT count(pg_terminate_backend(pid))::bigint FROM pg_stat_activity
             WHERE application_name LIKE 'actix-zap/{}%'",
            self.store.schema()
        );
        self.runtime
            .block_on(self.client.query_one(&sql, &[]))
            .unwrap()
            .get(0)
    }

    /// A login role of the test's own that may read the store; `ALTER ROLE … NOLOGIN` then
    /// keeps its sources out.
    pub(crate) fn role(&mut self) -> String {
        self.make_role(
            "reader",
            "GRANT USAGE ON SCHEMA {schema} TO {role};
             GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role};
             GRANT SELECT ON SEQUENCE {schema}.changes_seq_seq TO {role};",
        )
    }

    /// A login role of the test's own, `<schema>_<name>`, given `grants` (with `{role}` for
    /// its name); dropped when the test ends.
    pub(crate) fn make_role(&mut self, name: &str, grants: &str) -> String {
        let role = format!("{}_{name}", self.store.schema());
        self.execute(&format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN; {}",
            grants.replace("{role}", &role)
        ));
        self.roles.push(role.clone());
        role
    }

    /// A connection of its own (as `role`, if any), driven by the test's runtime.
    pub(crate) fn connect(&self, role: Option<&str>) -> tokio_postgres::Client {
        let conninfo = match role {
            Some(role) => format!("{} user={role}", conninfo()),
            None => conninfo(),
        };
        let (client, connection) = self
            .runtime
            .block_on(tokio_postgres::connect(&conninfo, tokio_postgres::NoTls))
            .unwrap();
        self.runtime.spawn(connection);
        client
    }

    /// Runs `sql` (with `{schema}`) on `client`: the database's error, if any.
    pub(crate) fn try_on(&self, client: &tokio_postgres::Client, sql: &str) -> Result<(), String> {
        let sql = self.store.sql(sql);
        (self.runtime.block_on(client.batch_execute(&sql))).map_err(|e| match e.as_db_error() {
            Some(db) => db.message().to_owned(),
            None => e.to_string(),
        })
    }

    /// Where the change log ends: its newest number, or the pruning mark beyond it.
    pub(crate) fn end(&self) -> i64 {
        let sql = self.store.sql(
            "SELECT greatest((SELECT coalesce(max(seq), 0) FROM {schema}.changes),
                             (SELECT pruned_through FROM {schema}.settings))",
        );
        self.runtime
            .block_on(self.client.query_one(&sql, &[]))
            .unwrap()
            .get(0)
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = self.runtime.block_on(self.store.drop_schema(&self.client));
        for role in &self.roles {
            let sql = format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}';
                 DROP ROLE IF EXISTS {role}"
            );
            let _ = self.runtime.block_on(self.client.batch_execute(&sql));
        }
    }
}

/// One server of the fleet: its context, authenticator, source, and a CURVE and a PLAIN
/// server socket in domain `fleet`.
pub(crate) struct Member {
    context: zmq::Context,
    pub(crate) auth: ThreadAuthenticator,
    source: Option<SourceHandle>,
    name: String,
    server: Keys,
    curve: Listening,
    plain: Listening,
}

impl Member {
    pub(crate) fn start(
        db: &Db,
        n: usize,
        tweak: impl FnOnce(PostgresSource) -> PostgresSource,
    ) -> Member {
        Member::start_as(db, n, &conninfo(), tweak)
    }

    pub(crate) fn start_as(
        db: &Db,
        n: usize,
        conninfo: &str,
        tweak: impl FnOnce(PostgresSource) -> PostgresSource,
    ) -> Member {
        let (context, auth) = started();
        let name = format!("{}-{n}", db.store.schema());
        let source = PostgresSource::new(conninfo, ["fleet"])
            .unwrap()
            .store(db.store.clone())
            .named(name.clone())
            .heartbeat(Duration::from_millis(500))
            .backoff(Duration::from_millis(20), Duration::from_millis(200));
        let source = block_on(auth.handle().serve(tweak(source))).unwrap();
        let server = Keys::generate();
        let curve = Listening::new(&context, &Server::Curve(server.clone()), Some("fleet"));
        let plain = Listening::new(&context, &Server::Plain, Some("fleet"));
        Member {
            context,
            auth,
            source: Some(source),
            name,
            server,
            curve,
            plain,
        }
    }

    /// Waits until the changes up to `seq` are in force here.
    pub(crate) fn at(&self, seq: i64) -> &Member {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let stats = self.auth.stats().unwrap();
            if stats
                .sources
                .get(&self.name)
                .is_some_and(|s| s.applied_seq >= seq)
            {
                return self;
            }
            assert!(
                Instant::now() < deadline,
                "source {} never applied change {seq}: {:?}",
                self.name,
                stats.sources
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub(crate) fn curve(&self, client: &Keys) -> Outcome {
        let client = Client::Curve(self.server.public, client.clone());
        self.curve.attempt(&self.context, &client)
    }

    pub(crate) fn plain(&self, user: &'static str, password: &'static str) -> Outcome {
        self.plain
            .attempt(&self.context, &Client::Plain(user, password))
    }

    /// Connects a PLAIN client that sends one message, without waiting: its outcome is the
    /// next [`plain_outcome`](Self::plain_outcome). Keep the socket to keep it up.
    pub(crate) fn connect_plain(&self, user: &'static str, password: &'static str) -> zmq::Socket {
        self.plain
            .connect(&self.context, &Client::Plain(user, password))
    }

    pub(crate) fn plain_outcome(&self) -> Outcome {
        self.plain.outcome()
    }

    /// Connects a CURVE client that sends one message, without waiting: its outcome is the
    /// next [`curve_outcome`](Self::curve_outcome). Keep the socket to keep it up.
    pub(crate) fn connect_curve(&self, client: &Keys) -> zmq::Socket {
        let client = Client::Curve(self.server.public, client.clone());
        self.curve.connect(&self.context, &client)
    }

    pub(crate) fn curve_outcome(&self) -> Outcome {
        self.curve.outcome()
    }

    pub(crate) fn stats(&self) -> actix_zap::messages::SourceStats {
        self.auth.stats().unwrap().sources[&self.name].clone()
    }

    pub(crate) fn stop(mut self) {
        if let Some(source) = self.source.take() {
            source.stop();
        }
        self.auth.stop();
    }
}

#[test]
fn a_key_disabled_in_the_store_ends_its_open_session() {
    use crate::sessions::{revocation_run, Login};
    let db = Db::new("sessions");
    let (kept, revoked) = (Keys::generate(), Keys::generate());
    db.add_key(&kept, "");
    let added = db.add_key(&revoked, "");
    let member = Member::start(&db, 0, |source| source);
    member.at(added);
    let socket = actix_zap::ServerSocket::curve("fleet", member.server.secret.clone())
        .build_sessions(&member.context, zmq::PULL)
        .unwrap();
    let logins = (
        Login::Curve(member.server.public, kept),
        Login::Curve(member.server.public, revoked.clone()),
    );
    revocation_run(&member.context, socket, logins, None, || {
        let disabled = db.set_key(&revoked, "enabled = false");
        member.at(disabled);
    });
    member.stop();
}

#[test]
fn three_authenticators_follow_adds_disables_enables_and_removals() {
    let db = Db::new("follow");
    let alice = Keys::generate();
    let bob = Keys::generate();
    let before = db.add_key(&alice, "alice");
    // The test ends by checking that no source met an error; a heartbeat of 2 s (its answer
    // may take as long) keeps a loaded machine's slow answer from counting as one (seen once
    // in 20 runs at load 15 with the default 500 ms of these tests).
    let steady = |s: PostgresSource| s.heartbeat(Duration::from_secs(2));
    let fleet: Vec<Member> = (0..3).map(|n| Member::start(&db, n, steady)).collect();
    for member in &fleet {
        member.at(before).curve(&alice).assert_admitted("alice");
        member.curve(&bob).assert_refused(400);
    }
    let added = db.add_key(&bob, "");
    for member in &fleet {
        member
            .at(added)
            .curve(&bob)
            .assert_admitted(&bob.public.to_z85());
    }
    let disabled = db.set_key(&alice, "enabled = false");
    for member in &fleet {
        member.at(disabled).curve(&alice).assert_refused(400);
    }
    let enabled = db.set_key(&alice, "enabled = true");
    for member in &fleet {
        member.at(enabled).curve(&alice).assert_admitted("alice");
    }
    let expired = db.set_key(&alice, "expires_at = now() - interval '1 second'");
    for member in &fleet {
        member.at(expired).curve(&alice).assert_refused(400);
    }
    let removed = db.execute(&format!(
        "DELETE FROM {{schema}}.curve_keys WHERE public_key = '{}'",
        bob.public.to_z85()
    ));
    for member in &fleet {
        member.at(removed).curve(&bob).assert_refused(400);
    }
    // PLAIN users: added, disabled, enabled, removed.
    let added = db.add_user("carol", "pw");
    for member in &fleet {
        member
            .at(added)
            .plain("carol", "pw")
            .assert_admitted("carol");
        member.plain("carol", "wrong").assert_refused(400);
    }
    let disabled = db.execute("UPDATE {schema}.plain_users SET enabled = false");
    for member in &fleet {
        member.at(disabled).plain("carol", "pw").assert_refused(400);
    }
    let enabled = db.execute("UPDATE {schema}.plain_users SET enabled = true");
    for member in &fleet {
        member
            .at(enabled)
            .plain("carol", "pw")
            .assert_admitted("carol");
    }
    let removed = db.execute("DELETE FROM {schema}.plain_users");
    for member in &fleet {
        member.at(removed).plain("carol", "pw").assert_refused(400);
        let stats = member.stats();
        assert!(stats.connected && stats.last_error.is_none(), "{stats:?}");
    }
    fleet.into_iter().for_each(Member::stop);
}

#[test]
fn a_terminated_listener_reconnects_and_applies_a_disable_made_while_disconnected() {
    let mut db = Db::new("reconnect");
    let role = db.role();
    let keys: Vec<Keys> = (0..6).map(|_| Keys::generate()).collect();
    let first = db.add_key(&keys[0], "");
    let conninfo = format!("{} user={role}", conninfo());
    let fleet: Vec<Member> = (0..3)
        .map(|n| Member::start_as(&db, n, &conninfo, |s| s))
        .collect();
    for member in &fleet {
        member
            .at(first)
            .curve(&keys[0])
            .assert_admitted(&keys[0].public.to_z85());
    }
    // A stream of changes, with the listeners cut off in the middle of it; while they cannot
    // log in, key 0 is disabled, so no notification of it can reach them.
    for k in &keys[1..3] {
        db.add_key(k, "");
    }
    db.execute(&format!("ALTER ROLE {role} NOLOGIN"));
    assert!(db.terminate_sources() >= 3, "every source had a connection");
    db.set_key(&keys[0], "enabled = false");
    for k in &keys[3..] {
        db.add_key(k, "");
    }
    let last = db.execute(&format!("ALTER ROLE {role} LOGIN"));
    for member in &fleet {
        member.at(last);
        member.curve(&keys[0]).assert_refused(400);
        for k in &keys[1..] {
            member.curve(k).assert_admitted(&k.public.to_z85());
        }
        let stats = member.stats();
        assert!(stats.reconnects >= 1 && stats.connected, "{stats:?}");
    }
    fleet.into_iter().for_each(Member::stop);
}

#[test]
fn malformed_rows_are_reported_and_refused() {
    let db = Db::new("malformed");
    let good = Keys::generate();
    db.add_key(&good, "");
    // Bad Z85 (right length, '~' is not in the alphabet), a hash asking for 4 GiB, one
    // asking for 1000 passes, and metadata libzmq could not carry.
    let costly = "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0$\
                  AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let slow = "$argon2id$v=19$m=64,t=1000,p=1$c2FsdHNhbHRzYWx0$\
                AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let bad_meta = Keys::generate();
    let snapshot = db.execute(&format!(
        "INSERT INTO {{schema}}.curve_keys (domain, public_key) VALUES ('fleet', '{}');
         INSERT INTO {{schema}}.plain_users (domain, username, password_hash)
             VALUES ('fleet', 'costly', '{costly}'), ('fleet', 'slow', '{slow}');
         INSERT INTO {{schema}}.curve_keys (domain, public_key, metadata)
             VALUES ('fleet', '{}', '{{\"Identity\": \"x\"}}')",
        "~".repeat(40),
        bad_meta.public.to_z85()
    ));
    let member = Member::start(&db, 0, |s| s);
    member.at(snapshot);
    assert_eq!(member.stats().rejected_rows, 4, "{:?}", member.stats());
    member.curve(&good).assert_admitted(&good.public.to_z85());
    member.curve(&bad_meta).assert_refused(400);
    member.plain("costly", "x").assert_refused(400);
    member.plain("slow", "x").assert_refused(400);
    // A good key turned bad by an update is removed, not kept.
    let broken = db.execute(&format!(
        "UPDATE {{schema}}.curve_keys SET metadata = '{{\"Socket-Type\": \"x\"}}'
         WHERE public_key = '{}'",
        good.public.to_z85()
    ));
    member.at(broken).curve(&good).assert_refused(400);
    let stats = member.stats();
    assert_eq!(stats.rejected_rows, 5);
    assert!(stats.last_error.unwrap().contains("metadata"));
    assert!(stats.connected, "the source lives on");
    member.stop();
}

/// The staleness tests' allowance, and the margin they give the machine on top of it.
const MAX_STALENESS: Duration = Duration::from_secs(2);
const MARGIN: Duration = Duration::from_secs(3);

/// Waits (polling with fresh handshakes) until `member` refuses `keys` with the stale store's
/// `500`, which must happen by `by`.
fn refused_as_stale_by(member: &Member, keys: &Keys, by: Instant) {
    loop {
        match member.curve(keys) {
            Outcome::Refused(500) => return,
            Outcome::Admitted(_) => {}
            other => panic!("neither admitted nor refused as stale: {other:?}"),
        }
        assert!(
            Instant::now() < by,
            "still admitted past max_staleness and its margin"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `member` admits `keys` again (within PATIENCE).
fn admitted_again(member: &Member, keys: &Keys) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match member.curve(keys) {
            Outcome::Admitted(_) => return,
            Outcome::Refused(500) => {}
            other => panic!("neither admitted nor refused as stale: {other:?}"),
        }
        assert!(Instant::now() < deadline, "never admitted again");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_store_out_of_reach_is_refused_after_max_staleness_and_admitted_again_once_it_catches_up() {
    let mut db = Db::new("stale");
    let role = db.role();
    let alice = Keys::generate();
    let first = db.add_key(&alice, "");
    let conninfo = format!("{} user={role}", conninfo());
    let member = Member::start_as(&db, 0, &conninfo, |s| s.max_staleness(MAX_STALENESS));
    member
        .at(first)
        .curve(&alice)
        .assert_admitted(&alice.public.to_z85());
    assert!(!member.stats().failed_closed, "{:?}", member.stats());
    db.execute(&format!("ALTER ROLE {role} NOLOGIN"));
    let cut = Instant::now();
    db.terminate_sources();
    refused_as_stale_by(&member, &alice, cut + MAX_STALENESS + MARGIN);
    let stats = member.stats();
    assert!(stats.failed_closed && !stats.connected, "{stats:?}");
    assert!(stats.staleness.unwrap() >= MAX_STALENESS, "{stats:?}");
    // Back in touch: the log read from the position it had proves it, and alice is admitted.
    let back = db.execute(&format!("ALTER ROLE {role} LOGIN"));
    member.at(back);
    admitted_again(&member, &alice);
    let stats = member.stats();
    assert!(
        !stats.failed_closed && stats.staleness.unwrap() < MAX_STALENESS,
        "{stats:?}"
    );
    member.stop();
}

/// Fail-closed states are not revocations: a store out of reach past its `max_staleness`
/// refuses new handshakes of its domains (500), and ends no session already open.
#[test]
fn a_stale_store_refuses_new_handshakes_but_ends_no_open_session() {
    use crate::sessions::{receive_one, Login, Received, Sender};
    let mut db = Db::new("stale_sessions");
    let role = db.role();
    let (alice, bob) = (Keys::generate(), Keys::generate());
    db.add_key(&alice, "");
    let first = db.add_key(&bob, "");
    let conninfo = format!("{} user={role}", conninfo());
    let member = Member::start_as(&db, 0, &conninfo, |s| s.max_staleness(MAX_STALENESS));
    member.at(first);
    let mut socket = actix_zap::ServerSocket::curve("fleet", member.server.secret.clone())
        .build_sessions(&member.context, zmq::PULL)
        .unwrap();
    let endpoint = crate::sessions::bind_tcp(&socket);
    let login = Login::Curve(member.server.public, alice.clone());
    let alice_sends = Sender::start(&member.context, "kept", login, &endpoint, None);
    let mut received = Received::default();
    while received.kept.len() < 10 {
        assert!(
            receive_one(&mut socket, &mut received),
            "nothing received in time"
        );
    }
    db.execute(&format!("ALTER ROLE {role} NOLOGIN"));
    let cut = Instant::now();
    db.terminate_sources();
    // New handshakes of the domain are refused as stale...
    refused_as_stale_by(&member, &bob, cut + MAX_STALENESS + MARGIN);
    assert!(member.stats().failed_closed);
    // ... while alice's open session goes on: 100 more of her messages, no disconnect.
    let target = received.kept.len() + 100;
    while received.kept.len() < target {
        assert!(
            receive_one(&mut socket, &mut received),
            "the open session stalled"
        );
    }
    let ended = member.auth.stats().unwrap().sessions_ended;
    assert_eq!(ended, 0, "a fail-closed state ended a session");
    let disconnected = std::iter::from_fn(|| alice_sends.events.try_recv().ok())
        .any(|(event, _)| event == zmq::SocketEvent::DISCONNECTED as u16);
    assert!(!disconnected, "alice's connection was ended");
    db.execute(&format!("ALTER ROLE {role} LOGIN"));
    member.stop();
}

#[test]
fn a_locked_change_log_proves_nothing_so_its_domains_are_refused_after_max_staleness() {
    let db = Db::new("locked");
    let alice = Keys::generate();
    let first = db.add_key(&alice, "");
    // A heartbeat every 250 ms proves the source up to date, well within its 2 s.
    let member = Member::start(&db, 0, |s| {
        s.max_staleness(MAX_STALENESS)
            .heartbeat(Duration::from_millis(250))
    });
    member.at(first);
    let healthy = Instant::now() + MAX_STALENESS + Duration::from_millis(500);
    while Instant::now() < healthy {
        member.curve(&alice).assert_admitted(&alice.public.to_z85());
        std::thread::sleep(Duration::from_millis(100));
    }
    // The database answers, but no read of the log can: nothing proves the source up to date.
    let (locker, connection) = db.runtime.block_on(async {
        tokio_postgres::connect(&conninfo(), tokio_postgres::NoTls)
            .await
            .unwrap()
    });
    db.runtime.spawn(connection);
    let lock = db
        .store
        .sql("BEGIN; LOCK TABLE {schema}.changes IN ACCESS EXCLUSIVE MODE");
    db.runtime.block_on(locker.batch_execute(&lock)).unwrap();
    let locked = Instant::now();
    refused_as_stale_by(&member, &alice, locked + MAX_STALENESS + MARGIN);
    assert!(member.stats().failed_closed);
    db.runtime
        .block_on(locker.batch_execute("ROLLBACK"))
        .unwrap();
    admitted_again(&member, &alice);
    member.stop();
}

#[test]
fn a_store_dropped_and_migrated_again_is_read_from_a_snapshot_not_by_its_numbers() {
    let mut db = Db::new("migrated");
    let alice = Keys::generate();
    let bob = Keys::generate();
    db.add_key(&alice, "");
    db.add_key(&Keys::generate(), "");
    let before = db.add_key(&Keys::generate(), "");
    let member = Member::start(&db, 0, |s| s);
    member
        .at(before)
        .curve(&alice)
        .assert_admitted(&alice.public.to_z85());
    // A new store under the same name: its change numbers start again, below the position.
    db.runtime
        .block_on(db.store.drop_schema(&db.client))
        .unwrap();
    db.runtime
        .block_on(db.store.migrate(&mut db.client))
        .unwrap();
    let added = db.add_key(&bob, "");
    assert!(added < before);
    let deadline = Instant::now() + PATIENCE;
    loop {
        match member.curve(&bob) {
            Outcome::Admitted(_) => break,
            Outcome::Refused(_) => {}
            other => panic!("{other:?}"),
        }
        assert!(Instant::now() < deadline, "the new store was never read");
        std::thread::sleep(Duration::from_millis(20));
    }
    member.curve(&alice).assert_refused(400);
    member.stop();
}

#[test]
fn a_changed_password_is_refused_at_once_though_the_old_one_was_cached() {
    let db = Db::new("password");
    let first = db.add_user("dave", "old");
    let member = Member::start(&db, 0, |s| s);
    member
        .at(first)
        .plain("dave", "old")
        .assert_admitted("dave");
    member.plain("dave", "old").assert_admitted("dave"); // now from the cache
    let changed = db.execute(&format!(
        "UPDATE {{schema}}.plain_users SET password_hash = '{}' WHERE username = 'dave'",
        cheap_phc("new")
    ));
    member.at(changed).plain("dave", "old").assert_refused(400);
    member.plain("dave", "new").assert_admitted("dave");
    member.stop();
}

#[test]
fn a_hand_configuration_of_a_served_domain_is_refused_unless_it_takes_over() {
    let db = Db::new("hand");
    let (alice, bob) = (Keys::generate(), Keys::generate());
    let first = db.add_key(&alice, "");
    let member = Member::start(&db, 0, |s| s);
    member
        .at(first)
        .curve(&alice)
        .assert_admitted(&alice.public.to_z85());
    let store: actix_zap::certs::CertStore = [bob.public].into_iter().collect();
    // Widening by hand is refused, typed and naming the store; nothing changes.
    let refused = block_on(
        member
            .auth
            .handle()
            .configure_curve_keys("fleet", store.clone()),
    );
    match refused {
        Err(ConfigError::Policy(PolicyError::OwnedBy { domain, owner, .. })) => {
            assert_eq!(domain, "fleet");
            assert!(owner.contains("store"), "{owner}");
        }
        other => panic!("{other:?}"),
    }
    member.curve(&bob).assert_refused(400);
    member.curve(&alice).assert_admitted(&alice.public.to_z85());
    // Taken over explicitly: the store's next change is no longer applied to the domain.
    let take_over = ConfigureCurve::keys("fleet", store).take_over();
    block_on(member.auth.handle().send(take_over)).unwrap();
    let later = db.add_key(&bob, "from-the-store");
    member.at(later);
    member.curve(&bob).assert_admitted(&bob.public.to_z85());
    member.curve(&alice).assert_refused(400);
    let stats = member.auth.stats().unwrap();
    let source = stats.sources.values().next().unwrap();
    assert_eq!(source.taken_over, ["fleet (CURVE)"]);
    let snapshot = member.auth.inspect().unwrap();
    assert_eq!(snapshot.taken_over.len(), 1, "{snapshot:?}");
    // An empty served domain refuses everyone instead of falling back to "*".
    member.auth.configure_plain("*", [("erin", "pw")]).unwrap();
    member.plain("erin", "pw").assert_refused(400);
    member.stop();
}

#[test]
fn a_key_and_a_user_removed_by_hand_stay_refused_while_the_store_applies_changes() {
    let db = Db::new("revoke");
    let (alice, bob, carol) = (Keys::generate(), Keys::generate(), Keys::generate());
    db.add_key(&alice, "");
    db.add_user("erin", "pw");
    let seq = db.add_key(&bob, "");
    let member = Member::start(&db, 0, |s| s);
    member
        .at(seq)
        .curve(&alice)
        .assert_admitted(&alice.public.to_z85());
    member.plain("erin", "pw").assert_admitted("erin");
    // By hand, on the store's domain: accepted, removed now, and kept as revocations.
    let removed = member
        .auth
        .send(RemoveCurveKeys::new("fleet", [alice.public]))
        .unwrap();
    assert_eq!((removed.installed, removed.revoked), (1, 1));
    let removed = member
        .auth
        .send(RemovePlainUsers::new("fleet", ["erin"]))
        .unwrap();
    assert_eq!((removed.installed, removed.revoked), (1, 1));
    member.curve(&alice).assert_refused(400);
    member.plain("erin", "pw").assert_refused(400);
    // The store changes both rows and adds a key: its changes apply to everything else, and
    // never bring the removed key or user back.
    db.set_key(&alice, "user_id = 'changed'");
    db.execute(
        "UPDATE {schema}.plain_users SET password_hash = password_hash WHERE username = 'erin'",
    );
    let later = db.add_key(&carol, "");
    member.at(later);
    member.curve(&carol).assert_admitted(&carol.public.to_z85());
    member.curve(&bob).assert_admitted(&bob.public.to_z85());
    member.curve(&alice).assert_refused(400);
    member.plain("erin", "pw").assert_refused(400);
    // The source still follows the domain, and the snapshot lists the revocations.
    assert!(member.stats().taken_over.is_empty());
    assert_eq!(member.auth.inspect().unwrap().revocations.len(), 2);
    member.stop();
}

#[test]
fn a_store_on_a_watched_domain_is_refused_unless_it_takes_over() {
    let db = Db::new("takeover");
    let alice = Keys::generate();
    let seq = db.add_key(&alice, "");
    let (context, auth) = started();
    let server = Keys::generate();
    let curve = Listening::new(&context, &Server::Curve(server.clone()), Some("fleet"));
    let dir = tempfile::tempdir().unwrap();
    auth.watch(actix_zap::messages::Watch::curve("fleet", dir.path()))
        .unwrap();
    let source = |name: &str| {
        PostgresSource::new(&conninfo(), ["fleet"])
            .unwrap()
            .store(db.store.clone())
            .named(name)
    };
    match block_on(auth.handle().serve(source("refused"))) {
        Err(ConfigError::Policy(PolicyError::OwnedBy { owner, .. })) => {
            assert!(owner.contains("watch"), "{owner}")
        }
        other => panic!("{:?}", other.map(drop)),
    }
    assert_eq!(
        auth.watches().unwrap().len(),
        1,
        "a refused store changes nothing"
    );
    let name = format!("{}-taken", db.store.schema());
    let handle = block_on(auth.handle().serve(source(&name).take_over())).unwrap();
    assert!(
        auth.watches().unwrap().is_empty(),
        "the store took the domain over"
    );
    let deadline = Instant::now() + PATIENCE;
    while (auth.stats().unwrap().sources.get(&name)).is_none_or(|s| s.applied_seq < seq) {
        assert!(
            Instant::now() < deadline,
            "the store never applied its snapshot"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let client = Client::Curve(server.public, alice.clone());
    curve
        .attempt(&context, &client)
        .assert_admitted(&alice.public.to_z85());
    handle.stop();
    auth.stop();
}

/// Runs `zapctl db --schema … ARGS` against the test database; exit code, stdout, stderr.
fn zapctl(db: &Db, args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_zapctl"))
        .args([
            "db",
            "--schema",
            db.store.schema(),
            "--database",
            &conninfo(),
        ])
        .args(args)
        .env_remove("ZAPCTL_PASSWORD")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // zapctl may exit (a usage error) before it reads its input: a closed pipe is no failure,
    // its exit code and output are what the tests check.
    match child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("zapctl's input: {e}"),
        _ => {}
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn zapctl_db_commands_reach_every_follower() {
    let db = Db::new("zapctl");
    let (code, out, _) = zapctl(&db, &["migrate"], "");
    // First the database and schema it used, then what it did.
    let used = format!(
        "database host=127.0.0.1 port=5432 user=postgres dbname=test (sslmode prefer), schema {}",
        db.store.schema()
    );
    let did = format!(
        "schema {} is at version {}",
        db.store.schema(),
        actix_zap::postgres::SCHEMA_VERSION
    );
    let lines: Vec<&str> = out.lines().collect();
    if std::env::var_os("ZAP_TEST_DATABASE").is_none() {
        assert_eq!(
            (code, lines.as_slice()),
            (0, [used.as_str(), &did].as_slice())
        );
    }
    assert_eq!((code, lines.last()), (0, Some(&did.as_str())));
    let dir = tempfile::tempdir().unwrap();
    let alice = Keys::generate();
    write_public(dir.path(), "alice.key", &alice);
    let file = dir.path().join("alice.key");
    let file = file.to_str().unwrap();
    let fleet: Vec<Member> = (0..3).map(|n| Member::start(&db, n, |s| s)).collect();
    let run = |args: &[&str], stdin: &str| {
        let (code, out, err) = zapctl(&db, args, stdin);
        assert_eq!(code, 0, "zapctl db {args:?}: {out}{err}");
        db.latest()
    };
    let added = run(&["key", "add", "fleet", file, "--user-id", "alice"], "");
    let user = run(&["user", "add", "fleet", "frank"], "s3cret\n");
    for member in &fleet {
        member
            .at(added.max(user))
            .curve(&alice)
            .assert_admitted("alice");
    }
    let disabled = run(&["key", "disable", "fleet", &alice.public.to_z85()], "");
    for member in &fleet {
        member.at(disabled).curve(&alice).assert_refused(400);
    }
    let (code, out, _) = zapctl(&db, &["list", "fleet"], "");
    assert_eq!(code, 0);
    assert!(
        out.contains("1 key(s), 1 user(s)") && out.contains("disabled"),
        "{out}"
    );
    assert!(!out.contains("s3cret") && !out.contains("argon2"), "{out}");
    // Errors say what to do, and exit 1.
    let (code, _, err) = zapctl(&db, &["user", "remove", "fleet", "nobody"], "");
    assert_eq!(code, 1);
    assert!(err.contains("zapctl db list fleet"), "{err}");
    let (code, _, err) = zapctl(&db, &["key", "add", "fleet", file], "");
    assert_eq!(code, 1);
    assert!(err.contains("already there"), "{err}");
    let (code, _, err) = zapctl(&db, &["user", "add", "fleet", "gina"], "");
    assert_eq!(code, 2);
    assert!(err.contains("ZAPCTL_PASSWORD"), "{err}");
    fleet.into_iter().for_each(Member::stop);
}

/// Feature `metrics`: a source's position and the time of its last proof are gauges, the
/// proof's a Unix time (not an age, which would stand still between updates).
#[cfg(feature = "metrics")]
#[test]
fn a_sources_position_and_last_proof_are_gauges() {
    use actix_zap::metrics::{SOURCE_LAST_PROOF, SOURCE_POSITION};
    use std::time::{SystemTime, UNIX_EPOCH};
    child::isolated(
        "fleet::a_sources_position_and_last_proof_are_gauges",
        &[],
        || {
            let recorder = crate::common::recorder::TestRecorder::install();
            let db = Db::new("metrics");
            let unix = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
            let before = unix(SystemTime::now());
            let member = Member::start(&db, 0, |source| source);
            let labels = [("source", member.name.as_str())];
            for seq in [db.add_key(&Keys::generate(), ""), db.add_user("dave", "pw")] {
                member.at(seq);
                let deadline = Instant::now() + PATIENCE;
                while member.stats().staleness.is_none() {
                    assert!(Instant::now() < deadline, "no proof: {:?}", member.stats());
                    std::thread::sleep(Duration::from_millis(5));
                }
                let stats = member.stats();
                let position = recorder.gauge(SOURCE_POSITION, &labels);
                assert_eq!(position, Some(stats.applied_seq as f64));
                let proved = recorder.gauge(SOURCE_LAST_PROOF, &labels).unwrap();
                let now = unix(SystemTime::now());
                assert!(
                    before <= proved && proved <= now,
                    "{before} <= {proved} <= {now}"
                );
            }
            member.stop();
        },
    );
}
