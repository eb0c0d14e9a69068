//! A reconnect storm: many CURVE clients reconnect at once to a server that comes back up,
//! and every handshake asks a credentials provider that takes its time (issue 18, item 8).
//!
//! ```text
//! cargo bench --bench reconnect_storm -- --clients 5000 --addresses 50 \
//!     --delay-ms 20 --provider async
//! cargo bench --bench reconnect_storm -- --provider sync --provider-threads 64
//! cargo bench --bench reconnect_storm -- --addresses 1 --address-queue 0   # one NAT
//! ```
//!
//! How it runs:
//!
//! 1. `RLIMIT_NOFILE` is raised (a client holds two descriptors: its TCP connection and its
//!    socket's mailbox; the server one per connection).
//! 2. The clients (PUSH, CURVE, each with a key pair of its own) are created on several
//!    contexts (`--per-context`, at most 1,000: libzmq's `ZMQ_MAX_SOCKETS` is 1,023 per
//!    context), each with its own I/O thread, and connect from `--addresses` loopback source
//!    addresses (`tcp://127.0.0.N:0;127.0.0.1:PORT`, N from 2), so that a per-address cap on
//!    provider lookups is not what is measured. The server is down: libzmq retries every
//!    `ZMQ_RECONNECT_IVL` (100 ms), as after a server restart.
//! 3. The server (PULL, CURVE, `ZMQ_BACKLOG` `--backlog`) binds the port with the
//!    authenticator running on its context; that is time zero. Its monitor (read on a
//!    thread of its own, queue deep enough for every event) counts `HANDSHAKE_SUCCEEDED` and
//!    `HANDSHAKE_FAILED_AUTH` by status. A client that gets `300` waits for the server's
//!    handshake interval (`ZMQ_HANDSHAKE_IVL`, 30 s) before it tries again, so `--wait-s`
//!    (75 s) lets those through too, and the time until all are admitted shows what a `300`
//!    costs.
//!
//! Prints ONE line of `key=value` pairs: the settings, `admitted`, `first_s` (time zero until
//! the first admission), `all_admitted_s` (until the last one, `-` if not all were),
//! `p50_s`/`p90_s`/`p99_s` of the admission times, `status_300`/`status_500` (the server's `HANDSHAKE_FAILED_AUTH` events
//! by status), `other_failures` (other handshake failures), the authenticator's own counts
//! of its `200`/`300`/`500` replies, the peak of `Stats::in_flight` (sampled every 20 ms),
//! `peak_per_address` (the most provider calls that ran at once for one source address: what
//! a cap on lookups in flight per peer address would count),
//! `Stats::held_back` (times the in-flight bound held requests back in libzmq), and the load
//! average before and after.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_zap::certs::Certificate;
use actix_zap::keys::{CurvePublicKey, CurveSecretKey};
use actix_zap::monitor;
use actix_zap::provider::{CurveVerdict, Provider};
use actix_zap::zap::StatusCode;
use actix_zap::{Settings, ThreadAuthenticator};

const DOMAIN: &str = "global";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Async,
    Sync,
}

struct Options {
    clients: usize,
    addresses: usize,
    delay: Duration,
    kind: Kind,
    provider_threads: Option<usize>,
    provider_queue: Option<usize>,
    max_in_flight: Option<usize>,
    deadline: Option<Duration>,
    lookups_per_address: Option<usize>,
    address_queue: Option<usize>,
    backlog: i32,
    per_context: usize,
    wait: Duration,
    down: Duration,
    verbose: bool,
}

