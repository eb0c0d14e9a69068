//! The actor path, in-process: a DEALER connected to `inproc://zeromq.zap.01` sends raw ZAP
//! requests into a running authenticator's `ZapSocket` and receives the replies. Compared
//! with `benches/decision.rs`, this shows what the socket, the two actors and the mailbox
//! add to the sans-IO decision.
//!
//! - `actor_path/roundtrip/*`: one request, one reply (latency).
//! - `actor_path/pipelined/*`: 1,000 requests sent, then 1,000 replies received.
//! - `async_provider/1000_in_flight_20ms`: a provider that sleeps 20 ms per key; 1,000 requests
//!   in flight must finish in well under a second (ideal: 20 ms).
//! - `config_under_load/*`: requests keep flowing (64 in flight) while a configuration message
//!   is sent; measured is the time from sending it until a probe request flips from `400` to
//!   `200`. The flow's throughput during that time and without any configuration is printed
//!   as `config_under_load: ...` lines.
//!
//! Run: `cargo bench --bench actors -- --warm-up-time 1 --measurement-time 3`

#[path = "support/xorshift.rs"]
mod xorshift;

use std::cell::RefCell;
use std::path::Path;
use std::time::{Duration, Instant};
use xorshift::XorShift;

use actix_zap::certs::{CertStore, Certificate, Flavour};
use actix_zap::keys::CurvePublicKey;
use actix_zap::messages::{Allow, ConfigureCurve, SetAddressRules};
use actix_zap::policy::{AddressRules, AddressSet};
use actix_zap::provider::{CurveVerdict, Provider};
use actix_zap::zap::RequestBuilder;
use actix_zap::{ThreadAuthenticator, CURVE_ALLOW_ANY};
use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use futures::executor::block_on;

const ZAP_ENDPOINT: &str = "inproc://zeromq.zap.01";
const PIPELINE: usize = 1000;
/// Requests in flight while a configuration message is applied.
const WINDOW: usize = 64;
/// One request in this many is a probe for the configuration change.
const PROBE_EVERY: u64 = 16;
const DIRECTORY_KEYS: usize = 10_000;

/// A CURVE request from the client with this public key.
fn curve_client(key: [u8; 32]) -> RequestBuilder {
    RequestBuilder::curve(CurvePublicKey::from_bytes(key))
}

/// `request` in `domain`, as libzmq's DEALER-side ZAP client would send it: delimiter, then
/// the frames.
fn sent(request: RequestBuilder, domain: &str) -> Vec<Vec<u8>> {
    request.domain(domain).frames_for_dealer()
}

/// A named request and the status it must get.
type Scenario<'a> = (&'a str, Vec<Vec<u8>>, &'a [u8]);
/// A named configuration change, the probe that shows it, and where the flow rates go.
type Case<'a> = (&'a str, &'a [Vec<u8>], &'a dyn Fn(), &'a RefCell<Vec<f64>>);

/// Reply frames seen by the DEALER: `["", "1.0", id, status, text, user id, metadata]`.
struct Answer(Vec<Vec<u8>>);

impl Answer {
    fn id(&self) -> &[u8] {
        &self.0[2]
    }
    fn status(&self) -> &[u8] {
        &self.0[3]
    }
}

struct Rig {
    // Drop order: the DEALERs, then the authenticator (stopped explicitly), then the context.
    /// One connection, one request at a time ([`ask`](Self::ask)).
    dealer: zmq::Socket,
    /// One connection per request in flight ([`send`](Self::send), [`recv`](Self::recv)), as
    /// libzmq has one ZAP pipe per session: the authenticator answers only the newest request
    /// of a routing id (a session that asked again gave up on the older one), and a DEALER
    /// takes its connections in turn.
    fan: zmq::Socket,
    auth: Option<ThreadAuthenticator>,
    _context: zmq::Context,
}

