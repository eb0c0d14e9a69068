//! Revocation that ends sessions, measured (a harness-less bench target):
//!
//! ```text
//! cargo bench --bench sessions -- [--trials 300] [--messages 1000000] [--rounds 5]
//! ```
//!
//! 1. **Revocation → disconnect**: a CURVE client sends one message to a [`SessionSocket`]
//!    (its session is bound), its key is removed (`RemoveCurveKeys`), and the time from that
//!    removal's `Ok` to the client's own monitor reporting `DISCONNECTED` is taken; p50, p99
//!    and max over `--trials` trials, each with a fresh client and key.
//! 2. **The check's cost on the receive path**: `--messages` messages of 10 bytes and of 1 KiB
//!    are queued in a NULL-with-domain server (every session carries a mark), then received with
//!    non-blocking receives, by a bare `zmq::Socket` and by a [`SessionSocket`] in alternating
//!    rounds; the cost is (wrapped − bare) / messages, the ratio bare / wrapped (throughput).
//!
//! Prints one `key=value` line per measurement. Without `--bench` (as `cargo test --benches`
//! runs it) the defaults are 5 trials, 10,000 messages and 1 round: a check that it works.

use std::time::{Duration, Instant};

use actix_zap::keys::CurvePublicKey;
use actix_zap::messages::{AddCurveKeys, RemoveCurveKeys};
use actix_zap::policy::CurveEntry;
use actix_zap::{ServerSocket, ThreadAuthenticator};

struct Options {
    trials: usize,
    messages: usize,
    rounds: usize,
}

fn options() -> Options {
    // `cargo bench` passes --bench; `cargo test --benches` (CI) does not: a quick run that only
    // shows the measurements still work, as criterion's test mode does.
    let measuring = std::env::args().any(|arg| arg == "--bench");
    let mut options = if measuring {
        Options {
            trials: 300,
            messages: 1_000_000,
            rounds: 5,
        }
    } else {
        Options {
            trials: 5,
            messages: 10_000,
            rounds: 1,
        }
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().and_then(|v| v.parse().ok());
        match arg.as_str() {
            "--trials" => options.trials = value().expect("--trials N"),
            "--messages" => options.messages = value().expect("--messages N"),
            "--rounds" => options.rounds = value().expect("--rounds N"),
            // cargo bench passes --bench; nothing else is expected.
            _ => {}
        }
    }
    options
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn keys() -> (CurvePublicKey, actix_zap::keys::CurveSecretKey) {
    let cert = actix_zap::certs::Certificate::generate().unwrap();
    (cert.public_key, cert.secret_key.unwrap())
}

fn revocation_latency(trials: usize) {
    let context = zmq::Context::new();
    let auth = ThreadAuthenticator::start(&context).unwrap();
    let (server_public, server_secret) = keys();
    auth.configure_curve_keys("global", Default::default())
        .unwrap();
    let mut server = ServerSocket::curve("global", server_secret)
        .build_sessions(&context, zmq::PULL)
        .unwrap();
    server.raw().set_linger(0).unwrap();
    server.raw().set_rcvtimeo(10_000).unwrap();
    server.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = server.raw().get_last_endpoint().unwrap().unwrap();
    let mut latencies = Vec::with_capacity(trials);
    for trial in 0..trials {
        let (public, secret) = keys();
        auth.send(AddCurveKeys::new("global", [CurveEntry::new(public)]))
            .unwrap();
        let client = context.socket(zmq::PUSH).unwrap();
        client.set_linger(0).unwrap();
        client
            .set_curve_serverkey(server_public.as_bytes())
            .unwrap();
        client.set_curve_publickey(public.as_bytes()).unwrap();
        client.set_curve_secretkey(secret.as_bytes()).unwrap();
        let name = actix_zap::monitor::unique_endpoint("sessions-bench");
        let mask = zmq::SocketEvent::DISCONNECTED as i32;
        let (events, _reader) = actix_zap::monitor::spawn(&context, &client, &name, mask).unwrap();
        client.connect(&endpoint).unwrap();
        client.send("hello", 0).unwrap();
        server.recv_msg(0).expect("the client's message");
        auth.send(RemoveCurveKeys::new("global", [public])).unwrap();
        let ok = Instant::now();
        let (event, _) = events
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("trial {trial}: no disconnect"));
        assert_eq!(event, zmq::SocketEvent::DISCONNECTED as u16);
        latencies.push(ok.elapsed());
    }
    latencies.sort();
    println!(
        "measure=revocation_to_disconnect trials={trials} p50_us={} p99_us={} max_us={}",
        percentile(&latencies, 0.50).as_micros(),
        percentile(&latencies, 0.99).as_micros(),
        latencies.last().unwrap().as_micros(),
    );
    auth.stop();
}

