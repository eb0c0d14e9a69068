//! Measures how late a PostgreSQL store's domain is refused once nothing proves it up to date
//! (a tool, not a test; numbers in BENCHMARKS.md, "Store staleness").
//!
//! One authenticator follows a store through a TCP proxy on 127.0.0.1 that can stop
//! forwarding without closing anything. A CURVE client is admitted in the store's domain;
//! then, for each case, `--trials` times (default 10):
//!
//! - `partition`: the proxy stops forwarding (a silent partition: no RST, no FIN);
//! - `locked`: another session holds `LOCK TABLE changes IN ACCESS EXCLUSIVE MODE` (the
//!   database answers, but no read of the change log can);
//! - `partition-hung`: the proxy stops forwarding for three heartbeats, then forwards again
//!   while the change log is locked (the source reconnects and `LISTEN`s, and its reads hang).
//!
//! Handshakes run back to back until the first refusal; the time from the last proof (the
//! sending of the last read that proved the source up to date, from `Stats`) to that refusal
//! is compared with `max_staleness`: `over_ms` is how much later than the deadline the first
//! refusal came (goal: at most 100 ms). Then the cut is healed and the time until a client is
//! admitted again is noted (`recover_ms`). One line per case:
//!
//! `case=partition trials=10 max_staleness_ms=2000 heartbeat_ms=500 p50_over_ms=… max_over_ms=… min_over_ms=… p50_probe_ms=… p50_recover_ms=…`
//! (`p50_probe_ms`: one handshake, the resolution of the measurement)
//!
//! `cargo bench --features postgres --bench staleness -- --trials 20` (`--verbose`:
//! each trial on stderr)
//! (PostgreSQL at 127.0.0.1:5432, or FLEET_DATABASE with FLEET_PG_ADDRESS for the proxy's
//! upstream). Works in a schema of its own, dropped at the end.

#[path = "support/store.rs"]
mod store_support;
#[path = "support/mod.rs"]
mod support;

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_zap::certs::Certificate;
use actix_zap::postgres::{PostgresSource, Store};
use actix_zap::{ServerSocket, ThreadAuthenticator};
use futures::executor::block_on;
use support::{curve_client, fail, Outcome, Server};

struct Args {
    trials: usize,
    max_staleness: Duration,
    heartbeat: Duration,
    cases: Vec<String>,
    verbose: bool,
}

fn args() -> Args {
    let mut args = Args {
        trials: 10,
        max_staleness: Duration::from_secs(2),
        heartbeat: Duration::from_millis(500),
        cases: ["partition", "locked", "partition-hung"]
            .map(String::from)
            .to_vec(),
        verbose: false,
    };
    // `cargo bench --bench staleness -- FLAGS` passes `--bench` too.
    let mut given: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if let Some(at) = given.iter().position(|a| a == "--verbose") {
        given.remove(at);
        args.verbose = true;
    }
    let usage = "usage: staleness [--trials N] [--max-staleness-ms N] [--heartbeat-ms N] \
                 [--cases partition,locked,partition-hung] [--verbose]";
    for pair in given.chunks(2) {
        let Some(value) = pair.get(1) else {
            fail(format!("{usage}; got {pair:?}"))
        };
        let number = || value.parse::<u64>().unwrap_or_else(|_| fail(usage));
        match pair[0].as_str() {
            "--trials" => args.trials = number().max(1) as usize,
            "--max-staleness-ms" => args.max_staleness = Duration::from_millis(number()),
            "--heartbeat-ms" => args.heartbeat = Duration::from_millis(number()),
            "--cases" => args.cases = value.split(',').map(String::from).collect(),
            _ => fail(usage),
        }
    }
    for case in &args.cases {
        if !["partition", "locked", "partition-hung"].contains(&case.as_str()) {
            fail(format!("unknown case {case:?}; {usage}"));
        }
    }
    args
}

/// A TCP proxy on 127.0.0.1 that forwards to `upstream` until paused; paused, it neither
/// reads nor writes nor closes anything, as a silent partition would.
struct Proxy {
    address: SocketAddr,
    paused: Arc<AtomicBool>,
}