fn usage() -> String {
    "usage: reconnect_storm [--clients 5000] [--addresses 50] [--delay-ms 20] \
     [--provider async|sync] [--provider-threads N] [--provider-queue N] [--max-in-flight N] \
     [--deadline-ms N] [--lookups-per-address N] [--address-queue N] [--backlog 8192] [--per-context 1000] [--wait-s 75] [--down-ms 500] \
     [--verbose]"
        .into()
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        clients: 5000,
        addresses: 50,
        delay: Duration::from_millis(20),
        kind: Kind::Async,
        provider_threads: None,
        provider_queue: None,
        max_in_flight: None,
        deadline: None,
        lookups_per_address: None,
        address_queue: None,
        backlog: 8192,
        per_context: 1000,
        wait: Duration::from_secs(75),
        down: Duration::from_millis(500),
        verbose: false,
    };
    // `cargo bench --bench reconnect_storm -- FLAGS` passes `--bench` too.
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        let number = |text: String| text.parse::<usize>().map_err(|e| format!("{text}: {e}"));
        match arg.as_str() {
            "--clients" => options.clients = number(value()?)?,
            "--addresses" => options.addresses = number(value()?)?,
            "--delay-ms" => options.delay = Duration::from_millis(number(value()?)? as u64),
            "--provider" => {
                options.kind = match value()?.as_str() {
                    "async" => Kind::Async,
                    "sync" => Kind::Sync,
                    other => return Err(format!("--provider async|sync, not {other}")),
                }
            }
            "--provider-threads" => options.provider_threads = Some(number(value()?)?),
            "--provider-queue" => options.provider_queue = Some(number(value()?)?),
            "--max-in-flight" => options.max_in_flight = Some(number(value()?)?),
            "--deadline-ms" => {
                options.deadline = Some(Duration::from_millis(number(value()?)? as u64))
            }
            "--lookups-per-address" => options.lookups_per_address = Some(number(value()?)?),
            "--address-queue" => options.address_queue = Some(number(value()?)?),
            "--backlog" => {
                options.backlog = value()?.parse().map_err(|e| format!("--backlog: {e}"))?
            }
            "--per-context" => options.per_context = number(value()?)?,
            "--wait-s" => options.wait = Duration::from_secs(number(value()?)? as u64),
            "--down-ms" => options.down = Duration::from_millis(number(value()?)? as u64),
            "--verbose" | "-v" => options.verbose = true,
            "--help" | "-h" => return Err(usage()),
            other => return Err(format!("unknown argument {other}\n{}", usage())),
        }
    }
    if options.clients == 0 || options.addresses == 0 || options.per_context == 0 {
        return Err("--clients, --addresses and --per-context must be positive".into());
    }
    if options.addresses > 250 {
        return Err("--addresses: at most 250 (127.0.0.2 to 127.0.0.251)".into());
    }
    if options.per_context > 1000 {
        return Err("--per-context: at most 1000 (ZMQ_MAX_SOCKETS is 1023 per context)".into());
    }
    Ok(options)
}

/// Raises the soft and hard `RLIMIT_NOFILE` to at least `wanted` (the hard one needs root).
fn raise_nofile(wanted: u64) -> Result<u64, String> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(format!("getrlimit: {}", std::io::Error::last_os_error()));
    }
    if limit.rlim_cur >= wanted {
        return Ok(limit.rlim_cur);
    }
    let raised = libc::rlimit {
        rlim_cur: wanted,
        rlim_max: limit.rlim_max.max(wanted),
    };
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(format!(
            "setrlimit(RLIMIT_NOFILE, {wanted}): {} (run as root, or raise `ulimit -n`)",
            std::io::Error::last_os_error()
        ));
    }
    Ok(wanted)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn pair() -> (CurvePublicKey, CurveSecretKey) {
    let cert = Certificate::generate().expect("CURVE key generation (libzmq with CURVE?)");
    (cert.public_key, cert.secret_key.unwrap())
}

fn settings(options: &Options) -> Settings {
    let mut settings = Settings::default();
    if let Some(threads) = options.provider_threads {
        settings = settings.with_provider_threads(threads);
    }
    if let Some(queue) = options.provider_queue {
        settings = settings.with_provider_queue(queue);
    }
    if let Some(max) = options.max_in_flight {
        settings = settings.with_max_in_flight(max);
    }
    if let Some(deadline) = options.deadline {
        settings = settings.with_provider_deadline(deadline);
    }
    if let Some(lookups) = options.lookups_per_address {
        settings = settings.with_lookups_per_address(lookups);
    }
    if let Some(queue) = options.address_queue {
        settings = settings.with_address_queue(queue);
    }
    settings
}

/// Provider calls: in all, and running at once per client source address (what a cap on
/// lookups in flight per peer address would count).
struct Calls {
    total: AtomicUsize,
    /// Each client's key to its source address's index.
    address: HashMap<CurvePublicKey, usize>,
    running: Vec<AtomicUsize>,
    peak: Vec<AtomicUsize>,
}

impl Calls {
    fn new(keys: &[(CurvePublicKey, CurveSecretKey)], addresses: usize) -> Calls {
        Calls {
            total: AtomicUsize::new(0),
            address: keys
                .iter()
                .enumerate()
                .map(|(n, (public, _))| (*public, n % addresses))
                .collect(),
            running: (0..addresses).map(|_| AtomicUsize::new(0)).collect(),
            peak: (0..addresses).map(|_| AtomicUsize::new(0)).collect(),
        }
    }

