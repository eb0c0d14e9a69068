//! How long a revocation takes to decide the next handshake, and whether any handshake was
//! admitted after it.
//!
//! ```text
//! cargo bench --bench revocation_latency -- [--trials 200] [--files 1000] [--case all]
//! ```
//!
//! Cases (each trial first proves the client is admitted, then narrows, then starts the clock
//! and connects fresh clients one after another until the first is refused):
//! - `message`: `configure_curve_keys` to a key set without the client's key; the clock
//!   starts when the call returns. Every handshake after it must be refused (goal: 0 admitted).
//! - `unlink`: the client's key file is unlinked from a watched directory of `--files` files
//!   (inotify); the clock starts at the unlink.
//! - `unlink-polling`: the same through the polling fallback (`Watch::polling_only`).
//! - `rewrite`: a watched password file is rewritten in place (same size) with a new
//!   password; clients keep using the old one.
//!
//! Prints one line per case: `case=... trials=... files=... p50_ms=... p99_ms=... max_ms=...
//! admitted_after=...` (`admitted_after` counts handshakes admitted after the narrowing).

#[path = "support/mod.rs"]
mod support;
#[path = "support/xorshift.rs"]
mod xorshift;

use std::path::Path;
use std::time::{Duration, Instant};

use actix_zap::certs::{CertStore, Certificate, Flavour};
use actix_zap::keys::CurvePublicKey;
use actix_zap::messages::Watch;
use actix_zap::zap::Metadata;
use actix_zap::ThreadAuthenticator;
use support::{curve_client, fail, plain_client, Outcome, Result, Server, PATIENCE};
use xorshift::XorShift;

struct Options {
    trials: usize,
    files: usize,
    case: String,
}

fn options() -> Options {
    let mut options = Options {
        trials: 200,
        files: 1000,
        case: "all".into(),
    };
    // `cargo bench --bench revocation_latency -- FLAGS` passes `--bench` too.
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| fail(format!("{flag} needs a value")));
        match flag.as_str() {
            "--trials" => options.trials = value.parse().unwrap_or_else(|e| fail(e)),
            "--files" => options.files = value.parse().unwrap_or_else(|e| fail(e)),
            "--case" => options.case = value,
            other => fail(format!("unknown option {other}")),
        }
    }
    options
}

/// Latencies of one case, and handshakes admitted after the narrowing.
#[derive(Default)]
struct Samples {
    latencies: Vec<Duration>,
    admitted_after: usize,
}

impl Samples {
    fn report(mut self, case: &str, files: usize) {
        self.latencies.sort();
        let n = self.latencies.len();
        let at = |q: f64| self.latencies[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "case={case} trials={n} files={files} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} admitted_after={}",
            ms(at(0.50)),
            ms(at(0.99)),
            ms(self.latencies[n - 1]),
            self.admitted_after
        );
    }
}

/// Connects fresh clients until one is admitted (the trial's starting point).
fn until_admitted(server: &Server, client: &dyn Fn() -> Result<zmq::Socket>) {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if let Outcome::Admitted { .. } = server.attempt(client().unwrap_or_else(|e| fail(e))) {
            return;
        }
    }
    fail("the client was never admitted")
}

/// From `start`, connects fresh clients until one is refused; counts those admitted.
fn until_refused(
    server: &Server,
    client: &dyn Fn() -> Result<zmq::Socket>,
    start: Instant,
    samples: &mut Samples,
) {
    while start.elapsed() < PATIENCE {
        match server.attempt(client().unwrap_or_else(|e| fail(e))) {
            Outcome::Refused(_) => return samples.latencies.push(start.elapsed()),
            Outcome::Admitted { .. } => samples.admitted_after += 1,
            other => fail(format!("unexpected outcome {other:?}")),
        }
    }
    fail("the revocation never took effect")
}

fn keys(certs: &[&Certificate]) -> CertStore {
    let mut store = CertStore::new();
    for cert in certs {
        store.insert(cert.public_key, Metadata::empty());
    }
    store
}

