//! Test support: real libzmq handshakes over tcp on 127.0.0.1, judged by what happened
//! (a message received with its properties, or the server's handshake-failure event with
//! its status) — never by sleeping.
#![allow(dead_code)]

pub mod child;
pub mod kerberos;
#[cfg(feature = "metrics")]
pub mod recorder;
#[path = "../../../benches/support/zmtp.rs"]
pub mod zmtp;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use actix_zap::certs::Certificate;
use actix_zap::keys::{CurvePublicKey, CurveSecretKey};
use actix_zap::monitor;

/// How long any single observation may take before the test fails (not a sleep: the wait
/// ends as soon as the event arrives).
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A CURVE key pair for tests.
#[derive(Clone)]
pub struct Keys {
    pub public: CurvePublicKey,
    pub secret: CurveSecretKey,
}

impl Keys {
    pub fn generate() -> Keys {
        let cert = Certificate::generate().expect("CURVE key generation");
        Keys {
            public: cert.public_key,
            secret: cert
                .secret_key
                .expect("generated certificates have a secret key"),
        }
    }
}

/// The server side's security.
#[derive(Clone)]
pub enum Server {
    Null,
    Plain,
    Curve(Keys),
}

/// The client side's security.
#[derive(Clone)]
pub enum Client {
    Null,
    Plain(&'static str, &'static str),
    /// Server public key, client keys.
    Curve(CurvePublicKey, Keys),
}

/// What happened to one connection attempt.
#[derive(Debug)]
pub enum Outcome {
    /// The server received the client's message; its `User-Id` and other properties.
    Admitted(zmq::Message),
    /// `HANDSHAKE_FAILED_AUTH` on the server, with the ZAP status code.
    Refused(u32),
    /// Another handshake failure event (event id, value).
    Failed(u16, u32),
}

impl Outcome {
    pub fn user_id(&mut self) -> String {
        match self {
            Outcome::Admitted(msg) => msg.gets("User-Id").expect("User-Id").to_string(),
            other => panic!("expected admission, got {other:?}"),
        }
    }

    pub fn property(&mut self, name: &str) -> Option<String> {
        match self {
            Outcome::Admitted(msg) => msg.gets(name).map(str::to_string),
            other => panic!("expected admission, got {other:?}"),
        }
    }

    pub fn is_admitted(&self) -> bool {
        matches!(self, Outcome::Admitted(_))
    }

    pub fn assert_admitted(mut self, user_id: &str) -> Outcome {
        assert_eq!(self.user_id(), user_id);
        self
    }

    pub fn assert_refused(&self, status: u32) {
        match self {
            Outcome::Refused(s) => assert_eq!(*s, status, "refused with another status"),
            other => panic!("expected refusal {status}, got {other:?}"),
        }
    }
}

static MONITORS: AtomicUsize = AtomicUsize::new(0);

/// A socket monitor drained on its own thread, connected before anything connects.
pub struct Monitor {
    pub events: monitor::Events,
    thread: Option<JoinHandle<()>>,
}

impl Monitor {
    pub fn attach(context: &zmq::Context, socket: &zmq::Socket) -> Monitor {
        let endpoint = format!(
            "inproc://test-monitor-{}-{}",
            std::process::id(),
            MONITORS.fetch_add(1, Ordering::Relaxed)
        );
        let all = zmq::SocketEvent::ALL as i32;
        let (events, thread) = monitor::spawn(context, socket, &endpoint, all).unwrap();
        Monitor {
            events,
            thread: Some(thread),
        }
    }

    /// The first handshake event (success or failure).
    pub fn next_handshake(&self) -> (u16, u32) {
        let handshake_events = [
            zmq::SocketEvent::HANDSHAKE_SUCCEEDED as u16,
            zmq::SocketEvent::HANDSHAKE_FAILED_AUTH as u16,
            zmq::SocketEvent::HANDSHAKE_FAILED_NO_DETAIL as u16,
            zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL as u16,
        ];
        let mut seen = Vec::new();
        loop {
            let Ok((event, value)) = self.events.recv_timeout(PATIENCE) else {
                panic!("no handshake event in time; events seen: {seen:x?}");
            };
            if handshake_events.contains(&event) {
                return (event, value);
            }
            seen.push((event, value));
        }
    }
}