/// Queues `messages` messages of `size` bytes at `server` (bound, NULL with a domain) from one
/// client, then times receiving them all with `receive`.
fn drain(
    context: &zmq::Context,
    endpoint: &str,
    messages: usize,
    size: usize,
    mut receive: impl FnMut() -> bool,
) -> Duration {
    let client = context.socket(zmq::PUSH).unwrap();
    client.set_linger(0).unwrap();
    client.set_sndhwm(0).unwrap();
    client.connect(endpoint).unwrap();
    let payload = vec![7u8; size];
    for _ in 0..messages {
        client.send(&payload[..], 0).unwrap();
    }
    // Everything reaches the server's queue (no receive high-water mark) before the clock
    // starts: what is timed is the receiving alone.
    std::thread::sleep(Duration::from_millis(
        300 + (messages * size / 4_000_000) as u64,
    ));
    let start = Instant::now();
    for received in 0..messages {
        while !receive() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "stuck at {received}"
            );
        }
    }
    let took = start.elapsed();
    drop(client);
    took
}

fn receive_cost(messages: usize, rounds: usize) {
    let context = zmq::Context::new();
    let auth = ThreadAuthenticator::start(&context).unwrap();
    let bare = ServerSocket::null("global")
        .build(&context, zmq::PULL)
        .unwrap();
    bare.set_rcvhwm(0).unwrap();
    bare.set_linger(0).unwrap();
    bare.bind("tcp://127.0.0.1:*").unwrap();
    let bare_endpoint = bare.get_last_endpoint().unwrap().unwrap();
    let mut wrapped = ServerSocket::null("global")
        .build_sessions(&context, zmq::PULL)
        .unwrap();
    wrapped.raw().set_rcvhwm(0).unwrap();
    wrapped.raw().set_linger(0).unwrap();
    wrapped.bind("tcp://127.0.0.1:*").unwrap();
    let wrapped_endpoint = wrapped.raw().get_last_endpoint().unwrap().unwrap();
    for size in [10, 1024] {
        let (mut bare_ns, mut wrapped_ns) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let (mut bare_message, mut wrapped_message) =
                (zmq::Message::new(), zmq::Message::new());
            let mut time_bare = || {
                drain(&context, &bare_endpoint, messages, size, || {
                    bare.recv(&mut bare_message, zmq::DONTWAIT).is_ok()
                })
            };
            let mut time_wrapped = || {
                drain(&context, &wrapped_endpoint, messages, size, || {
                    wrapped.recv(&mut wrapped_message, zmq::DONTWAIT).is_ok()
                })
            };
            let (b, w) = if round % 2 == 0 {
                let b = time_bare();
                (b, time_wrapped())
            } else {
                let w = time_wrapped();
                (time_bare(), w)
            };
            bare_ns.push(b.as_nanos() as f64 / messages as f64);
            wrapped_ns.push(w.as_nanos() as f64 / messages as f64);
        }
        let per_round: Vec<String> = (bare_ns.iter().zip(&wrapped_ns))
            .map(|(b, w)| format!("{:.0}/{:.0}", b, w))
            .collect();
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (b, w) = (median(&mut bare_ns), median(&mut wrapped_ns));
        println!(
            "measure=receive_path size={size} messages={messages} rounds={rounds} \
             bare_ns_per_msg={b:.1} wrapped_ns_per_msg={w:.1} cost_ns_per_msg={:.1} \
             ratio={:.3} rounds_bare/wrapped_ns={}",
            w - b,
            b / w,
            per_round.join(",")
        );
    }
    auth.stop();
}

fn main() {
    let options = options();
    revocation_latency(options.trials);
    receive_cost(options.messages, options.rounds);
}