fn curve_server(context: &zmq::Context, server: &Certificate) -> Result<Server> {
    let socket = context.socket(zmq::REP)?;
    socket.set_curve_server(true)?;
    socket.set_curve_secretkey(server.secret_key.as_ref().ok_or("no secret")?.as_bytes())?;
    socket.set_zap_domain("global")?;
    Server::start(context, socket, |_| "ok".into())
}

fn message_case(context: &zmq::Context, auth: &ThreadAuthenticator, trials: usize) -> Result<()> {
    let (server_cert, client_cert) = (Certificate::generate()?, Certificate::generate()?);
    let server = curve_server(context, &server_cert)?;
    let client = || curve_client(context, &server_cert.public_key, &client_cert);
    let mut samples = Samples::default();
    for _ in 0..trials {
        auth.configure_curve_keys("*", keys(&[&client_cert]))?;
        until_admitted(&server, &client);
        auth.configure_curve_keys("*", keys(&[&server_cert]))?;
        until_refused(&server, &client, Instant::now(), &mut samples);
    }
    samples.report("message", 0);
    Ok(())
}

/// Fills `dir` with `count` public certificates of random keys.
fn fill(dir: &Path, count: usize) -> Result<()> {
    let mut rng = XorShift::new(0x5EED);
    for i in 0..count {
        let cert = Certificate {
            public_key: CurvePublicKey::from_bytes(rng.key()),
            secret_key: None,
            metadata: vec![],
        };
        cert.save_public(dir.join(format!("filler{i:05}.key")), Flavour::Pyzmq)?;
    }
    Ok(())
}

fn unlink_case(
    context: &zmq::Context,
    auth: &ThreadAuthenticator,
    options: &Options,
    polling: bool,
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    fill(dir.path(), options.files.saturating_sub(1))?;
    let (server_cert, client_cert) = (Certificate::generate()?, Certificate::generate()?);
    let watch = Watch::curve("*", dir.path());
    auth.watch(if polling { watch.polling_only() } else { watch })?;
    let server = curve_server(context, &server_cert)?;
    let client = || curve_client(context, &server_cert.public_key, &client_cert);
    let trusted = dir.path().join("client.key");
    let mut samples = Samples::default();
    for _ in 0..options.trials {
        client_cert.save_public(&trusted, Flavour::Pyzmq)?;
        until_admitted(&server, &client);
        std::fs::remove_file(&trusted)?;
        until_refused(&server, &client, Instant::now(), &mut samples);
    }
    let case = if polling { "unlink-polling" } else { "unlink" };
    samples.report(case, options.files);
    Ok(())
}

fn rewrite_case(context: &zmq::Context, auth: &ThreadAuthenticator, trials: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("passwords");
    let passwords = ["AAAAAAAAAAAA", "BBBBBBBBBBBB"];
    std::fs::write(&file, format!("admin={}\n", passwords[0]))?;
    auth.watch(Watch::plain("global", &file))?;
    let socket = context.socket(zmq::REP)?;
    socket.set_plain_server(true)?;
    socket.set_zap_domain("global")?;
    let server = Server::start(context, socket, |_| "ok".into())?;
    let mut samples = Samples::default();
    for trial in 0..trials {
        let old = passwords[trial % 2];
        let client = || plain_client(context, "admin", old);
        until_admitted(&server, &client);
        // In place, same size: the file's inode stays, only its content changes.
        std::fs::write(&file, format!("admin={}\n", passwords[(trial + 1) % 2]))?;
        until_refused(&server, &client, Instant::now(), &mut samples);
    }
    samples.report("rewrite", 1);
    Ok(())
}

fn main() -> Result<()> {
    let options = options();
    let context = zmq::Context::new();
    let run = |case: &str| options.case == "all" || options.case == case;
    if run("message") {
        let auth = ThreadAuthenticator::start(&context)?;
        message_case(&context, &auth, options.trials)?;
        auth.stop();
    }
    for (case, polling) in [("unlink", false), ("unlink-polling", true)] {
        if run(case) {
            let auth = ThreadAuthenticator::start(&context)?;
            unlink_case(&context, &auth, &options, polling)?;
            auth.stop();
        }
    }
    if run("rewrite") {
        let auth = ThreadAuthenticator::start(&context)?;
        rewrite_case(&context, &auth, options.trials)?;
        auth.stop();
    }
    Ok(())
}