impl Drop for Monitor {
    /// Runs after the monitored socket was dropped (see field order in `Listening`).
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Builds a PULL server socket for `server`, with `domain` as its ZAP domain.
pub fn server_socket(context: &zmq::Context, server: &Server, domain: Option<&str>) -> zmq::Socket {
    let socket = context.socket(zmq::PULL).unwrap();
    socket.set_linger(0).unwrap();
    socket.set_rcvtimeo(PATIENCE.as_millis() as i32).unwrap();
    if let Some(domain) = domain {
        socket.set_zap_domain(domain).unwrap();
    }
    match server {
        Server::Null => {}
        Server::Plain => socket.set_plain_server(true).unwrap(),
        Server::Curve(keys) => {
            socket.set_curve_server(true).unwrap();
            socket.set_curve_secretkey(keys.secret.as_bytes()).unwrap();
        }
    }
    socket
}

/// Builds a PUSH client socket for `client`.
pub fn client_socket(context: &zmq::Context, client: &Client) -> zmq::Socket {
    let socket = context.socket(zmq::PUSH).unwrap();
    socket.set_linger(0).unwrap();
    match client {
        Client::Null => {}
        Client::Plain(user, password) => {
            socket.set_plain_username(Some(user)).unwrap();
            socket.set_plain_password(Some(password)).unwrap();
        }
        Client::Curve(server_public, keys) => {
            socket
                .set_curve_serverkey(server_public.as_bytes())
                .unwrap();
            socket.set_curve_publickey(keys.public.as_bytes()).unwrap();
            socket.set_curve_secretkey(keys.secret.as_bytes()).unwrap();
        }
    }
    socket
}

/// A bound server with its monitor; clients connect to `endpoint`.
pub struct Listening {
    pub socket: zmq::Socket,
    pub monitor: Monitor,
    pub endpoint: String,
}

impl Listening {
    pub fn new(context: &zmq::Context, server: &Server, domain: Option<&str>) -> Listening {
        Listening::from_socket(context, server_socket(context, server, domain))
    }

    /// Monitors and binds a configured server socket.
    pub fn from_socket(context: &zmq::Context, socket: zmq::Socket) -> Listening {
        socket.set_linger(0).unwrap();
        socket.set_rcvtimeo(PATIENCE.as_millis() as i32).unwrap();
        let monitor = Monitor::attach(context, &socket);
        socket.bind("tcp://127.0.0.1:0").unwrap();
        let endpoint = socket.get_last_endpoint().unwrap().unwrap();
        Listening {
            socket,
            monitor,
            endpoint,
        }
    }

    /// Waits for the next handshake on this server; on success, receives one message.
    pub fn outcome(&self) -> Outcome {
        let (event, value) = self.monitor.next_handshake();
        if event == zmq::SocketEvent::HANDSHAKE_SUCCEEDED as u16 {
            let mut message = zmq::Message::new();
            self.socket
                .recv(&mut message, 0)
                .expect("message after handshake");
            Outcome::Admitted(message)
        } else if event == zmq::SocketEvent::HANDSHAKE_FAILED_AUTH as u16 {
            Outcome::Refused(value)
        } else {
            Outcome::Failed(event, value)
        }
    }

    /// Connects a client that sends one message, and reports what happened to it.
    pub fn attempt(&self, context: &zmq::Context, client: &Client) -> Outcome {
        let socket = self.connect(context, client);
        let outcome = self.outcome();
        drop(socket);
        outcome
    }

