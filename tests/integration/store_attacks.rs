//! What operators, restores and a hostile database role do to a PostgreSQL store, and the
//! fleet that follows it (issue 17): one test per row of the README's "Many servers" failure
//! table. Each admits a key before, then shows the **running** follower refusing what it must
//! within the row's bound (plus a margin for this loaded machine), and a **fresh** follower
//! agreeing. Every wait polls fresh handshakes until a deadline; no fixed sleep is an
//! assertion.

use std::time::{Duration, Instant};

use crate::common::*;
use crate::fleet::{Db, Member};
use actix_zap::postgres::PostgresSource;

/// What a loaded 2-core machine may add to any bound below.
const MARGIN: Duration = Duration::from_secs(3);
/// A change whose triggers fire reaches running followers within moments (fan-out).
const FAN_OUT: Duration = Duration::from_secs(1);
/// A forced snapshot: at most 1 s of jitter, then the snapshot (a few rows here).
const FORCED: Duration = Duration::from_secs(2);
/// The tests' heartbeat (as `Member::start` sets it).
const HEARTBEAT: Duration = Duration::from_millis(500);
/// The anti-entropy interval in the tests that need it.
const ANTI_ENTROPY: Duration = Duration::from_secs(1);

/// Polls fresh handshakes until `member` refuses `keys` with `400`; panics past `bound`
/// (plus the margin). Answers how long it took.
fn refused_within(member: &Member, keys: &Keys, bound: Duration, what: &str) -> Duration {
    let start = Instant::now();
    loop {
        match member.curve(keys) {
            Outcome::Refused(400) => return start.elapsed(),
            Outcome::Admitted(_) => {}
            other => panic!("{what}: neither admitted nor refused: {other:?}"),
        }
        assert!(
            start.elapsed() < bound + MARGIN,
            "{what}: still admitted after {:?} (bound {bound:?}): {:?}",
            start.elapsed(),
            member.stats()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls until `member` admits `keys`; panics past `bound` (plus the margin).
fn admitted_within(member: &Member, keys: &Keys, bound: Duration, what: &str) {
    let start = Instant::now();
    loop {
        match member.curve(keys) {
            Outcome::Admitted(_) => return,
            Outcome::Refused(_) => {}
            other => panic!("{what}: neither admitted nor refused: {other:?}"),
        }
        assert!(
            start.elapsed() < bound + MARGIN,
            "{what}: still refused after {:?}: {:?}",
            start.elapsed(),
            member.stats()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A follower started now, once its first snapshot is in force.
fn fresh(db: &Db, n: usize) -> Member {
    let member = Member::start(db, n, |s| s);
    member.at(db.end());
    member
}

fn z85(keys: &Keys) -> String {
    keys.public.to_z85()
}

#[test]
fn a_writer_cannot_number_the_log_and_followers_keep_applying_its_revocations() {
    let mut db = Db::new("writer");
    let (alice, bob) = (Keys::generate(), Keys::generate());
    db.add_key(&alice, "");
    let first = db.add_key(&bob, "");
    let member = Member::start(&db, 0, |s| s);
    member.at(first).curve(&alice).assert_admitted(&z85(&alice));
    let writer = db.make_role(
        "writer",
        "GRANT USAGE ON SCHEMA {schema} TO {role};
         GRANT SELECT, INSERT, UPDATE, DELETE ON {schema}.curve_keys, {schema}.plain_users
             TO {role};",
    );
    let as_writer = db.connect(Some(&writer));
    let forged = "INSERT INTO {schema}.changes (seq, kind, domain, ident)
        OVERRIDING SYSTEM VALUE VALUES (9000000000000000000, 'curve', 'fleet', 'x')";
    let refused = db.try_on(&as_writer, forged).unwrap_err();
    assert!(refused.contains("permission denied"), "{refused}");
    // Even where an operator grants INSERT on the log, the number is the store's to give.
    db.execute(&format!("GRANT INSERT ON {{schema}}.changes TO {writer}"));
    let refused = db.try_on(&as_writer, forged).unwrap_err();
    assert!(
        refused.contains("store's to give") || refused.contains("currval"),
        "{refused}"
    );
    let plain = "INSERT INTO {schema}.changes (seq, kind, domain, ident)
        VALUES (9000000000000000000, 'curve', 'fleet', 'x')";
    assert!(db.try_on(&as_writer, plain).is_err());
    assert!(db.end() < 1_000, "nothing forged reached the log");
    // The writer's own revocation reaches the running follower at once.
    let disable = format!(
        "UPDATE {{schema}}.curve_keys SET enabled = false WHERE public_key = '{}'",
        z85(&alice)
    );
    db.try_on(&as_writer, &disable).unwrap();
    let took = refused_within(&member, &alice, FAN_OUT, "revoked by the writer");
    member.curve(&bob).assert_admitted(&z85(&bob));
    println!("writer's revocation refused after {took:?}");
    let fresh = fresh(&db, 1);
    fresh.curve(&alice).assert_refused(400);
    fresh.curve(&bob).assert_admitted(&z85(&bob));
    member.stop();
    fresh.stop();
}

#[test]
fn truncate_of_the_keys_is_refused_by_running_followers() {
    let db = Db::new("truncate");
    let keys: Vec<Keys> = (0..3).map(|_| Keys::generate()).collect();
    let first = keys.iter().map(|k| db.add_key(k, "")).max().unwrap();
    let member = Member::start(&db, 0, |s| s);
    for k in &keys {
        member.at(first).curve(k).assert_admitted(&z85(k));
    }
    db.execute("TRUNCATE {schema}.curve_keys");
    for k in &keys {
        refused_within(&member, k, FORCED, "truncated");
    }
    let stats = member.stats();
    assert!(stats.snapshots_forced >= 1, "{stats:?}");
    assert!(stats.last_snapshot_at.is_some(), "{stats:?}");
    assert!(
        stats
            .last_snapshot_reason
            .as_deref()
            .unwrap()
            .contains("pruned"),
        "{stats:?}"
    );
    // The follower goes on from its new position: a key added afterwards is admitted.
    let carol = Keys::generate();
    let added = db.add_key(&carol, "");
    member.at(added).curve(&carol).assert_admitted(&z85(&carol));
    let fresh = fresh(&db, 1);
    for k in &keys {
        fresh.curve(k).assert_refused(400);
    }
    fresh.curve(&carol).assert_admitted(&z85(&carol));
    member.stop();
    fresh.stop();
}

#[test]
fn a_delete_as_a_replica_applies_is_refused_at_once() {
    let db = Db::new("replica");
    let (alice, bob) = (Keys::generate(), Keys::generate());
    db.add_key(&alice, "");
    let first = db.add_key(&bob, "");
    let member = Member::start(&db, 0, |s| s);
    member.at(first).curve(&alice).assert_admitted(&z85(&alice));
    // What logical replication's apply does: ordinary triggers do not fire, ALWAYS ones do.
    let apply = db.connect(None);
    let delete = format!(
        "SET session_replication_role = replica;
         DELETE FROM {{schema}}.curve_keys WHERE public_key = '{}'",
        z85(&alice)
    );
    db.try_on(&apply, &delete).unwrap();
    let took = refused_within(&member, &alice, FAN_OUT, "deleted as a replica");
    println!("replica delete refused after {took:?}");
    member.curve(&bob).assert_admitted(&z85(&bob));
    assert_eq!(
        member.stats().snapshots_forced,
        0,
        "a change like any other"
    );
    let fresh = fresh(&db, 1);
    fresh.curve(&alice).assert_refused(400);
    fresh.curve(&bob).assert_admitted(&z85(&bob));
    member.stop();
    fresh.stop();
}

#[test]
fn rows_changed_with_triggers_disabled_are_found_by_anti_entropy() {
    let db = Db::new("entropy");
    let (alice, bob, carol) = (Keys::generate(), Keys::generate(), Keys::generate());
    db.add_key(&alice, "");
    db.add_key(&bob, "");
    let first = db.add_key(&carol, "");
    let member = Member::start(&db, 0, |s| s.anti_entropy(ANTI_ENTROPY));
    member.at(first).curve(&alice).assert_admitted(&z85(&alice));
    // The digests agree while nothing goes behind the log's back.
    let start = Instant::now();
    while member.stats().digest_checks < 2 {
        assert!(
            start.elapsed() < ANTI_ENTROPY * 4 + MARGIN,
            "{:?}",
            member.stats()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(member.stats().snapshots_forced, 0, "{:?}", member.stats());
    // The owner deletes one key and changes another's user id with every trigger off.
    db.execute(&format!(
        "ALTER TABLE {{schema}}.curve_keys DISABLE TRIGGER ALL;
         DELETE FROM {{schema}}.curve_keys WHERE public_key = '{}';
         UPDATE {{schema}}.curve_keys SET user_id = 'renamed' WHERE public_key = '{}';
         ALTER TABLE {{schema}}.curve_keys ENABLE ALWAYS TRIGGER curve_keys_changed;
         ALTER TABLE {{schema}}.curve_keys ENABLE ALWAYS TRIGGER curve_keys_truncated;",
        z85(&alice),
        z85(&bob)
    ));
    let bound = ANTI_ENTROPY * 5 / 4 + HEARTBEAT + FORCED;
    let took = refused_within(&member, &alice, bound, "deleted without triggers");
    println!("anti-entropy refused the silently deleted key after {took:?}");
    member.curve(&bob).assert_admitted("renamed");
    member.curve(&carol).assert_admitted(&z85(&carol));
    let stats = member.stats();
    assert_eq!(
        stats.last_snapshot_reason.as_deref(),
        Some("digest mismatch"),
        "{stats:?}"
    );
    let fresh = fresh(&db, 1);
    fresh.curve(&alice).assert_refused(400);
    fresh.curve(&bob).assert_admitted("renamed");
    member.stop();
    fresh.stop();
}

#[test]
fn a_null_metadata_value_refuses_its_key_only() {
    let db = Db::new("nullmeta");
    let (alice, bob, carol, dave) = (
        Keys::generate(),
        Keys::generate(),
        Keys::generate(),
        Keys::generate(),
    );
    db.add_key(&alice, "");
    db.add_key(&bob, "");
    let first = db.add_key(&carol, "");
    let member = Member::start(&db, 0, |s| s);
    member.at(first).curve(&alice).assert_admitted(&z85(&alice));
    // A store migrated with such rows already there (the new check is NOT VALID), or one
    // whose check an owner dropped: JSON null as a metadata value.
    let broken = db.execute(&format!(
        "ALTER TABLE {{schema}}.curve_keys DROP CONSTRAINT curve_keys_metadata_strings;
         UPDATE {{schema}}.curve_keys SET metadata = '{{\"Role\": null}}'
             WHERE public_key = '{}';
         INSERT INTO {{schema}}.curve_keys (domain, public_key, metadata)
             VALUES ('fleet', '{}', '{{\"Role\": null}}')",
        z85(&alice),
        z85(&dave)
    ));
    member.at(broken);
    refused_within(&member, &alice, FAN_OUT, "a null metadata value");
    member.curve(&dave).assert_refused(400);
    member.curve(&carol).assert_admitted(&z85(&carol));
    let stats = member.stats();
    let row = stats.last_rejected_row.clone().unwrap_or_default();
    assert!(row.contains("fleet") && row.contains("null"), "{stats:?}");
    assert!(stats.rejected_rows >= 2 && stats.connected, "{stats:?}");
    // A later revocation of another key still applies at once.
    let revoked = db.set_key(&bob, "enabled = false");
    member.at(revoked);
    refused_within(&member, &bob, FAN_OUT, "revoked after a bad row");
    // A fresh follower syncs past the bad rows.
    let fresh = fresh(&db, 1);
    for k in [&alice, &bob, &dave] {
        fresh.curve(k).assert_refused(400);
    }
    fresh.curve(&carol).assert_admitted(&z85(&carol));
    assert!(fresh.stats().rejected_rows >= 2, "{:?}", fresh.stats());
    member.stop();
    fresh.stop();
}

#[test]
fn a_renumbered_log_is_read_from_a_snapshot() {
    let db = Db::new("renumber");
    let keys: Vec<Keys> = (0..6).map(|_| Keys::generate()).collect();
    let first = keys.iter().map(|k| db.add_key(k, "")).max().unwrap();
    let member = Member::start(&db, 0, |s| s);
    member
        .at(first)
        .curve(&keys[0])
        .assert_admitted(&z85(&keys[0]));
    let (new, newer) = (Keys::generate(), Keys::generate());
    db.execute(&format!(
        "TRUNCATE {{schema}}.changes RESTART IDENTITY;
         DELETE FROM {{schema}}.curve_keys WHERE public_key = '{}'",
        z85(&keys[0])
    ));
    db.add_key(&new, "");
    db.add_key(&newer, "");
    assert!(
        db.end() < first,
        "the log's numbers start again below the position"
    );
    // Notifications of numbers at or below the position are stale hints: the heartbeat
    // finds the position beyond what the store issued.
    let bound = HEARTBEAT + FORCED;
    refused_within(&member, &keys[0], bound, "deleted after the log restarted");
    admitted_within(&member, &new, bound, "added after the log restarted");
    member.curve(&newer).assert_admitted(&z85(&newer));
    member.curve(&keys[1]).assert_admitted(&z85(&keys[1]));
    let stats = member.stats();
    assert!(stats.snapshots_forced >= 1, "{stats:?}");
    assert!(
        stats.applied_seq < first,
        "the position went down: {stats:?}"
    );
    let fresh = fresh(&db, 1);
    fresh.curve(&keys[0]).assert_refused(400);
    fresh.curve(&new).assert_admitted(&z85(&new));
    member.stop();
    fresh.stop();
}

#[test]
fn log_rows_deleted_while_a_follower_is_away_make_it_read_a_snapshot() {
    let mut db = Db::new("pruned");
    let role = db.role();
    let (alice, bob) = (Keys::generate(), Keys::generate());
    db.add_key(&alice, "");
    let first = db.add_key(&bob, "");
    let conninfo = format!("{} user={role}", crate::fleet::conninfo());
    let member = Member::start_as(&db, 0, &conninfo, |s| s);
    member.at(first).curve(&alice).assert_admitted(&z85(&alice));
    // Away: the revocation is logged, and the log pruned by DELETE before it returns.
    db.execute(&format!("ALTER ROLE {role} NOLOGIN"));
    assert!(db.terminate_sources() >= 1);
    db.set_key(&alice, "enabled = false");
    db.execute("DELETE FROM {schema}.changes");
    db.execute(&format!("ALTER ROLE {role} LOGIN"));
    let took = refused_within(&member, &alice, FORCED, "revoked while away, log pruned");
    println!("pruned revocation refused {took:?} after the follower could return");
    member.curve(&bob).assert_admitted(&z85(&bob));
    let stats = member.stats();
    assert!(
        stats.snapshots_forced >= 1
            && stats
                .last_snapshot_reason
                .as_deref()
                .unwrap()
                .contains("pruned"),
        "{stats:?}"
    );
    let fresh = fresh(&db, 1);
    fresh.curve(&alice).assert_refused(400);
    fresh.curve(&bob).assert_admitted(&z85(&bob));
    member.stop();
    fresh.stop();
}

#[test]
fn a_flood_of_junk_notifications_costs_a_bounded_number_of_reads() {
    let mut db = Db::new("flood");
    let (alice, bob) = (Keys::generate(), Keys::generate());
    db.add_key(&alice, "");
    let first = db.add_key(&bob, "");
    let member = Member::start(&db, 0, |s| s);
    member.at(first).curve(&alice).assert_admitted(&z85(&alice));
    // Any role that may connect may NOTIFY.
    let nobody = db.make_role("nobody", "");
    let flooder = db.connect(Some(&nobody));
    let channel = db.store.channel().to_owned();
    let before = member.stats().reads;
    let start = Instant::now();
    // 100,000 payloads that are no plausible position: words, signs, leading zeros, numbers
    // far beyond the log, numbers already applied.
    let junk = format!(
        "SELECT count(pg_notify('{channel}', CASE i % 5
             WHEN 0 THEN 'junk ' || i WHEN 1 THEN '-' || i WHEN 2 THEN '0' || i
             WHEN 3 THEN (9000000000000000000 + i)::text ELSE (i % {first})::text END))
         FROM generate_series(1, 20000) i"
    );
    for _ in 0..5 {
        db.try_on(&flooder, &junk).unwrap();
    }
    // The junk is ignored; a real revocation after it is applied at once.
    db.set_key(&alice, "enabled = false");
    let took = refused_within(&member, &alice, FAN_OUT, "revoked after a junk flood");
    let junk_reads = member.stats().reads - before;
    println!(
        "100,000 junk notifications in {:?}: {junk_reads} read(s); revocation refused after \
         {took:?}",
        start.elapsed()
    );
    assert!(junk_reads <= 3, "junk made reads: {junk_reads}");
    // Plausible numbers (beyond the position, within what the store may issue) are hints:
    // the reads they call for are coalesced, at least 5 ms apart; a revocation sent while
    // they arrive is applied at once.
    let end = db.end();
    let hints = format!(
        "SELECT count(pg_notify('{channel}', ({end} + 1 + i)::text))
         FROM generate_series(1, 20000) i"
    );
    let before = member.stats().reads;
    let start = Instant::now();
    let flood = {
        let conninfo = format!("{} user={nobody}", crate::fleet::conninfo());
        let hints = db.store.sql(&hints);
        std::thread::spawn(move || {
            let mut client = postgres_client(&conninfo);
            for _ in 0..5 {
                client(&hints);
            }
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    let revoke = Instant::now();
    db.set_key(&bob, "enabled = false");
    let took = refused_within(&member, &bob, FAN_OUT, "revoked during a flood of hints");
    flood.join().unwrap();
    // Let the last hints be read (their reads are what is counted).
    let drained = Instant::now();
    let mut reads = member.stats().reads;
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = member.stats().reads;
        if now == reads || drained.elapsed() > PATIENCE {
            break;
        }
        reads = now;
    }
    let elapsed = start.elapsed();
    let reads = reads - before;
    println!(
        "100,000 plausible hints over {elapsed:?}: {reads} read(s); revocation during them \
         refused after {took:?} (sent {:?} into the flood)",
        revoke - start
    );
    let most = elapsed.as_millis() as u64 / 5 + 10;
    assert!(
        reads <= most,
        "{reads} reads in {elapsed:?} (at most {most})"
    );
    member.stop();
}

/// A blocking connection on a runtime of its own (for a thread other than the test's).
fn postgres_client(conninfo: &str) -> impl FnMut(&str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (client, connection) = runtime
        .block_on(tokio_postgres::connect(conninfo, tokio_postgres::NoTls))
        .unwrap();
    runtime.spawn(connection);
    move |sql| runtime.block_on(client.batch_execute(sql)).unwrap()
}

#[test]
fn a_role_that_may_only_connect_cannot_hold_up_writes() {
    let mut db = Db::new("lock");
    let (alice, bob) = (Keys::generate(), Keys::generate());
    db.add_key(&alice, "");
    let first = db.add_key(&bob, "");
    let member = Member::start(&db, 0, |s| s);
    member.at(first).curve(&alice).assert_admitted(&z85(&alice));
    let nobody = db.make_role("nobody", "GRANT USAGE ON SCHEMA {schema} TO {role};");
    let hostile = db.connect(Some(&nobody));
    // The writers' lock is a table lock only the store's roles may take…
    let refused = db
        .try_on(
            &hostile,
            "BEGIN; LOCK TABLE {schema}.changes IN EXCLUSIVE MODE",
        )
        .unwrap_err();
    assert!(refused.contains("permission denied"), "{refused}");
    db.try_on(&hostile, "ROLLBACK").unwrap();
    // …and the advisory lock writers of schema version 1 took blocks nobody now.
    let key = format!("{}.actix_zap_changes", db.store.schema());
    db.try_on(
        &hostile,
        &format!("SELECT pg_advisory_lock(hashtext('{key}'))"),
    )
    .unwrap();
    let writer = db.connect(None);
    let write = Instant::now();
    db.try_on(
        &writer,
        &format!(
            "SET statement_timeout = '10s';
             UPDATE {{schema}}.curve_keys SET enabled = false WHERE public_key = '{}'",
            z85(&alice)
        ),
    )
    .expect("the write completes while the advisory lock is held");
    println!(
        "write committed in {:?} under the held advisory lock",
        write.elapsed()
    );
    refused_within(&member, &alice, FAN_OUT, "revoked under the advisory lock");
    member.curve(&bob).assert_admitted(&z85(&bob));
    let fresh = fresh(&db, 1);
    fresh.curve(&alice).assert_refused(400);
    fresh.curve(&bob).assert_admitted(&z85(&bob));
    member.stop();
    fresh.stop();
    db.try_on(&hostile, "SELECT pg_advisory_unlock_all()")
        .unwrap();
}

/// A server whose anti-entropy runs often agrees with the store through ordinary changes of
/// every kind (no false mismatch: the digest follows updates, disables, removals and rows it
/// refused to decode).
#[test]
fn the_digest_agrees_through_ordinary_changes() {
    let db = Db::new("digest");
    let keys: Vec<Keys> = (0..4).map(|_| Keys::generate()).collect();
    for k in &keys {
        db.add_key(k, "");
    }
    let first = db.add_user("erin", "pw");
    let member = Member::start(&db, 0, |s: PostgresSource| s.anti_entropy(ANTI_ENTROPY));
    member.at(first);
    db.set_key(
        &keys[0],
        "user_id = 'zero', metadata = '{\"Role\": \"ops\"}'",
    );
    db.set_key(&keys[1], "enabled = false");
    db.set_key(&keys[2], "expires_at = 'infinity'");
    db.set_key(&keys[3], "expires_at = now() - interval '1 day'");
    db.execute(
        "UPDATE {schema}.plain_users SET enabled = false;
         INSERT INTO {schema}.curve_keys (domain, public_key) VALUES ('fleet', repeat('~', 40));
         INSERT INTO {schema}.curve_keys (domain, public_key) VALUES ('other', repeat('a', 40))",
    );
    let last = db.set_key(&keys[1], "enabled = true");
    member.at(last);
    let checks = member.stats().digest_checks;
    let start = Instant::now();
    while member.stats().digest_checks < checks + 2 {
        assert!(
            start.elapsed() < ANTI_ENTROPY * 4 + MARGIN,
            "{:?}",
            member.stats()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let stats = member.stats();
    assert_eq!(stats.snapshots_forced, 0, "{stats:?}");
    member.curve(&keys[0]).assert_admitted("zero");
    // The follower's row hashes are the store's functions', on every row those can hash.
    db.execute(&format!(
        "INSERT INTO {{schema}}.curve_keys (domain, public_key, user_id, metadata, expires_at)
         VALUES ('mirror', '{}', 'u', '{{\"Role\": \"ops\", \"A\": \"\"}}',
                 '2031-02-03 04:05:06.789+00'),
                ('mirror', '{}', NULL, '{{}}', NULL);
         INSERT INTO {{schema}}.plain_users (domain, username, password_hash)
         VALUES ('mirror', 'erin', '{}')",
        z85(&Keys::generate()),
        z85(&Keys::generate()),
        cheap_phc("pw")
    ));
    let ours = db.store.sql(actix_zap::postgres::DIGEST_SQL);
    let theirs = db.store.sql(
        "SELECT (SELECT bit_xor({schema}.curve_row_hash(k)) FROM {schema}.curve_keys k
                 WHERE k.domain = 'mirror'),
                (SELECT bit_xor({schema}.plain_row_hash(u)) FROM {schema}.plain_users u
                 WHERE u.domain = 'mirror')",
    );
    let domains = vec!["mirror".to_owned()];
    let ours = db
        .runtime
        .block_on(db.client.query_one(&ours, &[&domains]))
        .unwrap();
    let theirs = db
        .runtime
        .block_on(db.client.query_one(&theirs, &[]))
        .unwrap();
    assert_eq!(ours.get::<_, i64>(0), theirs.get::<_, i64>(0), "curve");
    assert_eq!(ours.get::<_, i64>(2), theirs.get::<_, i64>(1), "plain");
    member.curve(&keys[2]).assert_admitted(&z85(&keys[2]));
    member.curve(&keys[3]).assert_refused(400);
    member.stop();
}
