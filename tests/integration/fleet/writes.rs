//! Writes through the library and `zapctl db`, and knowing when they are in force: each write
//! answers its position (store uuid, sequence number), and `SourceHandle::synced` answers once
//! an authenticator applied it — judged by real handshakes right after. Roles made by
//! `grant-writer` and `grant-follower` (connected as with `user=<role>`, trust
//! authentication) can do what they should and nothing more; pruning cannot lose a revocation.

use std::time::{Duration, Instant};

use super::{conninfo, Db, Member};
use crate::common::*;
use actix_zap::certs::{Certificate, Flavour};
use actix_zap::postgres::{NewKey, Position, Store, SyncError, WriteError};
use futures::executor::block_on;
use tokio_postgres::error::SqlState;

/// A connection of its own that writes through the library, as some role.
struct Writer {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
    store: Store,
}

impl Writer {
    fn connect(db: &Db, conninfo: &str) -> Writer {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("connecting with {conninfo:?}: {e}"));
            tokio::spawn(connection);
            client
        });
        Writer {
            runtime,
            client,
            store: db.store.clone(),
        }
    }

    fn add(&mut self, key: &NewKey) -> Result<Position, WriteError> {
        (self.runtime).block_on(self.store.add_key(&mut self.client, "fleet", key))
    }

    fn disable(&mut self, keys: &Keys) -> Result<Position, WriteError> {
        (self.runtime).block_on(
            self.store
                .disable_key(&mut self.client, "fleet", &keys.public),
        )
    }

    fn enable(&mut self, keys: &Keys) -> Result<Position, WriteError> {
        (self.runtime).block_on(
            self.store
                .enable_key(&mut self.client, "fleet", &keys.public),
        )
    }

    fn remove(&mut self, keys: &Keys) -> Result<Position, WriteError> {
        (self.runtime).block_on(
            self.store
                .remove_key(&mut self.client, "fleet", &keys.public),
        )
    }

    /// A statement of this role's own: the database's error code if refused.
    fn try_sql(&self, sql: &str) -> Result<(), SqlState> {
        let sql = self.store.sql(sql);
        match self.runtime.block_on(self.client.batch_execute(&sql)) {
            Ok(()) => Ok(()),
            Err(error) => Err(error
                .code()
                .cloned()
                .unwrap_or(SqlState::CONNECTION_FAILURE)),
        }
    }
}

fn key(keys: &Keys) -> NewKey {
    NewKey::new(keys.public)
}

/// A heartbeat whose answer may take 2 s: the tests that end by checking that their source
/// met no error use it (a loaded machine's slow answer to a 500 ms one would count as one).
fn steady(source: actix_zap::postgres::PostgresSource) -> actix_zap::postgres::PostgresSource {
    source.heartbeat(Duration::from_secs(2))
}

/// Waits for `position` on `member`, which must get there.
fn synced(member: &Member, position: Position) -> &Member {
    let handle = member.source.as_ref().unwrap();
    let deadline = Instant::now() + PATIENCE;
    let applied = block_on(handle.synced(position, deadline))
        .unwrap_or_else(|e| panic!("{position} never in force on {}: {e}", member.name));
    assert!(applied.store == position.store && applied.seq >= position.seq);
    member
}

/// A login role of the test's own (no rights but connecting), dropped at the end of the test
/// with whatever it was granted.
struct Role<'a> {
    db: &'a Db,
    name: String,
}

impl<'a> Role<'a> {
    fn create(db: &'a Db, suffix: &str) -> Role<'a> {
        let name = format!("{}_{suffix}", db.store.schema());
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        db.execute(&format!(
            "DROP ROLE IF EXISTS {quoted}; CREATE ROLE {quoted} LOGIN"
        ));
        Role { db, name }
    }

    /// The test database's connection string, as this role.
    fn conninfo(&self) -> String {
        format!("{} user='{}'", conninfo(), self.name.replace('\'', "\\'"))
    }
}

impl Drop for Role<'_> {
    fn drop(&mut self) {
        let quoted = format!("\"{}\"", self.name.replace('"', "\"\""));
        let literal = self.name.replace('\'', "''");
        let sql = format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{literal}';
             DROP OWNED BY {quoted}; DROP ROLE IF EXISTS {quoted}"
        );
        let _ = (self.db.runtime).block_on(self.db.client.batch_execute(&sql));
    }
}

