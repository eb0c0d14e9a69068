//! Client-side handshake diagnostics: connect a client socket and say how its handshake
//! ended, within a deadline, in words that say what to change.
//!
//! A client with the wrong key, the wrong server key, a refused password or no server at all
//! otherwise just sees nothing arrive. libzmq reports some of it through socket monitor
//! events; [`HandshakeCheck`] wires them up, reads them on a thread of its own, and folds them
//! into a [`HandshakeOutcome`].
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
//! | [`ProtocolError`](HandshakeOutcome::ProtocolError) | `CONNECTED`, `HANDSHAKE_FAILED_PROTOCOL` (`0x11000002` for a mechanism mismatch), `DISCONNECTED` | PLAIN→CURVE and NULL→PLAIN alike. A race in libzmq: when the server reads the client's whole greeting at once, it closes before its own greeting is flushed, and that attempt looks like a drop (seen in 20-80% of attempts between two processes, rarely within one). libzmq retries, so within a deadline of a second or more some attempt reports the mismatch; a drop is therefore never concluded before the deadline. |
//! | [`Unreachable`](HandshakeOutcome::Unreachable) | `CONNECT_DELAYED`, `CLOSED`, `CONNECT_RETRIED` (the reconnect interval), repeated | nothing listening; concluded at the first retry. |
//! | [`DeadlinePassed`](HandshakeOutcome::DeadlinePassed) | none of the above | e.g. a TCP connect that neither succeeds nor fails. |
//!
//! A connection that stays up longer than [`STALL_THRESHOLD`] without an outcome counts as
//! stalling. Stalls and drops are only reported at the deadline (a slow authenticator may
//! still answer, a later attempt may still say more); every other outcome as soon as it
//! shows. A deadline of a few seconds (the default is 5 s) gives libzmq's reconnects room.
//!
//! # What the check does to the socket
//! - It **owns the socket's monitor** while it runs: a socket has exactly one, so a monitor
//!   the application set is replaced (libzmq stops it; its reader sees `MONITOR_STOPPED`).
//!   Set your own again afterwards if you need it.
//! - It **drains the monitor on a thread of its own**: libzmq sends monitor events blocking,
//!   and an undrained monitor stalls every handshake on the context.
//! - It **removes the monitor** when it returns, and joins that thread.
//! - It connects the socket to the endpoint and never reads or writes a message: the
//!   application's messages stay where they are, and the connection stays up (a refused or
//!   unreachable socket keeps whatever reconnecting libzmq does).
//! - Use it on a socket that has no other connection yet: events of other connections would
//!   mix in.

mod greeting;
pub mod monitor;
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

/// Why a check could not run (the handshake itself never makes it fail: that is an outcome).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
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
    /// Time from the connect call to the outcome (or the deadline).
    pub elapsed: Duration,
    /// Every monitor event seen, with the time since the connect call: `(at, event, value)`.
    pub events: Vec<(Duration, u16, u32)>,
}

/// A client-side handshake check: connect, watch, report. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct HandshakeCheck {
    endpoint: String,
    deadline: Duration,
}

impl HandshakeCheck {
    /// A check that connects to `endpoint` (e.g. `tcp://host:port`), with the default
    /// deadline of 5 s.
    pub fn new(endpoint: impl Into<String>) -> Self {
        HandshakeCheck {
            endpoint: endpoint.into(),
            deadline: DEFAULT_DEADLINE,
        }
    }

    /// How long to wait for an outcome.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
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
        let watched = monitor_events::Watched::start(context, socket)?;
        let started = Instant::now();
        if let Err(source) = socket.connect(&self.endpoint) {
            watched.finish(socket);
            return Err(CheckError::Connect {
                endpoint: self.endpoint.clone(),
                source,
            });
        }
        let mut classifier = Classifier::new();
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
