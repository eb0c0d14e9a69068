//! The handshake-rate harness, shared by `benches/handshake_rate.rs` (the tool) and
//! `benches/handshakes.rs` (criterion): end-to-end handshakes over tcp on 127.0.0.1 with this
//! authenticator and with the references it is judged against.
//!
//! Method: `clients` handshakes are kept pending at all times. Client PUSH sockets live on a
//! context of their own (their own I/O thread); the PULL server, its monitor and the ZAP
//! handler share the server's context. A handshake counts when the server's monitor (read with
//! blocking receives on a dedicated thread) reports `HANDSHAKE_SUCCEEDED` or
//! `HANDSHAKE_FAILED_AUTH`; each resolution starts a new client. Finished clients are closed
//! oldest first once more than `2 x clients` are open (a refused client is dead anyway, an
//! admitted one idles). Every run builds fresh contexts, server socket (BACKLOG 1024, LINGER
//! 0) and handler; only the handshakes are timed.
#![allow(dead_code)]

#[path = "xorshift.rs"]
mod xorshift;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix_zap::certs::{CertStore, Certificate};
use actix_zap::keys::{CurvePublicKey, CurveSecretKey};
use actix_zap::monitor;
use actix_zap::provider::{CurveVerdict, Provider};
use actix_zap::{ThreadAuthenticator, CURVE_ALLOW_ANY};

const ZAP_ENDPOINT: &str = "inproc://zeromq.zap.01";
const DOMAIN: &str = "global";
/// Give up when no handshake resolves for this long.
const STALL: Duration = Duration::from_secs(30);
/// Client key pairs, used round-robin (generating one per handshake would time the keygen).
const CLIENT_KEYS: usize = 16;
/// Keys in the certificate set besides the clients' (so the set is not trivially small).
const FILLER_KEYS: usize = 1000;
/// Client sockets kept open at most (libzmq allows 1023 sockets per context).
const MAX_OPEN: usize = 700;
/// The most concurrent clients `--clients` accepts.
pub const MAX_CLIENTS: usize = 400;

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    NullDomain,
    Plain,
    CurveCerts,
    CurveAny,
    PlainRefused,
    CurveRefused,
    CurveSlowProvider,
}

impl Scenario {
    pub const ALL: [Scenario; 7] = [
        Scenario::NullDomain,
        Scenario::Plain,
        Scenario::CurveCerts,
        Scenario::CurveAny,
        Scenario::PlainRefused,
        Scenario::CurveRefused,
        Scenario::CurveSlowProvider,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::NullDomain => "null-domain",
            Scenario::Plain => "plain",
            Scenario::CurveCerts => "curve-certs",
            Scenario::CurveAny => "curve-any",
            Scenario::PlainRefused => "plain-refused",
            Scenario::CurveRefused => "curve-refused",
            Scenario::CurveSlowProvider => "curve-slow-provider",
        }
    }

    pub fn parse(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    pub fn mechanism(self) -> &'static str {
        match self {
            Scenario::NullDomain => "NULL",
            Scenario::Plain | Scenario::PlainRefused => "PLAIN",
            _ => "CURVE",
        }
    }

    pub fn refused(self) -> bool {
        matches!(self, Scenario::PlainRefused | Scenario::CurveRefused)
    }

    /// Whether libzmq completes these handshakes with nothing bound to the ZAP endpoint.
    pub fn works_without_handler(self) -> bool {
        matches!(
            self,
            Scenario::NullDomain | Scenario::CurveCerts | Scenario::CurveAny
        )
    }

    /// The handlers measured for this scenario; the first is ours, the second the reference.
    pub fn handlers(self) -> Vec<Handler> {
        if self == Scenario::CurveSlowProvider {
            return vec![Handler::Authenticator, Handler::AuthenticatorInstant];
        }
        let mut handlers = vec![Handler::Authenticator, Handler::Minimal];
        if self.works_without_handler() {
            handlers.push(Handler::Unbound);
        }
        handlers
    }
}

/// Who answers the ZAP requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// This crate's authenticator, configured for the scenario.
    Authenticator,
    /// Only for `curve-slow-provider`: the same, with a provider that answers at once.
    AuthenticatorInstant,
    /// A REP thread that answers everything `200` (`400` when the scenario is refused).
    Minimal,
    /// Nothing bound.
    Unbound,
    /// This crate's authenticator with the failure throttle off and no cap per address
    /// (`benches/guessing.rs` measures the throttle's cost against it).
    Unthrottled,
}

impl Handler {
    pub fn name(self) -> &'static str {
        match self {
            Handler::Authenticator => "authenticator",
            Handler::AuthenticatorInstant => "instant",
            Handler::Minimal => "minimal",
            Handler::Unbound => "no_handler",
            Handler::Unthrottled => "unthrottled",
        }
    }
}

