//! Client-side handshake diagnostics: connect a client socket and say how its handshake
//! ended, within a deadline, in words that say what to change.
//!
//! A client with the wrong key, the wrong server key, a refused password or no server at all
//! otherwise just sees nothing arrive. libzmq reports some of it through socket monitor
//! events; [`HandshakeCheck`] wires them up, reads them on a thread of its own, and folds them
//! into a [`HandshakeOutcome`]. For `tcp://` endpoints it first reads the server's greeting,
//! which names the server's security mechanism (see below).
//!
//! ```no_run
//! use std::time::Duration;
//! use actix_zap::client::HandshakeCheck;
//!
//! let context = zmq::Context::new();
//! let mut socket = context.socket(zmq::DEALER)?;
//! socket.set_plain_username(Some("admin"))?;
//! socket.set_plain_password(Some("secret"))?;
//! let report = HandshakeCheck::new("tcp://127.0.0.1:5555")
//!     .deadline(Duration::from_secs(5))
//!     .run(&context, &mut socket)?;
//! println!("{}", report.outcome); // e.g. "refused by the server's authenticator (ZAP 400): ..."
//! // `socket` stays connected and usable; no message was read from it.
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What the client can observe (measured on libzmq 4.3.4)
//!
//! Events as the client's monitor reports them (`value` in parentheses); the server had a
//! handshake interval of 1 s where it matters.
//!
//! | outcome | client events | notes |
//! |---|---|---|
//! | [`Admitted`](HandshakeOutcome::Admitted) | `CONNECTED`, `HANDSHAKE_SUCCEEDED` (0) | |
//! | [`Refused`](HandshakeOutcome::Refused) | `CONNECTED`, `HANDSHAKE_FAILED_AUTH` (400), `DISCONNECTED` | wrong password, unknown user, unknown CURVE key and denied address are indistinguishable: the client gets the code, never the text. No reconnect follows. |
//! | [`AuthenticatorError`](HandshakeOutcome::AuthenticatorError) | `CONNECTED`, `HANDSHAKE_FAILED_AUTH` (500), `DISCONNECTED` | a failing or timed-out provider on the server. No reconnect follows. |
//! | [`Stalled`](HandshakeOutcome::Stalled) | `CONNECTED`, then nothing until the server's `ZMQ_HANDSHAKE_IVL`, then `HANDSHAKE_FAILED_NO_DETAIL` (32, `EPIPE`), `DISCONNECTED`, `CONNECT_RETRIED`, and again | a `300` and an authenticator that never answers look exactly alike. A `300` does **not** reach the client as `HANDSHAKE_FAILED_AUTH` (libzmq closes silently, as CurveZMQ says), and about one attempt in three was instead dropped at once, like a wrong server key; so one quick drop alone is not taken as the answer. |
//! | [`Dropped`](HandshakeOutcome::Dropped) | `CONNECTED`, `HANDSHAKE_FAILED_NO_DETAIL` (32) within a few ms, `DISCONNECTED`, `CONNECT_RETRIED`, repeated every ~100-200 ms | a wrong CURVE server key: the server cannot decrypt HELLO and hangs up (the *server* sees `HANDSHAKE_FAILED_PROTOCOL` `ZMTP_CRYPTOGRAPHIC`). Socket types that cannot talk (a DEALER client to a PULL server) look the same, and win over the credentials: such a CURVE client is dropped before its key is even asked about. The client is told nothing more, so this is a heuristic, reported at the deadline: until then libzmq keeps retrying, and any attempt that ends otherwise decides. |
//! | [`MechanismMismatch`](HandshakeOutcome::MechanismMismatch) | `CONNECTED`, then `HANDSHAKE_FAILED_PROTOCOL` (`0x11000002`, `ZMTP_MECHANISM_MISMATCH`) **or** `HANDSHAKE_FAILED_NO_DETAIL` (32), `DISCONNECTED` | PLAIN→CURVE, NULL→PLAIN and every other pair alike. The events cannot be relied on: when the server reads the client's whole greeting at once, it closes before its own greeting is flushed, and the attempt looks like a drop (seen in 20-80% of attempts between two processes; 129 of 180 in one test run with a context per client). The server's greeting, read beforehand, decides: reported when the first attempt ends. |
//! | [`ProtocolError`](HandshakeOutcome::ProtocolError) | `CONNECTED`, `HANDSHAKE_FAILED_PROTOCOL` (a `ZMQ_PROTOCOL_ERROR_*` code), `DISCONNECTED` | e.g. `0x11000001` `ZMTP_CRYPTOGRAPHIC`. A mechanism mismatch is reported this way (`0x11000002`) only when the server's greeting was not read (an `ipc://` endpoint, [`read_greeting(false)`](HandshakeCheck::read_greeting), a server that did not answer it): then libzmq's race above applies, some attempt within a deadline of a second or more usually reports it, and a drop is therefore never concluded before the deadline. |
//! | [`Unreachable`](HandshakeOutcome::Unreachable) | `CONNECT_DELAYED`, `CLOSED`, `CONNECT_RETRIED` (the reconnect interval), repeated | nothing listening; concluded at the first retry. |
//! | [`DeadlinePassed`](HandshakeOutcome::DeadlinePassed) | none of the above | e.g. a TCP connect that neither succeeds nor fails. |
//!
//! A connection that stays up longer than [`STALL_THRESHOLD`] without an outcome counts as
//! stalling. Stalls and drops are only reported at the deadline (a slow authenticator may
//! still answer, a later attempt may still say more); every other outcome as soon as it
//! shows. A deadline of a few seconds (the default is 5 s) gives libzmq's reconnects room.
//!
//! # Why the check reads the server's greeting first
//!
//! Every ZMTP 3 connection opens with a 64-byte greeting from each side, and bytes 12-31 of
//! it name the sender's security mechanism ([`Greeting`]); libzmq fails a handshake whose two
//! greetings name different mechanisms. That is the one failure the client's events do not
//! report reliably (the race in the table above), while the greeting says it for certain. So
//! for a `tcp://` endpoint, before connecting the socket, the check opens a TCP connection of
//! its own to the same host and port ([`read_server_greeting`]), sends the 11 bytes a libzmq
//! server waits for before it sends its whole greeting (signature and major version,
//! [`GREETING_START`]), reads the 64 bytes within [`greeting_timeout`] (default 1 s, at most
//! half the deadline), and closes. No mechanism is chosen on it and no credentials travel;
//! the server's authenticator is never asked. If the greeting names another mechanism than
//! the socket's `ZMQ_MECHANISM`, the first attempt that ends (or the deadline) is a
//! [`MechanismMismatch`](HandshakeOutcome::MechanismMismatch) naming both, whatever libzmq's
//! events show; if they match, the events are classified as they would be without it.
//!
//! A server that does not answer the greeting (not ZMTP, hung, a ZMTP 1.0/2.0 peer, garbage)
//! costs at most the greeting timeout, and the handshake is then judged from its events
//! alone; [`HandshakeReport::server_greeting`] says what was read, or why nothing was
//! ([`GreetingUnread`]). `ipc://` and `inproc://` endpoints are not probed, nor endpoints
//! with a source address (`tcp://source;host:port`). The extra connection shows on the
//! server: its monitor sees a handshake that failed without detail
//! (`HANDSHAKE_FAILED_NO_DETAIL`, `EPIPE`), which
//! [`ServerSocket::watch_handshakes`](crate::ServerSocket::watch_handshakes) reports as
//! [`Dropped`](HandshakeOutcome::Dropped); [`read_greeting(false)`](HandshakeCheck::read_greeting)
//! leaves it out.
//!
//! [`greeting_timeout`]: HandshakeCheck::greeting_timeout
//!
//! # What the check does to the socket
//! - It **owns the socket's monitor** while it runs: a socket has exactly one, so a monitor
//!   the application set is replaced (libzmq stops it; its reader sees `MONITOR_STOPPED`).
//!   Set your own again afterwards if you need it.
//! - It **drains the monitor on a thread of its own**: libzmq sends monitor events blocking,
//!   and an undrained monitor stalls every handshake on the context.
//! - It **removes the monitor** when it returns, and joins that thread.
//! - It reads the socket's `ZMQ_MECHANISM` and `ZMQ_IPV6` options (the greeting is read
//!   from the address libzmq would use: IPv4 unless `ZMQ_IPV6` is set).
//! - It connects the socket to the endpoint and never reads or writes a message: the
//!   application's messages stay where they are, and the connection stays up (a refused or
//!   unreachable socket keeps whatever reconnecting libzmq does).
//! - Use it on a socket that has no other connection yet: events of other connections would
//!   mix in.