impl Rig {
    fn new() -> Rig {
        let context = zmq::Context::new();
        let auth = ThreadAuthenticator::start(&context).expect("authenticator");
        let dealer = |connections| {
            let dealer = context.socket(zmq::DEALER).unwrap();
            dealer.set_linger(0).unwrap();
            dealer.set_sndhwm(0).unwrap();
            dealer.set_rcvhwm(0).unwrap();
            dealer.set_rcvtimeo(10_000).unwrap();
            for _ in 0..connections {
                dealer.connect(ZAP_ENDPOINT).unwrap();
            }
            dealer
        };
        Rig {
            dealer: dealer(1),
            fan: dealer(PIPELINE),
            auth: Some(auth),
            _context: context,
        }
    }

    fn auth(&self) -> &ThreadAuthenticator {
        self.auth.as_ref().unwrap()
    }

    /// One request and its answer.
    fn ask(&self, frames: &[Vec<u8>]) -> Answer {
        self.dealer.send_multipart(frames, 0).unwrap();
        Answer(self.dealer.recv_multipart(0).expect("a reply within 10 s"))
    }

    /// One more request in flight (at most [`PIPELINE`]).
    fn send(&self, frames: &[Vec<u8>]) {
        self.fan.send_multipart(frames, 0).unwrap();
    }

    /// The next answer to a request in flight.
    fn recv(&self) -> Answer {
        Answer(self.fan.recv_multipart(0).expect("a reply within 10 s"))
    }

    fn expect(&self, frames: &[Vec<u8>], status: &[u8]) {
        let answer = self.ask(frames);
        assert_eq!(
            answer.status(),
            status,
            "{:?}",
            String::from_utf8_lossy(&answer.0[4])
        );
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(auth) = self.auth.take() {
            auth.stop();
        }
    }
}

fn actor_path(c: &mut Criterion) {
    let rig = Rig::new();
    let auth = rig.auth();
    let mut rng = XorShift::new(0x9E37_79B9_7F4A_7C15);
    let known = rng.key();
    auth.allow(["127.0.0.1"]).unwrap();
    auth.configure_plain("*", [("admin", "secret")]).unwrap();
    let store: CertStore = [CurvePublicKey::from_bytes(known)].into_iter().collect();
    block_on(auth.handle().configure_curve_keys("certs", store)).unwrap();
    auth.configure_curve("any", CURVE_ALLOW_ANY).unwrap();

    let unknown = rng.key();
    let scenarios: Vec<Scenario> = vec![
        (
            "null_allow_list",
            sent(RequestBuilder::null(), "global"),
            b"200",
        ),
        (
            "plain",
            sent(RequestBuilder::plain("admin", "secret"), "global"),
            b"200",
        ),
        ("curve_certs", sent(curve_client(known), "certs"), b"200"),
        ("curve_any", sent(curve_client(unknown), "any"), b"200"),
        (
            "refused_curve_unknown_key",
            sent(curve_client(unknown), "certs"),
            b"400",
        ),
        (
            "refused_plain_wrong_password",
            sent(RequestBuilder::plain("admin", "nope"), "global"),
            b"400",
        ),
    ];
    for (_, frames, status) in &scenarios {
        rig.expect(frames, status);
    }

    let mut group = c.benchmark_group("actor_path");
    group.throughput(Throughput::Elements(1));
    for (name, frames, _) in &scenarios {
        group.bench_function(BenchmarkId::new("roundtrip", name), |b| {
            b.iter(|| rig.ask(frames))
        });
    }
    group.throughput(Throughput::Elements(PIPELINE as u64));
    group.sample_size(20);
    for (name, frames, _) in &scenarios {
        group.bench_function(BenchmarkId::new("pipelined", name), |b| {
            b.iter(|| {
                for _ in 0..PIPELINE {
                    rig.send(frames);
                }
                for _ in 0..PIPELINE {
                    rig.recv();
                }
            })
        });
    }
    group.finish();
}