/// CURVE key pairs, made once per process.
pub struct Keys {
    pub server_public: CurvePublicKey,
    pub server_secret: CurveSecretKey,
    pub clients: Vec<(CurvePublicKey, CurveSecretKey)>,
}

fn pair() -> (CurvePublicKey, CurveSecretKey) {
    let cert = Certificate::generate().expect("CURVE key generation (libzmq with CURVE?)");
    (cert.public_key, cert.secret_key.unwrap())
}

impl Keys {
    pub fn generate() -> Keys {
        let (server_public, server_secret) = pair();
        Keys {
            server_public,
            server_secret,
            clients: (0..CLIENT_KEYS).map(|_| pair()).collect(),
        }
    }
}

/// Deterministic filler keys (the same every run).
fn filler_keys(n: usize) -> impl Iterator<Item = CurvePublicKey> {
    let mut rng = xorshift::XorShift::new(0x9E37_79B9_7F4A_7C15);
    (0..n).map(move |_| CurvePublicKey::from_bytes(rng.key()))
}

/// The minimal responder: answers every request with a fixed status, nothing else.
struct Minimal {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Minimal {
    fn start(context: &zmq::Context, status: &'static str) -> Minimal {
        let socket = context.socket(zmq::REP).unwrap();
        socket.set_linger(0).unwrap();
        socket.set_rcvtimeo(50).unwrap();
        socket.bind(ZAP_ENDPOINT).expect("bind the ZAP endpoint");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let (user_id, text): (&[u8], &[u8]) = if status == "200" {
            (b"anonymous", b"OK")
        } else {
            (b"", b"Denied")
        };
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match socket.recv_multipart(0) {
                    Ok(request) if request.len() >= 2 => {
                        let reply: [&[u8]; 6] =
                            [b"1.0", &request[1], status.as_bytes(), text, user_id, b""];
                        socket.send_multipart(reply, 0).unwrap();
                    }
                    Ok(_) => {}
                    Err(zmq::Error::EAGAIN) => {}
                    Err(e) => panic!("minimal responder: {e}"),
                }
            }
            let _ = socket.unbind(ZAP_ENDPOINT);
        });
        Minimal {
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

enum Running {
    Authenticator(ThreadAuthenticator),
    Minimal(Minimal),
    Nothing,
}

impl Running {
    fn stop(self) {
        match self {
            Running::Authenticator(auth) => auth.stop(),
            Running::Minimal(minimal) => minimal.stop(),
            Running::Nothing => {}
        }
    }
}

fn start_handler(
    context: &zmq::Context,
    scenario: Scenario,
    handler: Handler,
    keys: &Keys,
) -> Running {
    let status = if scenario.refused() { "400" } else { "200" };
    let auth = match handler {
        Handler::Unbound => return Running::Nothing,
        Handler::Minimal => return Running::Minimal(Minimal::start(context, status)),
        Handler::Authenticator | Handler::AuthenticatorInstant => {
            ThreadAuthenticator::start(context).expect("authenticator")
        }
        Handler::Unthrottled => {
            let settings = actix_zap::Settings::default()
                .with_throttle_capacity(0)
                .with_verifications_per_address(usize::MAX)
                .with_lookups_per_address(usize::MAX);
            ThreadAuthenticator::builder()
                .settings(settings)
                .start(context)
                .expect("authenticator")
        }
    };
    let certs = |with_clients: bool| -> CertStore {
        let clients = keys.clients.iter().map(|(public, _)| *public);
        filler_keys(FILLER_KEYS)
            .chain(clients.filter(|_| with_clients))
            .collect()
    };
    let block_on = futures::executor::block_on;
    match scenario {
        Scenario::NullDomain => auth.allow(["127.0.0.1"]).unwrap(),
        Scenario::Plain | Scenario::PlainRefused => {
            auth.configure_plain("*", [("admin", "secret")]).unwrap()
        }
        Scenario::CurveCerts | Scenario::CurveRefused => {
            let store = certs(scenario == Scenario::CurveCerts);
            block_on(auth.handle().configure_curve_keys("*", store)).unwrap();
        }
        Scenario::CurveAny => {
            auth.configure_curve("*", CURVE_ALLOW_ANY).unwrap();
        }
        Scenario::CurveSlowProvider => {
            let provider = if handler == Handler::AuthenticatorInstant {
                Provider::from_async_fn(
                    |_domain: String, _key| async move { Ok(CurveVerdict::admit()) },
                )
            } else {
                Provider::from_async_fn(|_domain: String, _key| async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok(CurveVerdict::admit())
                })
            };
            auth.configure_curve_callback("*", provider).unwrap();
        }
    }
    Running::Authenticator(auth)
}