    /// A call for `key` starts; the returned index ends it.
    fn start(&self, key: &CurvePublicKey) -> Option<usize> {
        self.total.fetch_add(1, Ordering::Relaxed);
        let address = *self.address.get(key)?;
        let now = self.running[address].fetch_add(1, Ordering::Relaxed) + 1;
        self.peak[address].fetch_max(now, Ordering::Relaxed);
        Some(address)
    }

    fn end(&self, address: Option<usize>) {
        if let Some(address) = address {
            self.running[address].fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The highest number of calls that ran at once for one address.
    fn peak_per_address(&self) -> usize {
        let peaks = self.peak.iter().map(|p| p.load(Ordering::Relaxed));
        peaks.max().unwrap_or(0)
    }
}

fn provider(kind: Kind, delay: Duration, calls: Arc<Calls>) -> Provider {
    match kind {
        Kind::Async => Provider::from_async_fn(move |_domain: String, key| {
            let calls = Arc::clone(&calls);
            let address = calls.start(&key);
            async move {
                tokio::time::sleep(delay).await;
                calls.end(address);
                Ok(CurveVerdict::admit())
            }
        }),
        Kind::Sync => Provider::from_fn(move |_domain: &str, key: &CurvePublicKey| {
            let address = calls.start(key);
            std::thread::sleep(delay);
            calls.end(address);
            Ok(CurveVerdict::admit())
        }),
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().unwrap().port()
}

fn percentile(sorted: &[Duration], p: f64) -> String {
    if sorted.is_empty() {
        return "-".into();
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    format!(
        "{:.3}",
        sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64()
    )
}

fn main() {
    let options = options().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let log = |what: &str| {
        if options.verbose {
            eprintln!("{what}");
        }
    };
    let wanted = 3 * options.clients as u64 + 4096;
    let nofile = raise_nofile(wanted).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    let load_before = load_average();

    let started = Instant::now();
    let (server_public, server_secret) = pair();
    let client_keys: Vec<_> = (0..options.clients).map(|_| pair()).collect();
    log(&format!(
        "{} key pairs in {:.2?}",
        options.clients + 1,
        started.elapsed()
    ));

    let server_context = zmq::Context::new();
    let settings = settings(&options);
    let auth = ThreadAuthenticator::builder()
        .settings(settings.clone())
        .start(&server_context)
        .expect("authenticator");
    let calls = Arc::new(Calls::new(&client_keys, options.addresses));
    auth.configure_curve_callback(
        "*",
        provider(options.kind, options.delay, Arc::clone(&calls)),
    )
    .unwrap();

    // The clients, connecting to a port where nothing listens yet.
    let port = free_port();
    let contexts: Vec<zmq::Context> = (0..options.clients.div_ceil(options.per_context))
        .map(|_| zmq::Context::new())
        .collect();
    let mut clients = Vec::with_capacity(options.clients);
    for (n, (public, secret)) in client_keys.iter().enumerate() {
        let context = &contexts[n / options.per_context];
        let socket = context.socket(zmq::PUSH).expect("client socket");
        socket.set_linger(0).unwrap();
        socket
            .set_curve_serverkey(server_public.as_bytes())
            .unwrap();
        socket.set_curve_publickey(public.as_bytes()).unwrap();
        socket.set_curve_secretkey(secret.as_bytes()).unwrap();
        let source = 2 + n % options.addresses;
        socket
            .connect(&format!("tcp://127.0.0.{source}:0;127.0.0.1:{port}"))
            .expect("client connect");
        clients.push(socket);
    }
    log(&format!(
        "{} clients on {} contexts from {} addresses, port {port}",
        clients.len(),
        contexts.len(),
        options.addresses
    ));
    // Down for a while: every client is in its reconnect loop when the server comes back.
    std::thread::sleep(options.down);

    let server = server_context.socket(zmq::PULL).unwrap();
    server.set_linger(0).unwrap();
    server.set_backlog(options.backlog).unwrap();
    server.set_zap_domain(DOMAIN).unwrap();
    server.set_curve_server(true).unwrap();
    server
        .set_curve_secretkey(server_secret.as_bytes())
        .unwrap();
    let mask = zmq::SocketEvent::HANDSHAKE_SUCCEEDED as i32
        | zmq::SocketEvent::HANDSHAKE_FAILED_AUTH as i32
        | zmq::SocketEvent::HANDSHAKE_FAILED_NO_DETAIL as i32
        | zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL as i32;
    let (events, monitor_thread) = monitor::spawn_queued(
        &server_context,
        &server,
        "inproc://reconnect-storm-monitor",
        mask,
        4 * options.clients + 1024,
    )
    .expect("server monitor");

    // Peak of the requests being decided, sampled while the storm lasts.
    let sampling = Arc::new(AtomicBool::new(true));
    let peak = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (auth, sampling, peak) = (auth.clone(), Arc::clone(&sampling), Arc::clone(&peak));
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                if let Ok(stats) = auth.stats() {
                    peak.fetch_max(stats.in_flight, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    server
        .bind(&format!("tcp://127.0.0.1:{port}"))
        .expect("server bind");
    let zero = Instant::now();
    let succeeded = zmq::SocketEvent::HANDSHAKE_SUCCEEDED as u16;
    let failed_auth = zmq::SocketEvent::HANDSHAKE_FAILED_AUTH as u16;
    let mut admitted: Vec<Duration> = Vec::with_capacity(options.clients);
    let (mut status_300, mut status_500, mut status_other, mut other_failures) = (0, 0, 0, 0);
    let mut reported = Instant::now();
    while admitted.len() < options.clients {
        let left = options.wait.saturating_sub(zero.elapsed());
        if left.is_zero() {
            break;
        }
        match events.recv_timeout(left) {
            Ok((event, _)) if event == succeeded => admitted.push(zero.elapsed()),
            Ok((event, 300)) if event == failed_auth => status_300 += 1,
            Ok((event, 500)) if event == failed_auth => status_500 += 1,
            Ok((event, _)) if event == failed_auth => status_other += 1,
            Ok(_) => other_failures += 1,
            Err(_) => break,
        }
        if options.verbose && reported.elapsed() >= Duration::from_secs(1) {
            reported = Instant::now();
            eprintln!(
                "{:>6.2}s admitted {} 300s {status_300} 500s {status_500} other {other_failures} \
                 in_flight peak {}",
                zero.elapsed().as_secs_f64(),
                admitted.len(),
                peak.load(Ordering::Relaxed)
            );
        }
    }
    let load_after = load_average();
    sampling.store(false, Ordering::Relaxed);
    sampler.join().unwrap();
    let stats = auth.stats().expect("stats");

    let all = admitted.len() == options.clients;
    let all_admitted_s = match admitted.last() {
        Some(last) if all => format!("{:.3}", last.as_secs_f64()),
        _ => "-".into(),
    };
    let kind = match options.kind {
        Kind::Async => "async",
        Kind::Sync => "sync",
    };
    println!(
        "clients={} addresses={} per_address={} provider={kind} delay_ms={} \
         max_in_flight={} provider_threads={} provider_queue={} deadline_ms={} \
         lookups_per_address={} address_queue={} backlog={} \
         contexts={} nofile={nofile} admitted={} first_s={} all_admitted_s={all_admitted_s} p50_s={} \
         p90_s={} p99_s={} status_300={status_300} status_500={status_500} \
         status_other={status_other} other_failures={other_failures} replies_200={} \
         replies_300={} replies_500={} provider_calls={} peak_in_flight={} \
         peak_per_address={} held_back={} \
         monitor_dropped={} load_before={load_before} load_after={load_after}",
        options.clients,
        options.addresses,
        options.clients.div_ceil(options.addresses),
        options.delay.as_millis(),
        settings.max_in_flight(),
        settings.provider_threads(),
        settings.provider_queue(),
        settings.provider_deadline().as_millis(),
        settings.lookups_per_address(),
        settings.address_queue(),
        options.backlog,
        contexts.len(),
        admitted.len(),
        percentile(&admitted, 0.0),
        percentile(&admitted, 50.0),
        percentile(&admitted, 90.0),
        percentile(&admitted, 99.0),
        stats.count(StatusCode::Ok),
        stats.count(StatusCode::TryLater),
        stats.count(StatusCode::InternalError),
        calls.total.load(Ordering::Relaxed),
        peak.load(Ordering::Relaxed),
        calls.peak_per_address(),
        stats.held_back,
        events.dropped(),
    );

    drop(clients);
    drop(server);
    monitor_thread.join().unwrap();
    auth.stop();
    drop(contexts);
    drop(server_context);
    if !all {
        std::process::exit(1);
    }
}