fn async_provider(c: &mut Criterion) {
    let rig = Rig::new();
    let provider = Provider::from_async_fn(|_domain: String, _key| async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(CurveVerdict::admit())
    });
    rig.auth().configure_curve_callback("*", provider).unwrap();
    let key = XorShift::new(7).key();
    // 1,000 clients, each from an address of its own: from one address, all but the first
    // few would be refused as a flood ("Too many attempts in flight", `Settings::address_queue`).
    let requests: Vec<Vec<Vec<u8>>> = (0..PIPELINE)
        .map(|n| {
            let address = format!("10.0.{}.{}", n / 250, n % 250 + 1);
            sent(curve_client(key).address(address), "slow")
        })
        .collect();
    rig.expect(&requests[0], b"200");

    let mut group = c.benchmark_group("async_provider");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(PIPELINE as u64));
    group.bench_function("1000_in_flight_20ms", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                for frames in &requests {
                    rig.send(frames);
                }
                for _ in 0..PIPELINE {
                    let answer = rig.recv();
                    assert_eq!(
                        answer.status(),
                        b"200",
                        "{}",
                        String::from_utf8_lossy(&answer.0[4])
                    );
                }
            }
            start.elapsed()
        })
    });
    group.finish();
}

/// Writes `keys` as pyzmq public certificate files (no fsync: this is a benchmark fixture).
fn write_directory(dir: &Path, keys: &[[u8; 32]]) {
    for (i, key) in keys.iter().enumerate() {
        let cert = Certificate {
            public_key: CurvePublicKey::from_bytes(*key),
            secret_key: None,
            metadata: Vec::new(),
        };
        let text = cert.to_public_text(Flavour::Pyzmq).unwrap();
        std::fs::write(dir.join(format!("client{i:05}.key")), text).unwrap();
    }
}

/// What one run of the request flow saw.
struct Flow {
    /// From sending the configuration until the first probe answered `200`.
    flip: Option<Duration>,
    /// Flow (non-probe) replies per second: during the change, or over the whole run.
    rate: f64,
}