/// Server handshake events, read with blocking receives on a thread of their own.
struct Monitor {
    events: monitor::Events,
    thread: Option<JoinHandle<()>>,
}

impl Monitor {
    fn attach(context: &zmq::Context, socket: &zmq::Socket) -> Monitor {
        let mask = zmq::SocketEvent::HANDSHAKE_SUCCEEDED as i32
            | zmq::SocketEvent::HANDSHAKE_FAILED_AUTH as i32
            | zmq::SocketEvent::HANDSHAKE_FAILED_NO_DETAIL as i32
            | zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL as i32;
        let (events, thread) = monitor::spawn_queued(
            context,
            socket,
            "inproc://handshake-rate-monitor",
            mask,
            1 << 20,
        )
        .unwrap();
        Monitor {
            events,
            thread: Some(thread),
        }
    }

    /// Call after the monitored socket was closed (it then sends MONITOR_STOPPED).
    fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

fn server_socket(context: &zmq::Context, scenario: Scenario, keys: &Keys) -> zmq::Socket {
    let socket = context.socket(zmq::PULL).unwrap();
    socket.set_linger(0).unwrap();
    socket.set_backlog(1024).unwrap();
    socket.set_zap_domain(DOMAIN).unwrap();
    match scenario.mechanism() {
        "NULL" => {}
        "PLAIN" => socket.set_plain_server(true).unwrap(),
        _ => {
            socket.set_curve_server(true).unwrap();
            socket
                .set_curve_secretkey(keys.server_secret.as_bytes())
                .unwrap();
        }
    }
    socket
}

fn client_socket(
    context: &zmq::Context,
    scenario: Scenario,
    keys: &Keys,
    n: usize,
    endpoint: &str,
) -> zmq::Result<zmq::Socket> {
    // EMFILE here means the context's 1023 sockets are in use (closed ones free their slot
    // a little later); the caller then closes one and retries.
    let socket = context.socket(zmq::PUSH)?;
    socket.set_linger(0).unwrap();
    match scenario {
        Scenario::NullDomain => {}
        Scenario::Plain | Scenario::PlainRefused => {
            let password = if scenario.refused() {
                "wrong"
            } else {
                "secret"
            };
            socket.set_plain_username(Some("admin")).unwrap();
            socket.set_plain_password(Some(password)).unwrap();
        }
        _ => {
            let (public, secret) = &keys.clients[n % keys.clients.len()];
            socket
                .set_curve_serverkey(keys.server_public.as_bytes())
                .unwrap();
            socket.set_curve_publickey(public.as_bytes()).unwrap();
            socket.set_curve_secretkey(secret.as_bytes()).unwrap();
        }
    }
    socket.connect(endpoint).unwrap();
    Ok(socket)
}

/// One timed run.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    /// From the first client created to the last handshake resolved.
    pub elapsed: Duration,
    /// Handshakes that ended as the scenario expects (admitted, or refused with 400).
    pub expected: usize,
    /// Handshakes that ended otherwise.
    pub unexpected: usize,
}