impl Proxy {
    fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| fail(e));
        let address = listener.local_addr().unwrap_or_else(|e| fail(e));
        let paused = Arc::new(AtomicBool::new(false));
        let accepting = Arc::clone(&paused);
        std::thread::spawn(move || {
            for downstream in listener.incoming() {
                let Ok(downstream) = downstream else { continue };
                let Ok(upstream) = TcpStream::connect(upstream) else {
                    let _ = downstream.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = downstream.set_nodelay(true);
                let _ = upstream.set_nodelay(true);
                for (from, to) in [
                    (downstream.try_clone(), upstream.try_clone()),
                    (upstream.try_clone(), downstream.try_clone()),
                ] {
                    let (Ok(from), Ok(to)) = (from, to) else {
                        continue;
                    };
                    let paused = Arc::clone(&accepting);
                    std::thread::spawn(move || pump(from, to, &paused));
                }
            }
        });
        Proxy { address, paused }
    }

    fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
    }

    fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` while not paused; passes an end of stream on.
fn pump(mut from: TcpStream, mut to: TcpStream, paused: &AtomicBool) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(2)));
    let mut buffer = [0u8; 16 * 1024];
    loop {
        if paused.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        match from.read(&mut buffer) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                // Read just before a pause: held back until the pause ends.
                while paused.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                if to.write_all(&buffer[..n]).is_err() {
                    let _ = from.shutdown(Shutdown::Both);
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

/// The test's own SQL connection, on a runtime of its own; drops the schema at the end.
struct Admin {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
    store: Store,
}

impl Admin {
    fn connect(conninfo: &str, store: Store) -> Admin {
        let (runtime, client) = store_support::connect_migrated(conninfo, &store);
        Admin {
            runtime,
            client,
            store,
        }
    }

    fn run(&self, sql: &str) {
        let sql = self.store.sql(sql);
        self.runtime
            .block_on(self.client.batch_execute(&sql))
            .unwrap_or_else(|e| fail(format!("{sql}: {e}")));
    }

    /// A second session that holds the change log locked until [`Locker::unlock`].
    fn lock_changes(&self, conninfo: &str) -> Locker<'_> {
        let client = self
            .runtime
            .block_on(async {
                let (client, connection) =
                    tokio_postgres::connect(conninfo, tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                let lock = self
                    .store
                    .sql("BEGIN; LOCK TABLE {schema}.changes IN ACCESS EXCLUSIVE MODE");
                client.batch_execute(&lock).await?;
                Ok::<_, tokio_postgres::Error>(client)
            })
            .unwrap_or_else(|e| fail(e));
        Locker {
            admin: self,
            client,
        }
    }
}

impl Drop for Admin {
    fn drop(&mut self) {
        let _ = self.runtime.block_on(self.store.drop_schema(&self.client));
    }
}

struct Locker<'a> {
    admin: &'a Admin,
    client: tokio_postgres::Client,
}

impl Locker<'_> {
    fn unlock(self) {
        let ended = self.client.batch_execute("ROLLBACK");
        self.admin
            .runtime
            .block_on(ended)
            .unwrap_or_else(|e| fail(e));
    }
}

/// The authenticator following the store through the proxy, and a CURVE server in `fleet`.
struct Member {
    name: String,
    context: zmq::Context,
    auth: ThreadAuthenticator,
    server: Server,
    server_key: Certificate,
    client_key: Certificate,
}

impl Member {
    /// Handshakes back to back until one is refused; answers the refusal's time and status,
    /// and adds each handshake's duration to `probes`.
    fn until_refused(&self, give_up: Instant, probes: &mut Vec<f64>) -> (Instant, u32) {
        loop {
            let socket = curve_client(&self.context, &self.server_key.public_key, &self.client_key)
                .unwrap_or_else(|e| fail(e));
            let started = Instant::now();
            let outcome = self.server.attempt(socket);
            probes.push(started.elapsed().as_secs_f64() * 1000.0);
            match outcome {
                Outcome::Admitted { .. } => {}
                Outcome::Refused(status) => return (Instant::now(), status),
                other => fail(format!("neither admitted nor refused: {other:?}")),
            }
            if Instant::now() > give_up {
                fail("still admitted long after max_staleness");
            }
        }
    }

    /// Handshakes (a few milliseconds apart) until one is admitted; answers when.
    fn until_admitted(&self, give_up: Instant) -> Instant {
        loop {
            let socket = curve_client(&self.context, &self.server_key.public_key, &self.client_key)
                .unwrap_or_else(|e| fail(e));
            match self.server.attempt(socket) {
                Outcome::Admitted { .. } => return Instant::now(),
                Outcome::Refused(_) => {}
                other => fail(format!("neither admitted nor refused: {other:?}")),
            }
            if Instant::now() > give_up {
                fail("never admitted again");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The sending time of the last proof, from the source's staleness: read before the
    /// stats are asked for, so it can only come out earlier than it was (and `over_ms`
    /// larger), never later.
    fn last_proof(&self) -> Instant {
        let now = Instant::now();
        let stats = self.auth.stats().unwrap_or_else(|e| fail(e));
        let source = stats
            .sources
            .get(&self.name)
            .unwrap_or_else(|| fail("no stats for the source"));
        let staleness = source.staleness.unwrap_or_else(|| fail("no proof yet"));
        now - staleness
    }
}

fn percentile(sorted: &[f64], p: usize) -> f64 {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn main() {
    let args = args();
    let conninfo = std::env::var("FLEET_DATABASE")
        .unwrap_or_else(|_| "host=127.0.0.1 user=postgres dbname=test".into());
    let upstream: SocketAddr = std::env::var("FLEET_PG_ADDRESS")
        .unwrap_or_else(|_| "127.0.0.1:5432".into())
        .parse()
        .unwrap_or_else(|e| fail(format!("FLEET_PG_ADDRESS: {e}")));
    let store =
        Store::new(&format!("staleness_{}", std::process::id())).unwrap_or_else(|e| fail(e));
    let admin = Admin::connect(&conninfo, store.clone());
    let client_key = Certificate::generate().unwrap_or_else(|e| fail(e));
    let server_key = Certificate::generate().unwrap_or_else(|e| fail(e));
    admin.run(&format!(
        "INSERT INTO {{schema}}.curve_keys (domain, public_key) VALUES ('fleet', '{}')",
        client_key.public_key.to_z85()
    ));

    let proxy = Proxy::start(upstream);
    // The same connection string (key=value form), through the proxy.
    let mut through_proxy: Vec<String> = (conninfo.split_whitespace())
        .filter(|pair| {
            !["host=", "hostaddr=", "port="]
                .iter()
                .any(|k| pair.starts_with(k))
        })
        .map(String::from)
        .collect();
    through_proxy.push(format!("host={}", proxy.address.ip()));
    through_proxy.push(format!("port={}", proxy.address.port()));
    let through_proxy = through_proxy.join(" ");
    let context = zmq::Context::new();
    let auth = ThreadAuthenticator::start(&context).unwrap_or_else(|e| fail(e));
    let name = store.schema().to_owned();
    let source = PostgresSource::new(&through_proxy, ["fleet"])
        .unwrap_or_else(|e| fail(e))
        .store(store.clone())
        .named(name.clone())
        .max_staleness(args.max_staleness)
        .heartbeat(args.heartbeat)
        .backoff(Duration::from_millis(20), Duration::from_millis(200));
    let handle = block_on(auth.handle().serve(source)).unwrap_or_else(|e| fail(e));
    let deadline = Instant::now() + Duration::from_secs(60);
    if let Err(error) = block_on(handle.synced_first(deadline)) {
        fail(format!("no snapshot in force: {error}"));
    }
    let secret = server_key.secret_key.clone().expect("secret key");
    let socket = ServerSocket::curve("fleet", secret)
        .build(&context, zmq::REP)
        .unwrap_or_else(|e| fail(e));
    let server = Server::start(&context, socket, |_| "ok".into()).unwrap_or_else(|e| fail(e));
    let member = Member {
        name,
        context,
        auth,
        server,
        server_key,
        client_key,
    };
    let patience = args.max_staleness + Duration::from_secs(30);
    let heartbeat = args.heartbeat.min(args.max_staleness / 4);

    for case in &args.cases {
        let mut over = Vec::new();
        let mut recover = Vec::new();
        let mut probes = Vec::new();
        for _ in 0..args.trials {
            member.until_admitted(Instant::now() + patience);
            // Let a heartbeat or two prove the source up to date before the cut.
            std::thread::sleep(heartbeat * 2);
            let (refused, status, heal): (Instant, u32, Box<dyn FnOnce() -> Instant + '_>) =
                match case.as_str() {
                    "partition" => {
                        proxy.pause();
                        let (at, status) =
                            member.until_refused(Instant::now() + patience, &mut probes);
                        let heal = Box::new(|| {
                            proxy.resume();
                            Instant::now()
                        });
                        (at, status, heal)
                    }
                    "locked" => {
                        let locker = admin.lock_changes(&conninfo);
                        let (at, status) =
                            member.until_refused(Instant::now() + patience, &mut probes);
                        let heal = Box::new(move || {
                            locker.unlock();
                            Instant::now()
                        });
                        (at, status, heal)
                    }
                    _ => {
                        proxy.pause();
                        std::thread::sleep(heartbeat * 3);
                        let locker = admin.lock_changes(&conninfo);
                        proxy.resume();
                        let (at, status) =
                            member.until_refused(Instant::now() + patience, &mut probes);
                        let heal = Box::new(move || {
                            locker.unlock();
                            Instant::now()
                        });
                        (at, status, heal)
                    }
                };
            // The proof the refusal ended: the source's staleness says when it was sent (no
            // read can prove anything while the cut lasts).
            let proof = member.last_proof();
            if status != 500 {
                fail(format!("refused with {status}, not as a stale store (500)"));
            }
            let late = refused.saturating_duration_since(proof);
            over.push((late.as_secs_f64() - args.max_staleness.as_secs_f64()) * 1000.0);
            if args.verbose {
                eprintln!(
                    "case={case} trial={} over_ms={:.1}",
                    over.len(),
                    over[over.len() - 1]
                );
            }
            let healed = heal();
            let admitted = member.until_admitted(healed + patience);
            recover.push(admitted.duration_since(healed).as_secs_f64() * 1000.0);
        }
        over.sort_by(f64::total_cmp);
        recover.sort_by(f64::total_cmp);
        probes.sort_by(f64::total_cmp);
        println!(
            "case={case} trials={} max_staleness_ms={} heartbeat_ms={} p50_over_ms={:.1} \
             max_over_ms={:.1} min_over_ms={:.1} p50_probe_ms={:.1} p50_recover_ms={:.0}",
            args.trials,
            args.max_staleness.as_millis(),
            heartbeat.as_millis(),
            percentile(&over, 50),
            over[over.len() - 1],
            over[0],
            percentile(&probes, 50),
            percentile(&recover, 50),
        );
    }
    handle.stop();
    member.server.stop();
    member.auth.stop();
}
