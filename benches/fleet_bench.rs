//! Measures the PostgreSQL credential store (a tool, not a test; numbers in BENCHMARKS.md):
//!
//! - `load`: the initial snapshot of `--keys` CURVE keys (default 100,000; try 1,000,000):
//!   time from `start` to the snapshot in force, and resident memory per key;
//! - `fanout`: revocation fan-out from `COMMIT` returning to the first refused handshake on
//!   each of three authenticators, fresh sockets, `--trials` times (default 200): p50/p99;
//! - `rate`: CURVE handshakes per second against a domain served by the store and a domain
//!   loaded from a certificate directory of the same size, `--rounds` rounds (medians);
//! - `plain`: PLAIN handshakes per second with argon2id hashes (`--hash-memory-kib`, default
//!   19,456: zapctl's), cold (each user's first verification) and cached;
//! - `entropy`: one anti-entropy comparison as a follower makes it — the store's digest of the
//!   served domain in a `REPEATABLE READ` transaction — `--rounds` times (median, min);
//! - `forced`: a forced snapshot on a running follower: `TRUNCATE changes` (logged, with the
//!   pruning mark raised past every follower's position), and the time from its `COMMIT` to
//!   the first member's snapshot in force (it includes the random wait before a forced
//!   snapshot, at most 1 s; all three members read theirs at about the same time).
//!
//! `cargo bench --features postgres --bench fleet_bench -- --keys 1000000`
//! (PostgreSQL at 127.0.0.1:5432, or FLEET_DATABASE). Works in a schema of its own, dropped at
//! the end. Rows are bulk-loaded with the change-log triggers off (a fixture, not a change).

#[path = "support/store.rs"]
mod store_support;
#[path = "support/mod.rs"]
mod support;
#[path = "support/xorshift.rs"]
mod xorshift;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use actix_zap::certs::{Certificate, Flavour};
use actix_zap::keys::CurvePublicKey;
use actix_zap::postgres::{PostgresSource, Store};
use actix_zap::{ServerSocket, ThreadAuthenticator};
use futures::executor::block_on;
use support::{curve_client, fail, plain_client, Outcome, Server};
use xorshift::XorShift;

extern "C" {
    /// glibc: returns free heap memory to the OS.
    fn malloc_trim(pad: usize) -> i32;
}