/// Keeps `WINDOW` requests in flight (one in `PROBE_EVERY` a probe), calls `change` after
/// `warm_up`, and stops at the first admitted probe (or after `run` without a change).
fn flow(
    rig: &Rig,
    normal: &[Vec<u8>],
    probe: &[Vec<u8>],
    warm_up: Duration,
    run: Duration,
    change: Option<&dyn Fn()>,
) -> Flow {
    let start = Instant::now();
    let mut sent = 0u64;
    let mut send = |rig: &Rig| {
        sent += 1;
        rig.send(if sent.is_multiple_of(PROBE_EVERY) {
            probe
        } else {
            normal
        });
    };
    for _ in 0..WINDOW {
        send(rig);
    }
    let mut outstanding = WINDOW;
    let mut changed_at: Option<Instant> = None;
    let mut flipped: Option<Instant> = None;
    let mut flow_replies = 0u64;
    let mut during = 0u64;
    while outstanding > 0 {
        let answer = rig.recv();
        outstanding -= 1;
        if answer.id() == b"p" {
            if answer.status() == b"200" {
                assert!(changed_at.is_some(), "probe admitted before the change");
                flipped.get_or_insert_with(Instant::now);
            }
        } else {
            assert_eq!(answer.status(), b"200", "flow request refused");
            flow_replies += 1;
            if changed_at.is_some() && flipped.is_none() {
                during += 1;
            }
        }
        if let (None, Some(change)) = (changed_at, change) {
            if start.elapsed() >= warm_up {
                changed_at = Some(Instant::now());
                change();
            }
        }
        let done = match change {
            Some(_) => flipped.is_some(),
            None => start.elapsed() >= run,
        };
        if !done {
            send(rig);
            outstanding += 1;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no flip in 30 s");
    }
    match (changed_at, flipped) {
        (Some(at), Some(flip)) => {
            let flip = flip - at;
            Flow {
                flip: Some(flip),
                rate: during as f64 / flip.as_secs_f64(),
            }
        }
        _ => Flow {
            flip: None,
            rate: flow_replies as f64 / start.elapsed().as_secs_f64(),
        },
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

fn config_under_load(c: &mut Criterion) {
    let rig = Rig::new();
    let auth = rig.auth();
    let mut rng = XorShift::new(0xD1B5_4A32_D192_ED03);
    let keys: Vec<[u8; 32]> = (0..DIRECTORY_KEYS).map(|_| rng.key()).collect();
    let dir = tempfile::tempdir().unwrap();
    write_directory(dir.path(), &keys);
    let (flowing, newcomer) = (keys[0], keys[DIRECTORY_KEYS - 1]);
    let normal = sent(curve_client(flowing).request_id("f"), "global");
    let new_key = sent(curve_client(newcomer).request_id("p"), "global");
    let new_address = sent(
        curve_client(flowing).request_id("p").address("10.9.9.9"),
        "global",
    );

    // Before each run: only the flowing key, only 127.0.0.1.
    let reset = || {
        let only_flowing: CertStore = [CurvePublicKey::from_bytes(flowing)].into_iter().collect();
        block_on(auth.handle().configure_curve_keys("*", only_flowing)).unwrap();
        let mut local_only = AddressSet::default();
        local_only.insert("127.0.0.1".parse().unwrap());
        block_on(
            auth.handle()
                .send(SetAddressRules(AddressRules::Allow(local_only))),
        )
        .unwrap();
        rig.expect(&normal, b"200");
        rig.expect(&new_key, b"400");
        rig.expect(&new_address, b"400");
    };
    reset();
    let handle = auth.handle().clone();
    let configure_directory = || {
        let (handle, path) = (handle.clone(), dir.path().to_path_buf());
        // The configuring party waits for its answer on a thread of its own.
        std::thread::spawn(move || {
            let report = block_on(handle.send(ConfigureCurve::directory("*", path))).unwrap();
            assert_eq!(report.keys, DIRECTORY_KEYS);
        });
    };
    let allow = || {
        let handle = handle.clone();
        std::thread::spawn(move || {
            block_on(handle.send(Allow::new(["10.9.9.9"]).unwrap())).unwrap();
        });
    };

    let warm_up = Duration::from_millis(20);
    let during_dir = RefCell::new(Vec::new());
    let during_allow = RefCell::new(Vec::new());
    let mut group = c.benchmark_group("config_under_load");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    let cases: [Case; 2] = [
        (
            "configure_curve_dir_10k",
            &new_key,
            &configure_directory,
            &during_dir,
        ),
        ("allow", &new_address, &allow, &during_allow),
    ];
    for (name, probe, change, rates) in cases {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    reset();
                    let seen = flow(&rig, &normal, probe, warm_up, warm_up, Some(change));
                    total += seen.flip.unwrap();
                    rates.borrow_mut().push(seen.rate);
                }
                total
            })
        });
    }
    group.finish();

    reset();
    let mut without: Vec<f64> = (0..10)
        .map(|_| {
            flow(
                &rig,
                &normal,
                &new_key,
                warm_up,
                Duration::from_millis(200),
                None,
            )
            .rate
        })
        .collect();
    let without = median(&mut without);
    for (name, rates) in [
        ("configure_curve_dir_10k", during_dir),
        ("allow", during_allow),
    ] {
        let mut rates = rates.borrow_mut();
        if rates.is_empty() {
            continue; // filtered out of this run
        }
        let during = median(&mut rates);
        println!(
            "config_under_load: change={name} flow_during_per_s={during:.0} \
             flow_without_per_s={without:.0} ratio={:.2}",
            during / without
        );
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = actor_path, async_provider, config_under_load
}
criterion_main!(benches);