impl Run {
    pub fn per_s(&self) -> f64 {
        (self.expected + self.unexpected) as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs `handshakes` handshakes with `clients` pending at a time, on fresh contexts.
pub fn run(
    scenario: Scenario,
    handler: Handler,
    keys: &Keys,
    clients: usize,
    handshakes: usize,
) -> Result<Run, String> {
    let server_context = zmq::Context::new();
    let client_context = zmq::Context::new();
    let running = start_handler(&server_context, scenario, handler, keys);
    let server = server_socket(&server_context, scenario, keys);
    let monitor = Monitor::attach(&server_context, &server);
    server.bind("tcp://127.0.0.1:0").unwrap();
    let endpoint = server.get_last_endpoint().unwrap().unwrap();

    let succeeded = zmq::SocketEvent::HANDSHAKE_SUCCEEDED as u16;
    let failed_auth = zmq::SocketEvent::HANDSHAKE_FAILED_AUTH as u16;
    // Finished clients stay open for a while (closing a client whose handshake is still
    // pending would lose its event); at most ~700 in all: the context's limit is 1023 and
    // closed sockets free their slot a little later.
    let max_open = (2 * clients).min(MAX_OPEN.max(clients + 16));
    let mut open: VecDeque<zmq::Socket> = VecDeque::with_capacity(max_open + 1);
    let (mut created, mut resolved, mut expected) = (0usize, 0usize, 0usize);
    let mut outcome: Result<(), String> = Ok(());

    let start = Instant::now();
    while resolved < handshakes {
        while created < handshakes && created - resolved < clients {
            match client_socket(&client_context, scenario, keys, created, &endpoint) {
                Ok(socket) => open.push_back(socket),
                Err(zmq::Error::EMFILE) if open.len() > clients => {
                    open.pop_front();
                    continue;
                }
                Err(zmq::Error::EMFILE) => {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                Err(e) => panic!("client socket: {e}"),
            }
            created += 1;
            while open.len() > max_open {
                open.pop_front();
            }
        }
        match monitor.events.recv_timeout(STALL) {
            Ok((event, value)) => {
                resolved += 1;
                let as_expected = if scenario.refused() {
                    event == failed_auth && value == 400
                } else {
                    event == succeeded
                };
                expected += usize::from(as_expected);
            }
            Err(_) => {
                outcome = Err(format!(
                    "{} / {}: stalled after {resolved} of {handshakes} handshakes",
                    scenario.name(),
                    handler.name()
                ));
                break;
            }
        }
    }
    let elapsed = start.elapsed();

    drop(open);
    drop(server);
    monitor.join();
    running.stop();
    drop(client_context);
    drop(server_context);
    outcome.map(|()| Run {
        elapsed,
        expected,
        unexpected: resolved - expected,
    })
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

fn min_max(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

/// Rates of every handler of one scenario over alternating rounds.
pub struct Rounds {
    pub scenario: Scenario,
    pub clients: usize,
    pub handshakes: usize,
    /// Per handler (as in [`Scenario::handlers`]): handshakes per second of each round.
    pub rates: Vec<Vec<f64>>,
    /// Per round: ours / the reference, measured in the same round.
    pub ratios: Vec<f64>,
    pub unexpected: usize,
}

/// One untimed warm-up run per handler (lazy initialisation, page faults, CPU frequency),
/// then `rounds` rounds of every handler, in an order that rotates so that no handler always
/// runs first.
pub fn rounds(
    scenario: Scenario,
    keys: &Keys,
    clients: usize,
    handshakes: usize,
    rounds: usize,
    verbose: bool,
) -> Result<Rounds, String> {
    let handlers = scenario.handlers();
    for &handler in &handlers {
        run(
            scenario,
            handler,
            keys,
            clients,
            (handshakes / 5).max(clients),
        )
        .map_err(|e| format!("warm-up: {e}"))?;
    }
    let mut result = Rounds {
        scenario,
        clients,
        handshakes,
        rates: vec![Vec::new(); handlers.len()],
        ratios: Vec::new(),
        unexpected: 0,
    };
    for round in 0..rounds {
        let mut this_round = vec![0.0; handlers.len()];
        for i in 0..handlers.len() {
            let h = (i + round) % handlers.len();
            let run = run(scenario, handlers[h], keys, clients, handshakes)?;
            if verbose {
                eprintln!(
                    "round {round} {:<13} {:>9.1}/s  ({} as expected, {} not, {:.2?})",
                    handlers[h].name(),
                    run.per_s(),
                    run.expected,
                    run.unexpected,
                    run.elapsed
                );
            }
            result.unexpected += run.unexpected;
            this_round[h] = run.per_s();
            result.rates[h].push(run.per_s());
        }
        result.ratios.push(this_round[0] / this_round[1]);
    }
    Ok(result)
}

impl Rounds {
    /// The median and range of handler `h`, or `n/a`.
    fn show(&self, h: usize) -> (String, String) {
        match self.rates.get(h) {
            Some(values) => {
                let (lo, hi) = min_max(values);
                (
                    format!("{:.0}", median(values)),
                    format!("{lo:.0}..{hi:.0}"),
                )
            }
            None => ("n/a".into(), "n/a".into()),
        }
    }

    /// The tool's one line of `key=value` pairs.
    pub fn line(&self) -> String {
        let scenario = self.scenario;
        let (ours, ours_range) = self.show(0);
        let (reference, reference_range) = self.show(1);
        let (no_handler, no_handler_range) = self.show(2);
        let (ratio_lo, ratio_hi) = min_max(&self.ratios);
        let slow = scenario == Scenario::CurveSlowProvider;
        let reference_key = if slow { "instant" } else { "minimal" };
        let outcome = if scenario.refused() {
            "refused"
        } else {
            "admitted"
        };
        let mut line = format!(
            "scenario={} mechanism={} outcome={outcome} clients={} handshakes={} rounds={} \
             handshakes_per_s={ours} {reference_key}_per_s={reference}",
            scenario.name(),
            scenario.mechanism(),
            self.clients,
            self.handshakes,
            self.ratios.len(),
        );
        if slow {
            line += " minimal_per_s=n/a";
        }
        line += &format!(
            " no_handler_per_s={no_handler} ratio={:.3} ratio_range={ratio_lo:.3}..{ratio_hi:.3} \
             handshakes_range={ours_range} {reference_key}_range={reference_range} \
             no_handler_range={no_handler_range} unexpected={}",
            median(&self.ratios),
            self.unexpected
        );
        line
    }
}