/// `zapctl db --schema … --database CONNINFO ARGS`, the password in ZAPCTL_PASSWORD if given
/// (even empty); exit code, stdout, stderr.
fn zapctl_as(
    db: &Db,
    conninfo: &str,
    args: &[&str],
    stdin: &str,
    password: Option<&str>,
) -> (i32, String, String) {
    use std::io::Write as _;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_zapctl"));
    command
        .args(["db", "--schema", db.store.schema(), "--database", conninfo])
        .args(args)
        .env_remove("ZAPCTL_PASSWORD")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(password) = password {
        command.env("ZAPCTL_PASSWORD", password);
    }
    let mut child = command.spawn().unwrap();
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

/// The position a `zapctl db` write printed (`… store UUID seq N`).
fn printed_position(out: &str) -> Position {
    let at = out
        .rfind("store ")
        .unwrap_or_else(|| panic!("no position in {out:?}"));
    let mut words = out[at..].split_whitespace().skip(1);
    let store = words.next().unwrap().parse().unwrap();
    assert_eq!(words.next(), Some("seq"), "{out}");
    let seq = words.next().unwrap().parse().unwrap();
    Position { store, seq }
}

/// A write through zapctl that must succeed: the position it printed.
fn zapctl_write(db: &Db, conninfo: &str, args: &[&str]) -> Position {
    let (code, out, err) = zapctl_as(db, conninfo, args, "", None);
    assert_eq!(code, 0, "zapctl db {args:?}: {out}{err}");
    printed_position(&out)
}

#[test]
fn a_key_written_through_the_library_is_in_force_once_synced_answers() {
    let db = Db::new("lib_write");
    let member = Member::start(&db, 0, steady);
    let mut writer = Writer::connect(&db, &conninfo());
    let alice = Keys::generate();
    let added = writer
        .add(&key(&alice).user_id("alice").meta("Role", "ops"))
        .unwrap();
    // Right after synced answers: no waiting, no retry.
    let mut admitted = synced(&member, added)
        .curve(&alice)
        .assert_admitted("alice");
    assert_eq!(admitted.property("Role").as_deref(), Some("ops"));
    let disabled = writer.disable(&alice).unwrap();
    assert!(disabled.seq > added.seq && disabled.store == added.store);
    synced(&member, disabled).curve(&alice).assert_refused(400);
    let enabled = writer.enable(&alice).unwrap();
    synced(&member, enabled)
        .curve(&alice)
        .assert_admitted("alice");
    let removed = writer.remove(&alice).unwrap();
    synced(&member, removed).curve(&alice).assert_refused(400);
    // What changes nothing is a typed error, and writes nothing.
    let latest = db.latest();
    assert!(matches!(
        writer.remove(&alice),
        Err(WriteError::NotFound { domain, .. }) if domain == "fleet"
    ));
    let bob = Keys::generate();
    let bob_added = writer.add(&key(&bob)).unwrap();
    assert!(matches!(
        writer.add(&key(&bob)),
        Err(WriteError::AlreadyThere { .. })
    ));
    assert!(matches!(
        writer.add(&key(&Keys::generate()).meta("Identity", "x")),
        Err(WriteError::Metadata(_))
    ));
    assert_eq!(db.latest(), bob_added.seq, "only bob's addition was logged");
    assert_eq!(bob_added.seq, latest + 1);
    // PLAIN users: a cheap hash (debug builds verify quickly), then a password hashed by the
    // library; empty passwords and usernames are refused.
    let hash =
        actix_zap::policy::HashedPassword::parse(&cheap_phc("pw"), &Default::default()).unwrap();
    let store = writer.store.clone();
    let user = (writer.runtime)
        .block_on(store.add_user_hash(&mut writer.client, "fleet", "carol", &hash))
        .unwrap();
    synced(&member, user)
        .plain("carol", "pw")
        .assert_admitted("carol");
    let disabled = (writer.runtime)
        .block_on(store.disable_user(&mut writer.client, "fleet", "carol"))
        .unwrap();
    synced(&member, disabled)
        .plain("carol", "pw")
        .assert_refused(400);
    let removed = (writer.runtime)
        .block_on(store.remove_user(&mut writer.client, "fleet", "carol"))
        .unwrap();
    synced(&member, removed);
    assert!(matches!(
        (writer.runtime).block_on(store.enable_user(&mut writer.client, "fleet", "carol")),
        Err(WriteError::NotFound { .. })
    ));
    let empty = (writer.runtime).block_on(store.add_user(&mut writer.client, "fleet", "dan", b""));
    assert!(matches!(empty, Err(WriteError::EmptyPassword)), "{empty:?}");
    let hashed = (writer.runtime)
        .block_on(store.add_user(&mut writer.client, "fleet", "dan", b"s3cret"))
        .unwrap();
    synced(&member, hashed);
    let stored: String = (db.runtime)
        .block_on(
            db.client.query_one(
                &db.store
                    .sql("SELECT password_hash FROM {schema}.plain_users WHERE username = 'dan'"),
                &[],
            ),
        )
        .unwrap()
        .get(0);
    assert!(stored.starts_with("$argon2id$") && !stored.contains("s3cret"));
    assert!(member.stats().last_error.is_none(), "{:?}", member.stats());
    member.stop();
}

#[test]
fn synced_on_a_source_following_another_store_says_so_at_the_deadline() {
    let db = Db::new("synced_here");
    let other = Db::new("synced_other");
    let member = Member::start(&db, 0, |s| s);
    let handle = member.source.as_ref().unwrap();
    let here = block_on(handle.synced_first(Instant::now() + PATIENCE)).unwrap();
    let mut writer = Writer::connect(&other, &conninfo());
    let there = writer.add(&key(&Keys::generate())).unwrap();
    assert_ne!(here.store, there.store, "two stores, two uuids");
    let deadline = Instant::now() + Duration::from_millis(500);
    let answer = block_on(handle.synced(there, deadline));
    assert!(Instant::now() >= deadline);
    assert_eq!(
        answer,
        Err(SyncError::OtherStore {
            following: here.store,
            wanted: there.store
        })
    );
    // A position of its own store is no such error.
    let mut writer = Writer::connect(&db, &conninfo());
    let mine = writer.add(&key(&Keys::generate())).unwrap();
    synced(&member, mine);
    member.stop();
}

#[test]
fn a_source_that_cannot_catch_up_times_out_at_the_deadline_with_its_last_error() {
    let db = Db::new("synced_timeout");
    let mut writer = Writer::connect(&db, &conninfo());
    let first = writer.add(&key(&Keys::generate())).unwrap();
    // Nothing listens on port 1: every connection is refused.
    let unreachable = "host=127.0.0.1 port=1 user=postgres dbname=test connect_timeout=2";
    let away = Member::start_as(&db, 0, unreachable, |s| s);
    // A follower whose role loses its right to read, once synced.
    let role = Role::create(&db, "reader");
    let (code, out, err) = zapctl_as(&db, &conninfo(), &["grant-follower", &role.name], "", None);
    assert_eq!(code, 0, "{out}{err}");
    let cut_off = Member::start_as(&db, 1, &role.conninfo(), |s| s);
    synced(&cut_off, first);
    db.execute(&format!(
        "REVOKE SELECT ON ALL TABLES IN SCHEMA {{schema}} FROM {}",
        role.name
    ));
    let position = writer.add(&key(&Keys::generate())).unwrap();
    for (member, applied) in [(&away, None), (&cut_off, Some(first))] {
        let handle = member.source.as_ref().unwrap();
        // Its first attempt has failed by then (the backoff starts at 20 ms, the heartbeat
        // comes every 500 ms).
        let deadline = Instant::now() + Duration::from_millis(2500);
        let answer = block_on(handle.synced(position, deadline));
        let now = Instant::now();
        assert!(now >= deadline && now < deadline + PATIENCE);
        match answer {
            Err(SyncError::Timeout {
                applied: at,
                last_error: Some(error),
            }) => {
                assert_eq!(at.map(|p| p.seq), applied.map(|p: Position| p.seq));
                assert!(!error.is_empty(), "{}", member.name);
            }
            other => panic!("{}: {other:?}", member.name),
        }
    }
    let handle = away.source.as_ref().unwrap();
    let never = block_on(handle.synced_first(Instant::now() + Duration::from_millis(100)));
    match never {
        Err(SyncError::Timeout {
            applied: None,
            last_error: Some(error),
        }) => assert!(error.contains("connect"), "{error}"),
        other => panic!("{other:?}"),
    }
    // A stopped authenticator ends the wait at once.
    away.auth.stop();
    let answer = block_on(handle.synced(position, Instant::now() + PATIENCE));
    assert_eq!(answer, Err(SyncError::Stopped));
    cut_off.stop();
}

#[test]
fn a_writer_role_writes_keys_but_never_the_log_the_settings_or_a_truncate() {
    let db = Db::new("writer_role");
    let member = Member::start(&db, 0, |s| s);
    let role = Role::create(&db, "writer");
    let owner = conninfo();
    let (code, out, err) = zapctl_as(&db, &owner, &["grant-writer", &role.name], "", None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&role.name), "{out}");
    // Through the library, connected as the role.
    let mut writer = Writer::connect(&db, &role.conninfo());
    let alice = Keys::generate();
    let added = writer.add(&key(&alice).user_id("alice")).unwrap();
    synced(&member, added)
        .curve(&alice)
        .assert_admitted("alice");
    let removed = writer.remove(&alice).unwrap();
    synced(&member, removed).curve(&alice).assert_refused(400);
    // Through zapctl, as the role.
    let bob = Keys::generate();
    let bob_z85 = bob.public.to_z85();
    let as_writer = role.conninfo();
    let added = zapctl_write(&db, &as_writer, &["key", "add", "fleet", &bob_z85]);
    synced(&member, added).curve(&bob).assert_admitted(&bob_z85);
    let disabled = zapctl_write(&db, &as_writer, &["key", "disable", "fleet", &bob_z85]);
    synced(&member, disabled).curve(&bob).assert_refused(400);
    let (code, _, err) = zapctl_as(
        &db,
        &as_writer,
        &["user", "add", "fleet", "erin"],
        "pw\n",
        None,
    );
    assert_eq!(code, 0, "{err}");
    // Never the log, the settings, a truncation or a prune.
    for sql in [
        "INSERT INTO {schema}.changes (kind, domain, ident) VALUES ('curve', 'fleet', 'x')",
        "INSERT INTO {schema}.changes (seq, kind, domain, ident)
             OVERRIDING SYSTEM VALUE VALUES (9000000000000000000, 'curve', 'fleet', 'x')",
        "SELECT * FROM {schema}.changes",
        "DELETE FROM {schema}.changes",
        "TRUNCATE {schema}.curve_keys",
        "TRUNCATE {schema}.plain_users",
        "UPDATE {schema}.settings SET pruned_through = 0",
        "SELECT {schema}.prune('0s')",
        "ALTER TABLE {schema}.curve_keys DISABLE TRIGGER curve_keys_changed",
    ] {
        let refused = writer.try_sql(sql);
        assert!(
            matches!(&refused, Err(code) if *code == SqlState::INSUFFICIENT_PRIVILEGE),
            "{sql}: {refused:?}"
        );
    }
    let (code, _, err) = zapctl_as(&db, &as_writer, &["prune", "--keep", "0s"], "", None);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("permission denied"), "{err}");
    // What the grant gave, and never gave.
    for (table, privilege, granted) in [
        ("curve_keys", "SELECT", true),
        ("curve_keys", "DELETE", true),
        ("plain_users", "INSERT", true),
        ("settings", "SELECT", true),
        ("settings", "UPDATE", false),
        ("curve_keys", "TRUNCATE", false),
        ("curve_keys", "TRIGGER", false),
        ("changes", "SELECT", false),
        ("changes", "INSERT", false),
    ] {
        let sql = "SELECT has_table_privilege($1, $2, $3)";
        let table = format!("{}.{table}", db.store.schema());
        let row = (db.runtime)
            .block_on(db.client.query_one(sql, &[&role.name, &table, &privilege]))
            .unwrap();
        assert_eq!(row.get::<_, bool>(0), granted, "{privilege} on {table}");
    }
    member.stop();
}