fn rss_bytes() -> u64 {
    // SAFETY: malloc_trim has no preconditions; it only releases unused heap pages.
    unsafe {
        malloc_trim(0);
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

struct Args {
    keys: usize,
    trials: usize,
    handshakes: usize,
    rounds: usize,
    plain_users: usize,
    hash_memory_kib: u32,
    parts: String,
}

fn args() -> Args {
    let mut args = Args {
        keys: 100_000,
        trials: 200,
        handshakes: 2_000,
        rounds: 5,
        plain_users: 20,
        hash_memory_kib: 19_456,
        parts: "load,fanout,rate,plain,entropy,forced".into(),
    };
    // `cargo bench --bench fleet_bench -- FLAGS` passes `--bench` too.
    let given: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    for pair in given.chunks(2) {
        if pair[0] == "--parts" {
            args.parts = pair.get(1).cloned().unwrap_or_default();
            continue;
        }
        let value = pair.get(1).and_then(|v| v.parse::<usize>().ok());
        let Some(value) = value else {
            fail(format!("usage: fleet_bench [--keys N] [--trials N] [--handshakes N] [--rounds N] [--plain-users N] [--hash-memory-kib N] [--parts load,fanout,rate,plain,entropy,forced]; got {pair:?}"))
        };
        match pair[0].as_str() {
            "--keys" => args.keys = value,
            "--trials" => args.trials = value,
            "--handshakes" => args.handshakes = value,
            "--rounds" => args.rounds = value,
            "--plain-users" => args.plain_users = value,
            "--hash-memory-kib" => args.hash_memory_kib = value as u32,
            other => fail(format!("unknown option {other}")),
        }
    }
    args
}

struct Admin {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
    store: Store,
}

impl Admin {
    fn run(&self, sql: &str) -> i64 {
        let sql = self.store.sql(sql);
        self.runtime
            .block_on(self.client.batch_execute(&sql))
            .unwrap_or_else(|e| fail(format!("{sql}: {e}")));
        let latest = self
            .store
            .sql("SELECT coalesce(max(seq), 0) FROM {schema}.changes");
        let row = self.runtime.block_on(self.client.query_one(&latest, &[]));
        row.map(|r| r.get(0)).unwrap_or_else(|e| fail(e))
    }

    /// Bulk-loads keys into `domain` with the triggers off (a fixture).
    fn load_keys(&self, domain: &str, keys: &[CurvePublicKey]) {
        self.run("ALTER TABLE {schema}.curve_keys DISABLE TRIGGER USER");
        let sql = self.store.sql(
            "INSERT INTO {schema}.curve_keys (domain, public_key) SELECT $1, unnest($2::text[])",
        );
        for chunk in keys.chunks(10_000) {
            let texts: Vec<String> = chunk.iter().map(|k| k.to_z85()).collect();
            self.runtime
                .block_on(self.client.execute(&sql, &[&domain, &texts]))
                .unwrap_or_else(|e| fail(e));
        }
        self.run(
            "ALTER TABLE {schema}.curve_keys ENABLE ALWAYS TRIGGER curve_keys_changed;
             ALTER TABLE {schema}.curve_keys ENABLE ALWAYS TRIGGER curve_keys_truncated",
        );
    }
}

impl Drop for Admin {
    fn drop(&mut self) {
        let _ = self.runtime.block_on(self.store.drop_schema(&self.client));
    }
}

/// An authenticator following the store, with a CURVE and a PLAIN server in domain `fleet`.
struct Member {
    name: String,
    context: zmq::Context,
    auth: ThreadAuthenticator,
    curve: Arc<Server>,
    plain: Arc<Server>,
}

impl Member {
    fn start(
        conninfo: &str,
        store: &Store,
        name: &str,
        server: &Certificate,
    ) -> (Member, Duration) {
        let context = zmq::Context::new();
        let auth = ThreadAuthenticator::start(&context).unwrap_or_else(|e| fail(e));
        let started = Instant::now();
        let source = PostgresSource::new(conninfo, ["fleet"])
            .unwrap_or_else(|e| fail(e))
            .store(store.clone())
            .named(name);
        let handle = block_on(auth.handle().serve(source)).unwrap_or_else(|e| fail(e));
        let deadline = Instant::now() + Duration::from_secs(600);
        if let Err(error) = block_on(handle.synced_first(deadline)) {
            fail(format!("no snapshot in force: {error}"));
        }
        let loaded = started.elapsed();
        let secret = server.secret_key.clone().expect("secret key");
        let socket = ServerSocket::curve("fleet", secret)
            .build(&context, zmq::REP)
            .unwrap_or_else(|e| fail(e));
        let curve =
            Arc::new(Server::start(&context, socket, |_| "ok".into()).unwrap_or_else(|e| fail(e)));
        let socket = ServerSocket::plain("fleet")
            .build(&context, zmq::REP)
            .unwrap_or_else(|e| fail(e));
        let plain =
            Arc::new(Server::start(&context, socket, |_| "ok".into()).unwrap_or_else(|e| fail(e)));
        let member = Member {
            name: name.to_owned(),
            context,
            auth,
            curve,
            plain,
        };
        (member, loaded)
    }

    fn at(&self, seq: i64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self
            .auth
            .stats()
            .ok()
            .and_then(|s| s.sources.get(&self.name).map(|s| s.applied_seq >= seq))
            .unwrap_or(false)
        {
            if Instant::now() > deadline {
                fail(format!("{} never applied {seq}", self.name));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

fn percentile(sorted: &[f64], p: usize) -> f64 {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn curve_rate(
    server: &Server,
    context: &zmq::Context,
    key: &CurvePublicKey,
    client: &Certificate,
    n: usize,
) -> f64 {
    let started = Instant::now();
    for _ in 0..n {
        let socket = curve_client(context, key, client).unwrap_or_else(|e| fail(e));
        match server.attempt(socket) {
            Outcome::Admitted { .. } => {}
            other => fail(format!("expected admission, got {other:?}")),
        }
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let args = args();
    let conninfo = std::env::var("FLEET_DATABASE")
        .unwrap_or_else(|_| "host=127.0.0.1 user=postgres dbname=test".into());
    let store =
        Store::new(&format!("fleet_bench_{}", std::process::id())).unwrap_or_else(|e| fail(e));
    let (runtime, client) = store_support::connect_migrated(&conninfo, &store);
    let admin = Admin {
        runtime,
        client,
        store: store.clone(),
    };

    // Fixture: N keys, the last one the measuring client's.
    let mut rng = XorShift::new(0x5EED_F1EE_7000_0001);
    let client_cert = Certificate::generate().unwrap_or_else(|e| fail(e));
    let server_cert = Certificate::generate().unwrap_or_else(|e| fail(e));
    let mut keys: Vec<CurvePublicKey> = (1..args.keys.max(1))
        .map(|_| CurvePublicKey::from_bytes(rng.key()))
        .collect();
    keys.push(client_cert.public_key);
    admin.load_keys("fleet", &keys);

    // load: the first member's snapshot.
    let before = rss_bytes();
    let (first, load) = Member::start(&conninfo, &store, "bench-1", &server_cert);
    let per_key = rss_bytes().saturating_sub(before) as f64 / keys.len() as f64;
    println!(
        "fleet_bench load keys={} load_s={:.3} bytes_per_key={:.0}",
        keys.len(),
        load.as_secs_f64(),
        per_key
    );
    let mut fleet = vec![first];
    for n in 2..=3 {
        fleet.push(Member::start(&conninfo, &store, &format!("bench-{n}"), &server_cert).0);
    }

    let part = |name: &str| args.parts.split(',').any(|p| p == name);
    // fanout: one key disabled; time to its first refusal on each member.
    let trials = if part("fanout") { args.trials } else { 0 };
    let probe = Certificate::generate().unwrap_or_else(|e| fail(e));
    let z85 = probe.public_key.to_z85();
    let seq = admin.run(&format!(
        "INSERT INTO {{schema}}.curve_keys (domain, public_key) VALUES ('fleet', '{z85}')"
    ));
    let mut fanout_ms = Vec::new();
    for _ in 0..trials {
        let seq = admin
            .run(&format!(
                "UPDATE {{schema}}.curve_keys SET enabled = true WHERE public_key = '{z85}'"
            ))
            .max(seq);
        fleet.iter().for_each(|m| m.at(seq));
        let start = Arc::new(Barrier::new(fleet.len() + 1));
        let (tx, rx) = std::sync::mpsc::channel();
        let mut probes = Vec::new();
        for member in &fleet {
            let (server, context, start, tx) = (
                member.curve.clone(),
                member.context.clone(),
                start.clone(),
                tx.clone(),
            );
            let (key, probe) = (server_cert.public_key, probe.clone());
            probes.push(std::thread::spawn(move || {
                start.wait();
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    let socket = curve_client(&context, &key, &probe).unwrap_or_else(|e| fail(e));
                    if let Outcome::Refused(_) = server.attempt(socket) {
                        let _ = tx.send((Instant::now(), attempts));
                        return;
                    }
                    // Back-to-back probes on three servers would take both cores of a small
                    // machine from the database and the authenticators: 1 ms between them.
                    std::thread::sleep(Duration::from_millis(1));
                }
            }));
        }
        start.wait();
        admin.run(&format!(
            "UPDATE {{schema}}.curve_keys SET enabled = false WHERE public_key = '{z85}'"
        ));
        let committed = Instant::now();
        drop(tx);
        for (refused, _) in rx.iter() {
            fanout_ms.push(refused.saturating_duration_since(committed).as_secs_f64() * 1e3);
        }
        probes.into_iter().for_each(|p| p.join().unwrap());
    }
    fanout_ms.sort_by(f64::total_cmp);
    if trials > 0 {
        println!(
            "fleet_bench fanout trials={} samples={} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
            args.trials,
            fanout_ms.len(),
            percentile(&fanout_ms, 50),
            percentile(&fanout_ms, 99),
            fanout_ms.last().copied().unwrap_or(0.0)
        );
    }
    let member = &fleet[0];
    if part("rate") {
        // rate: the same keys from the store vs from a certificate directory.
        let dir = tempfile::tempdir().unwrap_or_else(|e| fail(e));
        for (i, key) in keys.iter().enumerate() {
            let cert = Certificate {
                public_key: *key,
                secret_key: None,
                metadata: vec![],
            };
            cert.save_public(dir.path().join(format!("k{i}.key")), Flavour::Pyzmq)
                .unwrap_or_else(|e| fail(e));
        }
        member
            .auth
            .configure_curve("files", dir.path())
            .unwrap_or_else(|e| fail(e));
        let secret = server_cert.secret_key.clone().expect("secret key");
        let socket = ServerSocket::curve("files", secret)
            .build(&member.context, zmq::REP)
            .unwrap_or_else(|e| fail(e));
        let files =
            Server::start(&member.context, socket, |_| "ok".into()).unwrap_or_else(|e| fail(e));
        let (mut store_rates, mut file_rates) = (Vec::new(), Vec::new());
        for _ in 0..args.rounds {
            store_rates.push(curve_rate(
                &member.curve,
                &member.context,
                &server_cert.public_key,
                &client_cert,
                args.handshakes,
            ));
            file_rates.push(curve_rate(
                &files,
                &member.context,
                &server_cert.public_key,
                &client_cert,
                args.handshakes,
            ));
        }
        let (store_rate, file_rate) = (median(store_rates), median(file_rates));
        println!(
        "fleet_bench rate keys={} rounds={} store_per_s={store_rate:.0} directory_per_s={file_rate:.0} ratio={:.3}",
        keys.len(),
        args.rounds,
        store_rate / file_rate
    );
        files.stop();
    }

    // plain: argon2id, cold then cached.
    if part("plain") {
        let params =
            argon2::Params::new(args.hash_memory_kib, 2, 1, None).unwrap_or_else(|e| fail(e));
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let users: Vec<String> = (0..args.plain_users.max(1))
            .map(|i| format!("user{i}"))
            .collect();
        let mut hashes = Vec::new();
        for _ in &users {
            use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
            let salt = SaltString::generate(&mut OsRng);
            hashes.push(
                argon
                    .hash_password(b"pw", &salt)
                    .unwrap_or_else(|e| fail(e))
                    .to_string(),
            );
        }
        let values: Vec<String> = users
            .iter()
            .zip(&hashes)
            .map(|(u, h)| format!("('fleet', '{u}', '{h}')"))
            .collect();
        let seq = admin.run(&format!(
            "INSERT INTO {{schema}}.plain_users (domain, username, password_hash) VALUES {}",
            values.join(", ")
        ));
        member.at(seq);
        let plain_rate = |users: &[String]| {
            let started = Instant::now();
            for user in users {
                let socket = plain_client(&member.context, user, "pw").unwrap_or_else(|e| fail(e));
                match member.plain.attempt(socket) {
                    Outcome::Admitted { .. } => {}
                    other => fail(format!("PLAIN {user}: {other:?}")),
                }
            }
            users.len() as f64 / started.elapsed().as_secs_f64()
        };
        let cold = plain_rate(&users);
        let repeated: Vec<String> = (0..args.handshakes)
            .map(|i| users[i % users.len()].clone())
            .collect();
        let cached = plain_rate(&repeated);
        println!(
            "fleet_bench plain users={} m_kib={} cold_per_s={cold:.1} cached_per_s={cached:.0}",
            users.len(),
            args.hash_memory_kib
        );
    }
    if part("entropy") {
        // entropy: the store's side of one digest comparison (the follower's is a compare of
        // two numbers); the log end read in the same transaction is a heartbeat's.
        let digest = store.sql(actix_zap::postgres::DIGEST_SQL);
        let domains = vec!["fleet".to_owned()];
        let (mut took, mut rows) = (Vec::new(), 0);
        for _ in 0..args.rounds.max(1) {
            let started = Instant::now();
            rows = admin
                .runtime
                .block_on(async {
                    let client = &admin.client;
                    client
                        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                        .await?;
                    let row = client.query_one(&digest, &[&domains]).await?;
                    client.batch_execute("COMMIT").await?;
                    Ok::<i64, tokio_postgres::Error>(row.get(1))
                })
                .unwrap_or_else(|e| fail(e));
            took.push(started.elapsed().as_secs_f64() * 1e3);
        }
        let min = took.iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "fleet_bench entropy keys={} rows={rows} rounds={} entropy_ms={:.1} min_ms={min:.1}",
            keys.len() + 1,
            took.len(),
            median(took)
        );
    }
    if part("forced") {
        // forced: the log pruned past every position.
        let stats =
            |m: &Member| m.auth.stats().unwrap_or_else(|e| fail(e)).sources[&m.name].clone();
        let before = stats(member).snapshots_forced;
        // TRUNCATE of the log is logged, with the pruning mark raised past every position.
        let started = Instant::now();
        let seq = admin.run("TRUNCATE {schema}.changes");
        member.at(seq);
        let deadline = started + Duration::from_secs(120);
        while stats(member).snapshots_forced == before {
            if Instant::now() > deadline {
                fail("no forced snapshot");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let forced = started.elapsed();
        println!(
            "fleet_bench forced keys={} forced_s={:.3} reason={:?}",
            keys.len() + 1,
            forced.as_secs_f64(),
            stats(member).last_snapshot_reason.unwrap_or_default()
        );
    }
    for member in fleet {
        member.curve.stop();
        member.plain.stop();
        member.auth.stop();
    }
}