mod greeting;
mod monitor_events;
mod outcome;
mod tcp_greeting;

use std::time::{Duration, Instant};

pub use greeting::{Greeting, GreetingError, Mechanism, GREETING_LEN, GREETING_START};
pub(crate) use outcome::conclusive;
pub use outcome::{protocol_error_name, Classifier, HandshakeOutcome, STALL_THRESHOLD};
pub use tcp_greeting::{read_server_greeting, GreetingUnread, ReadEnd};

/// The default deadline of a check.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(5);

/// The default time allowed for reading the server's greeting (never more than half the
/// check's deadline).
pub const DEFAULT_GREETING_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a check could not run (the handshake itself never makes it fail: that is an outcome).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The socket's options could not be read (e.g. the context is terminating).
    #[error("cannot read the socket's options: {0}")]
    Socket(#[source] zmq::Error),
    /// The monitor could not be set up (e.g. the context is terminating).
    #[error("could not monitor the socket: {0}")]
    Monitor(#[source] zmq::Error),
    /// `zmq_connect` refused the endpoint (malformed, unknown transport, unresolvable host).
    #[error("cannot connect to {endpoint:?}: {source}")]
    Connect {
        /// The endpoint as given.
        endpoint: String,
        /// libzmq's error.
        #[source]
        source: zmq::Error,
    },
    /// The thread running an async check ended without an answer.
    #[error("the handshake check thread ended without an answer")]
    Interrupted,
}

/// What a check saw.
#[derive(Debug, Clone)]
pub struct HandshakeReport {
    /// How the handshake ended.
    pub outcome: HandshakeOutcome,
    /// Time from the start of the check (the greeting read included) to the outcome (or the
    /// deadline).
    pub elapsed: Duration,
    /// Every monitor event seen, with the time since the check started: `(at, event, value)`.
    pub events: Vec<(Duration, u16, u32)>,
    /// The client socket's security mechanism (`ZMQ_MECHANISM`).
    pub client_mechanism: Mechanism,
    /// The server's greeting, read before the handshake (see the [module docs](self)), or
    /// why it was not.
    pub server_greeting: Result<Greeting, GreetingUnread>,
}

/// A client-side handshake check: read the server's greeting, connect, watch, report. See
/// the [module docs](self).
#[derive(Debug, Clone)]
pub struct HandshakeCheck {
    endpoint: String,
    deadline: Duration,
    read_greeting: bool,
    greeting_timeout: Duration,
}

impl HandshakeCheck {
    /// A check that connects to `endpoint` (e.g. `tcp://host:port`), with the default
    /// deadline of 5 s, reading the server's greeting first (for `tcp://` endpoints).
    pub fn new(endpoint: impl Into<String>) -> Self {
        HandshakeCheck {
            endpoint: endpoint.into(),
            deadline: DEFAULT_DEADLINE,
            read_greeting: true,
            greeting_timeout: DEFAULT_GREETING_TIMEOUT,
        }
    }

    /// How long to wait for an outcome, from the start of the check.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Whether to read the server's greeting over a TCP connection of the check's own
    /// before the handshake (the default: `true`). Without it a mechanism mismatch is
    /// reported as libzmq's events show it: a
    /// [`ProtocolError`](HandshakeOutcome::ProtocolError) with `ZMTP_MECHANISM_MISMATCH`
    /// from some attempt, or, if none said so before the deadline, a
    /// [`Dropped`](HandshakeOutcome::Dropped). Turn it off when that extra connection is
    /// unwelcome (it shows on a server's watch as a dropped handshake).
    pub fn read_greeting(mut self, read: bool) -> Self {
        self.read_greeting = read;
        self
    }

    /// How long reading the greeting may take, connect included (default 1 s, and never
    /// more than half the deadline): a libzmq server answers within a round trip, so only a
    /// server that does not answer it (not ZMTP, or hung) waits this long.
    pub fn greeting_timeout(mut self, timeout: Duration) -> Self {
        self.greeting_timeout = timeout;
        self
    }

    /// Runs the check, blocking the calling thread for at most the deadline (plus the
    /// monitor's teardown). `context` must be the socket's context. Do not call it on an
    /// actix thread that answers ZAP requests: use [`run_async`](Self::run_async) there.
    pub fn run(
        &self,
        context: &zmq::Context,
        socket: &mut zmq::Socket,
    ) -> Result<HandshakeReport, CheckError> {
        let client_mechanism = Mechanism::from(socket.get_mechanism().map_err(CheckError::Socket)?);
        let ipv6 = socket.is_ipv6().map_err(CheckError::Socket)?;
        let started = Instant::now();
        // Before libzmq connects, so that its answer cannot race the handshake.
        let server_greeting = if self.read_greeting {
            let timeout = self.greeting_timeout.min(self.deadline / 2);
            read_server_greeting(&self.endpoint, ipv6, timeout)
        } else {
            Err(GreetingUnread::Disabled)
        };
        let mut classifier = match &server_greeting {
            Ok(greeting) => {
                Classifier::with_mechanisms(client_mechanism.clone(), greeting.mechanism.clone())
            }
            Err(_) => Classifier::new(),
        };
        let watched = monitor_events::Watched::start(context, socket)?;
        if let Err(source) = socket.connect(&self.endpoint) {
            watched.finish(socket);
            return Err(CheckError::Connect {
                endpoint: self.endpoint.clone(),
                source,
            });
        }
        let mut events = Vec::new();
        let outcome = loop {
            let Some(left) = self.deadline.checked_sub(started.elapsed()) else {
                break classifier.deadline(started.elapsed());
            };
            let Some((event, value)) = watched.next(left) else {
                break classifier.deadline(started.elapsed());
            };
            let at = started.elapsed();
            events.push((at, event, value));
            if let Some(outcome) = classifier.event(at, event, value) {
                break outcome;
            }
        };
        let elapsed = started.elapsed();
        watched.finish(socket);
        Ok(HandshakeReport {
            outcome,
            elapsed,
            events,
            client_mechanism,
            server_greeting,
        })
    }

    /// Runs the check on a thread of its own and awaits it: usable from actix (any executor)
    /// without blocking it. The socket is moved in and handed back with the report (`None`
    /// only with [`CheckError::Interrupted`]: no thread could be started, or it died).
    pub async fn run_async(
        self,
        context: zmq::Context,
        socket: zmq::Socket,
    ) -> (Option<zmq::Socket>, Result<HandshakeReport, CheckError>) {
        let (tx, rx) = futures::channel::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("handshake-check".into())
            .spawn(move || {
                let mut socket = socket;
                let report = self.run(&context, &mut socket);
                let _ = tx.send((socket, report));
            });
        if spawned.is_err() {
            return (None, Err(CheckError::Interrupted));
        }
        match rx.await {
            Ok((socket, report)) => (Some(socket), report),
            Err(_) => (None, Err(CheckError::Interrupted)),
        }
    }
}
