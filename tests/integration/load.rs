//! Load: 200 concurrent clients per round, 5,000 handshakes of mixed mechanisms with valid
//! and invalid credentials. Every valid client's own message arrives, every invalid client is
//! refused, and the counts match exactly. The 50,000-handshake soak is `#[ignore]`d: run it
//! (in a child process of its own: it reports the process's memory and descriptors) with
//! `cargo test --release --test integration load:: -- --ignored --nocapture`.

use std::collections::HashSet;
use std::path::Path;

use crate::common::*;
use actix_zap::certs::{Certificate, Flavour};
use actix_zap::ThreadAuthenticator;

const CLIENTS_PER_ROUND: usize = 200;

/// One server per mechanism, each with its monitor.
struct Servers {
    plain: Listening,
    curve: Listening,
    curve_keys: Keys,
}

/// The clients of one round: a quarter each of valid PLAIN, invalid PLAIN, known CURVE and
/// unknown CURVE, each sending a message naming itself.
fn run_round(ctx: &zmq::Context, servers: &Servers, trusted: &[Keys], round: usize) {
    let quarter = CLIENTS_PER_ROUND / 4;
    let mut expected_plain = HashSet::new();
    let mut expected_curve = HashSet::new();
    let mut clients = Vec::with_capacity(CLIENTS_PER_ROUND);
    for (i, trusted_keys) in trusted.iter().enumerate().take(quarter) {
        let name = format!("r{round}-plain-{i}");
        clients.push(connect(
            ctx,
            &servers.plain,
            &Client::Plain("user", "right"),
            &name,
        ));
        expected_plain.insert(name);
        // Another username: from one address, a username that failed 5 times is refused
        // whatever its password (the throttle), one that did not is still verified.
        let name = format!("r{round}-plain-bad-{i}");
        clients.push(connect(
            ctx,
            &servers.plain,
            &Client::Plain("intruder", "wrong"),
            &name,
        ));

        let name = format!("r{round}-curve-{i}");
        let known = Client::Curve(servers.curve_keys.public, trusted_keys.clone());
        clients.push(connect(ctx, &servers.curve, &known, &name));
        expected_curve.insert(name);
        let name = format!("r{round}-curve-bad-{i}");
        let unknown = Client::Curve(servers.curve_keys.public, Keys::generate());
        clients.push(connect(ctx, &servers.curve, &unknown, &name));
    }
    for (server, expected) in [
        (&servers.plain, expected_plain),
        (&servers.curve, expected_curve),
    ] {
        let (admitted, refused) = count_handshakes(server, quarter, quarter);
        assert_eq!((admitted, refused), (quarter, quarter), "round {round}");
        let mut received = HashSet::new();
        for _ in 0..quarter {
            let message = server.socket.recv_string(0).unwrap().unwrap();
            assert!(received.insert(message), "a duplicate message");
        }
        assert_eq!(
            received, expected,
            "round {round}: the valid clients, exactly"
        );
    }
}

fn connect(ctx: &zmq::Context, server: &Listening, client: &Client, name: &str) -> zmq::Socket {
    let socket = client_socket(ctx, client);
    socket.connect(&server.endpoint).unwrap();
    send_after_connect(&socket, name);
    socket
}

/// Waits for `admitted` successes and `refused` 400s; anything else fails the test.
fn count_handshakes(server: &Listening, admitted: usize, refused: usize) -> (usize, usize) {
    let (mut ok, mut no) = (0, 0);
    while ok < admitted || no < refused {
        match server.monitor.next_handshake() {
            (e, _) if e == zmq::SocketEvent::HANDSHAKE_SUCCEEDED as u16 => ok += 1,
            (e, 400) if e == zmq::SocketEvent::HANDSHAKE_FAILED_AUTH as u16 => no += 1,
            other => panic!("unexpected handshake event {other:x?}"),
        }
    }
    (ok, no)
}

fn trusted_directory(dir: &Path, count: usize) -> Vec<Keys> {
    (0..count)
        .map(|i| {
            let keys = Keys::generate();
            let cert = Certificate {
                public_key: keys.public,
                secret_key: None,
                metadata: vec![],
            };
            cert.save_public(dir.join(format!("client{i}.key")), Flavour::Pyzmq)
                .unwrap();
            keys
        })
        .collect()
}

fn run(rounds: usize, report: impl Fn(usize)) {
    init_logging();
    let ctx = zmq::Context::new();
    let auth = ThreadAuthenticator::start(&ctx).unwrap();
    auth.configure_plain("load", [("user", "right")]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let trusted = trusted_directory(dir.path(), CLIENTS_PER_ROUND / 4);
    assert_eq!(
        auth.configure_curve("load", dir.path()).unwrap().keys,
        trusted.len()
    );

    let curve_keys = Keys::generate();
    let bound = |server: &Server| {
        let socket = server_socket(&ctx, server, Some("load"));
        socket.set_backlog(1024).unwrap();
        Listening::from_socket(&ctx, socket)
    };
    let servers = Servers {
        plain: bound(&Server::Plain),
        curve: bound(&Server::Curve(curve_keys.clone())),
        curve_keys,
    };
    for round in 0..rounds {
        run_round(&ctx, &servers, &trusted, round);
        report(round);
    }
    drop(servers);
    auth.stop();
}

#[test]
fn five_thousand_mixed_handshakes_from_200_concurrent_clients() {
    run(5_000 / CLIENTS_PER_ROUND, |_| {});
}

#[test]
#[ignore = "soak: 50,000 handshakes; run with --release -- --ignored"]
fn soak_fifty_thousand_handshakes() {
    child::isolated("load::soak_fifty_thousand_handshakes", &[], soak);
}

fn soak() {
    let before = open_descriptors();
    let started = std::time::Instant::now();
    run(50_000 / CLIENTS_PER_ROUND, |round| {
        if (round + 1) % 25 == 0 {
            println!(
                "{:>6} handshakes  {:>6.1} s  resident {:>6} kB  descriptors {}",
                (round + 1) * CLIENTS_PER_ROUND,
                started.elapsed().as_secs_f64(),
                resident_kb(),
                open_descriptors()
            );
        }
    });
    println!("descriptors before {before}, after {}", open_descriptors());
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn resident_kb() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