    /// Connects a client that sends one message once connected; keep it to keep it up.
    pub fn connect(&self, context: &zmq::Context, client: &Client) -> zmq::Socket {
        let socket = client_socket(context, client);
        socket.connect(&self.endpoint).unwrap();
        send_after_connect(&socket, "hello");
        socket
    }
}

/// Queues `text` on a client that has just connected, without waiting for room. A refused
/// client may have lost its only pipe already (libzmq ends the session on the server's ERROR,
/// and on a loaded machine the handshake can end before this call): a blocking send would
/// then wait forever, so `EAGAIN` is not an error here. An admitted client's pipe exists from
/// `connect` on (`ZMQ_IMMEDIATE` is off), so its message is queued, and the tests check that
/// it arrives.
pub fn send_after_connect(socket: &zmq::Socket, text: &str) {
    match socket.send(text, zmq::DONTWAIT) {
        Ok(()) | Err(zmq::Error::EAGAIN) => {}
        Err(error) => panic!("cannot queue {text:?}: {error}"),
    }
}

/// One server, one client, one outcome.
pub fn handshake(
    context: &zmq::Context,
    server: &Server,
    domain: Option<&str>,
    client: &Client,
) -> Outcome {
    Listening::new(context, server, domain).attempt(context, client)
}

/// A fresh context with a `ThreadAuthenticator` on it.
pub fn started() -> (zmq::Context, actix_zap::ThreadAuthenticator) {
    init_logging();
    let context = zmq::Context::new();
    let auth = actix_zap::ThreadAuthenticator::start(&context).expect("authenticator starts");
    (context, auth)
}

/// An argon2id PHC string of `password` at this cost (KiB, passes).
pub fn phc_with(password: &str, memory_kib: u32, passes: u32) -> String {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let params = argon2::Params::new(memory_kib, passes, 1, None).unwrap();
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    argon
        .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string()
}

/// [`phc_with`] as a [`HashedPassword`](actix_zap::policy::HashedPassword).
pub fn hash_with(
    password: &str,
    memory_kib: u32,
    passes: u32,
) -> actix_zap::policy::HashedPassword {
    let phc = phc_with(password, memory_kib, passes);
    actix_zap::policy::HashedPassword::parse(&phc, &Default::default()).unwrap()
}

/// A PHC string of the least cost the policy takes (64 KiB, one pass), so that debug builds
/// verify it quickly: most tests judge who is admitted, not the cost.
pub fn cheap_phc(password: &str) -> String {
    phc_with(password, 64, 1)
}

/// [`cheap_phc`] as a [`HashedPassword`](actix_zap::policy::HashedPassword).
pub fn cheap_hash(password: &str) -> actix_zap::policy::HashedPassword {
    hash_with(password, 64, 1)
}

/// [`started`] with `settings`.
pub fn started_with(
    settings: actix_zap::Settings,
) -> (zmq::Context, actix_zap::ThreadAuthenticator) {
    init_logging();
    let context = zmq::Context::new();
    let auth = actix_zap::ThreadAuthenticator::builder()
        .settings(settings)
        .start(&context)
        .expect("authenticator starts");
    (context, auth)
}

/// Writes `keys`' public certificate (pyzmq layout) as `dir/name`.
pub fn write_public(dir: &std::path::Path, name: &str, keys: &Keys) {
    let cert = Certificate {
        public_key: keys.public,
        secret_key: None,
        metadata: vec![],
    };
    cert.save_public(dir.join(name), actix_zap::certs::Flavour::Pyzmq)
        .unwrap();
}

/// An async provider that admits once `release` is notified; `asked` counts its calls, so a
/// test knows a request is in flight without sleeping.
pub fn held_provider() -> (
    actix_zap::provider::Provider,
    Arc<tokio::sync::Notify>,
    Arc<AtomicUsize>,
) {
    let release = Arc::new(tokio::sync::Notify::new());
    let asked = Arc::new(AtomicUsize::new(0));
    let (gate, counter) = (Arc::clone(&release), Arc::clone(&asked));
    let provider = actix_zap::provider::Provider::from_async_fn(move |_, _| {
        let (gate, counter) = (Arc::clone(&gate), Arc::clone(&counter));
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            gate.notified().await;
            Ok(actix_zap::provider::CurveVerdict::admit())
        }
    });
    (provider, release, asked)
}

/// Waits until `counter` is non-zero (the event it counts happened on another thread).
pub fn wait_for(counter: &AtomicUsize) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while counter.load(Ordering::SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing happened in time"
        );
        std::thread::yield_now();
    }
}

pub fn init_logging() {
    let _ = env_logger::builder().is_test(true).try_init();
}

/// A gate for work the test holds (a provider, an argon2 verification): work that passes it
/// waits there until the test opens it (or, should the test fail first, until `PATIENCE` has
/// passed: nothing hangs). Once open, it stays open.
#[derive(Default)]
pub struct Gate {
    entered: AtomicUsize,
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    pub fn pass(&self) {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let open = self.open.lock().unwrap();
        let _unused = self
            .opened
            .wait_timeout_while(open, PATIENCE, |open| !*open)
            .unwrap();
    }

    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }

    pub fn is_open(&self) -> bool {
        *self.open.lock().unwrap()
    }

    /// Calls that reached the gate so far.
    pub fn entered(&self) -> usize {
        self.entered.load(Ordering::SeqCst)
    }

    /// Waits until `n` calls are held at (or went through) the gate.
    pub fn wait_entered(&self, n: usize) {
        let deadline = std::time::Instant::now() + PATIENCE;
        while self.entered.load(Ordering::SeqCst) < n {
            assert!(
                std::time::Instant::now() < deadline,
                "the work never reached the gate"
            );
            std::thread::yield_now();
        }
    }
}