#[test]
fn role_names_are_quoted_by_the_server_and_unknown_roles_refused() {
    let db = Db::new("role_names");
    let odd = Role::create(&db, "Wr ite\"r; --");
    let (code, out, err) = zapctl_as(&db, &conninfo(), &["grant-writer", &odd.name], "", None);
    assert_eq!(code, 0, "{out}{err}");
    let table = format!("{}.curve_keys", db.store.schema());
    let row = (db.runtime)
        .block_on(db.client.query_one(
            "SELECT has_table_privilege($1, $2, 'INSERT')",
            &[&odd.name, &table],
        ))
        .unwrap();
    assert!(row.get::<_, bool>(0));
    let (code, _, err) = zapctl_as(
        &db,
        &conninfo(),
        &["grant-follower", "no such role"],
        "",
        None,
    );
    assert_eq!(code, 1);
    assert!(err.contains("no role"), "{err}");
}

#[test]
fn a_follower_role_follows_but_cannot_write() {
    let db = Db::new("follower_role");
    let role = Role::create(&db, "follower");
    let (code, out, err) = zapctl_as(&db, &conninfo(), &["grant-follower", &role.name], "", None);
    assert_eq!(code, 0, "{out}{err}");
    let member = Member::start_as(&db, 0, &role.conninfo(), steady);
    let mut owner = Writer::connect(&db, &conninfo());
    let alice = Keys::generate();
    let added = owner.add(&key(&alice).user_id("alice")).unwrap();
    synced(&member, added)
        .curve(&alice)
        .assert_admitted("alice");
    let mut follower = Writer::connect(&db, &role.conninfo());
    let refused = follower.add(&key(&Keys::generate()));
    match refused {
        Err(WriteError::Postgres(error)) => {
            assert_eq!(error.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        follower.remove(&alice),
        Err(WriteError::Postgres(_))
    ));
    let (code, _, err) = zapctl_as(
        &db,
        &role.conninfo(),
        &["key", "disable", "fleet", &alice.public.to_z85()],
        "",
        None,
    );
    assert_eq!(code, 1);
    assert!(err.contains("grant-writer"), "{err}");
    // It read everything it needs, and nothing else failed.
    member.curve(&alice).assert_admitted("alice");
    let stats = member.stats();
    assert!(stats.connected && stats.last_error.is_none(), "{stats:?}");
    member.stop();
}

#[test]
fn prune_raises_the_mark_and_a_follower_away_during_it_reads_a_snapshot() {
    let db = Db::new("prune");
    let role = Role::create(&db, "follower");
    let (code, out, err) = zapctl_as(&db, &conninfo(), &["grant-follower", &role.name], "", None);
    assert_eq!(code, 0, "{out}{err}");
    // A generous allowance: while away, the follower keeps what it had (so a lost revocation
    // would show as an admission).
    let patient =
        |s: actix_zap::postgres::PostgresSource| s.max_staleness(Duration::from_secs(120));
    let member = Member::start_as(&db, 0, &role.conninfo(), patient);
    let mut owner = Writer::connect(&db, &conninfo());
    let (alice, bob) = (Keys::generate(), Keys::generate());
    owner.add(&key(&alice).user_id("alice")).unwrap();
    let added = owner.add(&key(&bob).user_id("bob")).unwrap();
    synced(&member, added)
        .curve(&alice)
        .assert_admitted("alice");
    // Away: it cannot log in, and its connection is cut.
    db.execute(&format!("ALTER ROLE {} NOLOGIN", role.name));
    assert!(db.terminate_sources() >= 1);
    let deadline = Instant::now() + PATIENCE;
    while member.stats().connected {
        assert!(Instant::now() < deadline, "the follower never noticed");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Alice is revoked, and the log that says so is pruned, while it is away.
    let removed = owner.remove(&alice).unwrap();
    let (code, out, err) = zapctl_as(&db, &conninfo(), &["prune", "--keep", "0s"], "", None);
    assert_eq!(code, 0, "{out}{err}");
    // After the line naming the database: "deleted N change-log row(s) ...".
    let deleted: i64 = out
        .lines()
        .find(|line| line.starts_with("deleted"))
        .unwrap_or_default()
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(deleted, removed.seq, "every row so far: {out}");
    assert!(
        out.contains(&format!(
            "pruning mark {} (store {})",
            removed.seq, removed.store
        )),
        "{out}"
    );
    let left: i64 = (db.runtime)
        .block_on(
            db.client
                .query_one(&db.store.sql("SELECT count(*) FROM {schema}.changes"), &[]),
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    // A change after the prune: the log goes on beyond the follower's position, so only the
    // mark can tell it that a change it never saw was pruned (an empty log would look like a
    // restored store and call for a snapshot by itself).
    let carol = Keys::generate();
    let later = owner.add(&key(&carol).user_id("carol")).unwrap();
    assert!(later.seq > removed.seq);
    // Still away: the revocation has not reached it.
    member.curve(&alice).assert_admitted("alice");
    db.execute(&format!("ALTER ROLE {} LOGIN", role.name));
    synced(&member, later).curve(&alice).assert_refused(400);
    member.curve(&bob).assert_admitted("bob");
    member.curve(&carol).assert_admitted("carol");
    assert!(member.stats().reconnects >= 1);
    // A prune that finds nothing changes nothing.
    let (code, out, _) = zapctl_as(&db, &conninfo(), &["prune", "--keep", "30d"], "", None);
    assert_eq!(code, 0);
    assert!(out.contains("\ndeleted 0 "), "{out}");
    member.stop();
}

#[test]
fn zapctl_key_add_keeps_a_certificates_metadata_and_list_escapes_what_it_prints() {
    let db = Db::new("cert_meta");
    let member = Member::start(&db, 0, |s| s);
    let dir = tempfile::tempdir().unwrap();
    let alice = Keys::generate();
    let cert = Certificate {
        public_key: alice.public,
        secret_key: None,
        metadata: vec![
            ("Role".into(), "ops".into()),
            ("Team".into(), "blue".into()),
        ],
    };
    let file = dir.path().join("alice.key");
    cert.save_public(&file, Flavour::Pyzmq).unwrap();
    let file = file.to_str().unwrap();
    let owner = conninfo();
    // --meta replaces the certificate's property of the same name.
    let added = zapctl_write(
        &db,
        &owner,
        &[
            "key",
            "add",
            "fleet",
            file,
            "--user-id",
            "alice",
            "--meta",
            "team=red",
        ],
    );
    let mut admitted = synced(&member, added)
        .curve(&alice)
        .assert_admitted("alice");
    assert_eq!(admitted.property("Role").as_deref(), Some("ops"));
    assert_eq!(admitted.property("Team").as_deref(), Some("red"));
    let (code, out, _) = zapctl_as(&db, &owner, &["list", "fleet"], "", None);
    assert_eq!(code, 0);
    assert!(
        out.contains(r#"user-id="alice"  metadata: "Role"="ops", "Team"="red""#),
        "{out}"
    );
    // Control characters from the store are printed escaped, never as they are.
    let mallory = Keys::generate();
    let z85 = mallory.public.to_z85();
    zapctl_write(
        &db,
        &owner,
        &[
            "key",
            "add",
            "fleet",
            &z85,
            "--user-id",
            "m\x1b[2J",
            "--meta",
            "Note=a\nb\u{202e}",
        ],
    );
    let hostile = "eve\x07\u{9b}";
    let (code, _, err) = zapctl_as(
        &db,
        &owner,
        &["user", "add", "fleet", hostile],
        "",
        Some("pw"),
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = zapctl_as(&db, &owner, &["list", "fleet"], "", None);
    assert_eq!(code, 0);
    assert!(
        !out.contains(['\x1b', '\x07', '\u{9b}', '\u{202e}']),
        "raw control characters: {out:?}"
    );
    // The database line, the domain's, then one line per key and user.
    assert_eq!(out.lines().count(), 5, "one line per key and user: {out}");
    assert!(out.contains(r#"user-id="m\u{1b}[2J""#), "{out}");
    assert!(out.contains(r#""Note"="a\nb\u{202e}""#), "{out}");
    assert!(out.contains(r#"user "eve\u{7}\u{9b}""#), "{out}");
    member.stop();
}

#[test]
fn zapctl_refuses_an_empty_password() {
    let db = Db::new("empty_password");
    let owner = conninfo();
    for (stdin, password) in [("", Some("")), ("\n", None), ("", None)] {
        let (code, out, err) = zapctl_as(
            &db,
            &owner,
            &["user", "add", "fleet", "frank"],
            stdin,
            password,
        );
        assert_eq!(code, 2, "{stdin:?} {password:?}: {out}{err}");
        assert!(err.contains("empty password is refused"), "{err}");
    }
    // Nothing was written.
    assert_eq!(db.latest(), 0);
    // A password from the environment wins over standard input.
    let (code, out, err) = zapctl_as(
        &db,
        &owner,
        &["user", "add", "fleet", "frank"],
        "",
        Some("pw"),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(printed_position(&out).seq, 1);
}

#[test]
fn expiries_are_written_and_a_write_the_store_would_not_log_is_refused() {
    use std::time::SystemTime;
    let db = Db::new("expiry_unlogged");
    let member = Member::start(&db, 0, |s| s);
    let mut writer = Writer::connect(&db, &conninfo());
    let (past, future) = (Keys::generate(), Keys::generate());
    let hour = Duration::from_secs(3600);
    writer
        .add(&key(&past).expires(SystemTime::now() - hour))
        .unwrap();
    let added = writer
        .add(&key(&future).expires(SystemTime::now() + hour))
        .unwrap();
    synced(&member, added).curve(&past).assert_refused(400);
    member
        .curve(&future)
        .assert_admitted(&future.public.to_z85());
    // zapctl reads --expires as PostgreSQL reads a timestamptz.
    let late = Keys::generate();
    let z85 = late.public.to_z85();
    let args = [
        "key",
        "add",
        "fleet",
        &z85,
        "--expires",
        "2001-02-03 04:05+00",
    ];
    let expired = zapctl_write(&db, &conninfo(), &args);
    synced(&member, expired).curve(&late).assert_refused(400);
    let (code, _, err) = zapctl_as(
        &db,
        &conninfo(),
        &[
            "key",
            "add",
            "fleet",
            &Keys::generate().public.to_z85(),
            "--expires",
            "soon",
        ],
        "",
        None,
    );
    assert_eq!(code, 1);
    assert!(err.contains("--expires"), "{err}");
    // With the log's trigger disabled (by the owner), a write would reach no follower: it is
    // refused and rolled back.
    db.execute("ALTER TABLE {schema}.curve_keys DISABLE TRIGGER curve_keys_changed");
    let unlogged = Keys::generate();
    let refused = writer.add(&key(&unlogged));
    assert!(
        matches!(refused, Err(WriteError::NotLogged { .. })),
        "{refused:?}"
    );
    assert!(matches!(
        writer.remove(&future),
        Err(WriteError::NotLogged { .. })
    ));
    db.execute("ALTER TABLE {schema}.curve_keys ENABLE ALWAYS TRIGGER curve_keys_changed");
    let count: i64 = (db.runtime)
        .block_on(db.client.query_one(
            &db.store.sql("SELECT count(*) FROM {schema}.curve_keys"),
            &[],
        ))
        .unwrap()
        .get(0);
    assert_eq!(count, 3, "nothing was written");
    // A store that is not there is named as such.
    let mut lost = Writer::connect(&db, &conninfo());
    lost.store = Store::new(&format!("{}_missing", db.store.schema())).unwrap();
    assert!(matches!(
        lost.add(&key(&unlogged)),
        Err(WriteError::NoStore { .. })
    ));
    member.stop();
}
