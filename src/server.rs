//! `ServerSocket`: server sockets that refuse every handshake when no ZAP handler answers,
//! and an opt-in watch over a server socket's handshakes.

use std::thread::JoinHandle;
use std::time::Duration;

use crate::client::HandshakeOutcome;
use crate::keys::CurveSecretKey;
use crate::messages::error::NoCurveSupport;
use crate::monitor;
use crate::policy::check_domain;

mod tally;
pub use tally::HandshakeTally;

/// libzmq's `ZMQ_ZAP_ENFORCE_DOMAIN` (draft API, present in 4.3.x builds).
const ZMQ_ZAP_ENFORCE_DOMAIN: i32 = 93;

/// Why a hardened server socket could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerSocketError {
    /// An empty domain would disable the enforcement (and abort PLAIN servers).
    #[error("a hardened server socket needs a non-empty ZAP domain")]
    EmptyDomain,
    /// libzmq limits `ZMQ_ZAP_DOMAIN` to 255 bytes.
    #[error("ZAP domain is {0} bytes, libzmq allows at most 255")]
    DomainTooLong(usize),
    /// The linked libzmq cannot do CURVE.
    #[error(transparent)]
    NoCurveSupport(#[from] NoCurveSupport),
    /// The linked libzmq was built without GSSAPI.
    #[error(
        "the linked libzmq was built without GSSAPI (Debian's libzmq3-dev has it: it links libgssapi_krb5)"
    )]
    NoGssapiSupport,
    /// The linked libzmq does not know `ZMQ_ZAP_ENFORCE_DOMAIN` (older than 4.3.0).
    #[error("the linked libzmq does not support ZMQ_ZAP_ENFORCE_DOMAIN (needs 4.3.0 or later)")]
    EnforceUnsupported,
    /// Another zmq call failed.
    #[error("zmq: {0}")]
    Zmq(#[from] zmq::Error),
}

/// The security mechanism of a hardened server.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ServerMechanism {
    /// NULL: every client is decided by address rules (the domain makes libzmq ask).
    Null,
    /// PLAIN: username and password.
    Plain,
    /// CURVE with the server's long-term secret key.
    Curve(CurveSecretKey),
    /// GSSAPI (Kerberos), messages encrypted. **libzmq 4.3.x admits GSSAPI peers whatever the
    /// authenticator answers**, and also when no handler is bound (`ZMQ_ZAP_ENFORCE_DOMAIN` does
    /// not apply to it): the reply decides only the `User-Id` (empty for a refused peer). Only a
    /// socket that checks every message's session can keep a refused principal's messages out.
    Gssapi {
        /// The server's principal in libzmq's default name form, host-based: `service@host`
        /// (`zmq@server.example.com` is the Kerberos principal `zmq/server.example.com`). `None`:
        /// any principal with a key in the keytab (`KRB5_KTNAME`). With a principal, libzmq
        /// 4.3.4 acquires credentials to accept *and to initiate*, so the process also needs
        /// initiator credentials for it (a ticket cache, or a client keytab:
        /// `KRB5_CLIENT_KTNAME`); without one the handshake fails silently.
        principal: Option<String>,
    },
}

/// A recipe for server sockets that fail closed.
///
/// By default libzmq lets CURVE and NULL-with-domain peers in *unauthenticated* when nothing
/// is bound to the ZAP endpoint — before the authenticator starts, after it stops, or if it
/// never started. `ZMQ_ZAP_ENFORCE_DOMAIN` (option 93, a draft option the `zmq` crate does not
/// wrap) turns that into a refusal, but only together with a non-empty ZAP domain: with an
/// empty domain a CURVE server skips ZAP altogether and a PLAIN server aborts the process
/// (libzmq 4.3.4). This builder therefore requires a domain and sets, in this order and before
/// the caller binds: the domain, the mechanism with its keys, and the enforce flag. GSSAPI is
/// the exception libzmq leaves open: see [`ServerMechanism::Gssapi`].
///
/// ```no_run
/// use actix_zap::ServerSocket;
/// let context = zmq::Context::new();
/// let server = ServerSocket::plain("global").build(&context, zmq::REP)?;
/// server.bind("tcp://127.0.0.1:5556")?; // options are in place before bind
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ServerSocket {
    domain: String,
    mechanism: ServerMechanism,
}

impl ServerSocket {
    /// NULL security in `domain`.
    pub fn null(domain: impl Into<String>) -> Self {
        Self::new(domain, ServerMechanism::Null)
    }

    /// PLAIN security in `domain`.
    pub fn plain(domain: impl Into<String>) -> Self {
        Self::new(domain, ServerMechanism::Plain)
    }

    /// CURVE security in `domain`, with the server's secret key.
    pub fn curve(domain: impl Into<String>, secret_key: CurveSecretKey) -> Self {
        Self::new(domain, ServerMechanism::Curve(secret_key))
    }

    /// GSSAPI in `domain`, as `principal` (see [`ServerMechanism::Gssapi`]: the authenticator's
    /// refusals do not keep GSSAPI peers out of a libzmq 4.3.x socket).
    pub fn gssapi(domain: impl Into<String>, principal: Option<&str>) -> Self {
        let principal = principal.map(str::to_owned);
        Self::new(domain, ServerMechanism::Gssapi { principal })
    }

    /// Any mechanism in `domain`.
    pub fn new(domain: impl Into<String>, mechanism: ServerMechanism) -> Self {
        ServerSocket {
            domain: domain.into(),
            mechanism,
        }
    }

    /// Creates the socket with the options set; bind it afterwards.
    pub fn build(
        &self,
        context: &zmq::Context,
        socket_type: zmq::SocketType,
    ) -> Result<zmq::Socket, ServerSocketError> {
        let mut socket = context.socket(socket_type)?;
        self.apply(&mut socket)?;
        Ok(socket)
    }

    /// Creates a [`SessionSocket`](crate::sessions::SessionSocket) with the options set: a
    /// socket that delivers only messages of sessions the authenticator still admits, and
    /// whose revoked sessions' connections are ended (see [`sessions`](crate::sessions)). It
    /// owns the socket's monitor; bind it afterwards. In-process peers are delivered (see
    /// [`build_sessions_with`](Self::build_sessions_with)).
    ///
    /// ```no_run
    /// use actix_zap::ServerSocket;
    /// let context = zmq::Context::new();
    /// let mut server = ServerSocket::plain("global").build_sessions(&context, zmq::PULL)?;
    /// server.bind("tcp://127.0.0.1:5558")?;
    /// let message = server.recv_msg(0)?; // never from a revoked session
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build_sessions(
        &self,
        context: &zmq::Context,
        socket_type: zmq::SocketType,
    ) -> Result<crate::sessions::SessionSocket, ServerSocketError> {
        self.build_sessions_with(context, socket_type, crate::sessions::InprocPeers::Deliver)
    }

    /// [`build_sessions`](Self::build_sessions), deciding in-process peers as `inproc` says.
    pub fn build_sessions_with(
        &self,
        context: &zmq::Context,
        socket_type: zmq::SocketType,
        inproc: crate::sessions::InprocPeers,
    ) -> Result<crate::sessions::SessionSocket, ServerSocketError> {
        let socket = self.build(context, socket_type)?;
        Ok(crate::sessions::SessionSocket::new(
            context, socket, inproc,
        )?)
    }

    /// Sets the options on an existing socket that is not bound yet.
    pub fn apply(&self, socket: &mut zmq::Socket) -> Result<(), ServerSocketError> {
        check_server_domain(&self.domain)?;
        check_mechanism(&self.mechanism, zmq::has)?;
        socket.set_zap_domain(&self.domain)?;
        match &self.mechanism {
            ServerMechanism::Null => {}
            ServerMechanism::Plain => socket.set_plain_server(true)?,
            ServerMechanism::Curve(secret) => {
                socket.set_curve_server(true)?;
                socket.set_curve_secretkey(secret.as_bytes())?;
            }
            ServerMechanism::Gssapi { principal } => {
                socket.set_gssapi_server(true)?;
                if let Some(principal) = principal {
                    socket.set_gssapi_principal(principal)?;
                }
                socket.set_gssapi_plaintext(false)?;
            }
        }
        enforce_domain(socket)
    }
}

impl ServerSocket {
    /// Opt-in: watches `socket`'s handshakes and reports each as a [`HandshakeOutcome`], the
    /// same vocabulary as the client-side [`HandshakeCheck`](crate::client::HandshakeCheck).
    ///
    /// Call it before `bind`, so that no handshake is missed. The watch **owns the socket's
    /// monitor** (a socket has one; this replaces any other) and drains it on a thread of its
    /// own into a queue of at most [`monitor::QUEUE`] events (later ones are dropped and
    /// counted: [`HandshakeWatch::dropped`]), so an unread (or dropped) watch never stalls
    /// libzmq; the
    /// thread ends when the socket closes or another monitor replaces this one. `context` must
    /// be the socket's context.
    ///
    /// # Who was refused, and why: the authenticator's decision events
    /// Refusals are best seen where they are decided: [`Authenticator::subscribe`] /
    /// [`on_decision`](crate::Authenticator::on_decision) deliver a
    /// [`DecisionEvent`](crate::messages::DecisionEvent) per request with the peer's address, the
    /// domain, the mechanism, the user id, the status *and the reason text*. Use this watch for
    /// what only the server socket knows: protocol errors and handshakes that never finished.
    ///
    /// # What a bound socket's events can and cannot tell (libzmq 4.3.4, no draft API)
    /// Each event carries an id, a value and the **local** endpoint the socket is bound to,
    /// never the peer's address; events of concurrent handshakes cannot be told apart.
    ///
    /// | event | outcome | value | tells | cannot tell |
    /// |---|---|---|---|---|
    /// | `HANDSHAKE_SUCCEEDED` | [`Admitted`](HandshakeOutcome::Admitted) | 0 | a peer got in | who (read `User-Id` on its messages) |
    /// | `HANDSHAKE_FAILED_AUTH` | [`Refused`](HandshakeOutcome::Refused) / [`AuthenticatorError`](HandshakeOutcome::AuthenticatorError) / [`Stalled`](HandshakeOutcome::Stalled) | ZAP status 400 / 500 / 300 | the authenticator's answer | who, and why (the decision event says) |
    /// | `HANDSHAKE_FAILED_PROTOCOL` | [`ProtocolError`](HandshakeOutcome::ProtocolError) | `ZMQ_PROTOCOL_ERROR_*` | e.g. `0x11000001` ZMTP_CRYPTOGRAPHIC: a CURVE client that expects another server key; `0x11000002` a mechanism mismatch | which client |
    /// | `HANDSHAKE_FAILED_NO_DETAIL` | [`Stalled`](HandshakeOutcome::Stalled) for `EAGAIN` (11, measured), else [`Dropped`](HandshakeOutcome::Dropped) | errno | a handshake never finished: the handshake interval ran out (after a 300, a silent authenticator, or a client that stopped talking), or the peer was cut off | which peer |
    /// | none | not reported | | a socket-type mismatch (a DEALER client to a PULL server) raises no handshake event on the server; the client sees [`Dropped`](HandshakeOutcome::Dropped) | that it happened at all |
    /// | `ACCEPTED`, `DISCONNECTED` | not reported | file descriptor | connections come and go | the address behind the descriptor |
    ///
    /// [`Authenticator::subscribe`]: crate::Authenticator::subscribe
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use actix_zap::ServerSocket;
    ///
    /// let context = zmq::Context::new();
    /// let server = ServerSocket::plain("global").build(&context, zmq::ROUTER)?;
    /// let watch = ServerSocket::watch_handshakes(&context, &server)?;
    /// server.bind("tcp://127.0.0.1:5557")?;
    /// while let Some(handshake) = watch.next(Duration::from_secs(60)) {
    ///     println!("{}", handshake.outcome);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn watch_handshakes(
        context: &zmq::Context,
        socket: &zmq::Socket,
    ) -> Result<HandshakeWatch, ServerSocketError> {
        let endpoint = monitor::unique_endpoint("actix-zap-server-watch");
        let mask = zmq::SocketEvent::HANDSHAKE_SUCCEEDED as i32
            | zmq::SocketEvent::HANDSHAKE_FAILED_AUTH as i32
            | zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL as i32
            | zmq::SocketEvent::HANDSHAKE_FAILED_NO_DETAIL as i32;
        let (events, thread) = monitor::spawn(context, socket, &endpoint, mask)?;
        Ok(HandshakeWatch {
            events,
            _reader: Some(thread),
        })
    }
}

/// One handshake's end, as a server socket's monitor reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHandshake {
    /// The outcome, in the client check's words.
    pub outcome: HandshakeOutcome,
    /// libzmq's `ZMQ_EVENT_*` id.
    pub event: u16,
    /// The event's value (ZAP status, protocol error code or errno).
    pub value: u32,
}

/// The handshakes of one server socket; see [`ServerSocket::watch_handshakes`].
#[derive(Debug)]
pub struct HandshakeWatch {
    events: monitor::Events,
    /// Detached on drop: it keeps draining until `MONITOR_STOPPED`. `None` when the monitor
    /// is a [`SessionSocket`](crate::sessions::SessionSocket)'s.
    _reader: Option<JoinHandle<()>>,
}

impl crate::sessions::SessionSocket {
    /// The handshakes of this socket, reported as [`ServerSocket::watch_handshakes`] reports
    /// them, from the same monitor the session check uses (a socket has one monitor). `None`
    /// after the first call.
    pub fn watch_handshakes(&mut self) -> Option<HandshakeWatch> {
        self.take_handshake_events().map(HandshakeWatch::shared)
    }
}

impl HandshakeWatch {
    /// A watch over events another monitor reader forwards.
    fn shared(events: monitor::Events) -> Self {
        HandshakeWatch {
            events,
            _reader: None,
        }
    }

    /// The next handshake's end, waiting at most `wait`; `None` when `wait` passes or the
    /// socket closed.
    pub fn next(&self, wait: Duration) -> Option<ServerHandshake> {
        self.next_until(std::time::Instant::now() + wait).ok()
    }

    /// The next handshake's end before `deadline` (events that end none are passed over);
    /// the error says whether the deadline passed or the socket closed.
    fn next_until(
        &self,
        deadline: std::time::Instant,
    ) -> Result<ServerHandshake, std::sync::mpsc::RecvTimeoutError> {
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let (event, value) = self.events.recv_timeout(left)?;
            if let Some(outcome) = server_outcome(event, value) {
                return Ok(ServerHandshake {
                    outcome,
                    event,
                    value,
                });
            }
        }
    }

    /// Events dropped because [`monitor::QUEUE`] of them were waiting unread (the watch is
    /// read too slowly, or not at all).
    pub fn dropped(&self) -> u64 {
        self.events.dropped()
    }

    /// Every handshake reported so far, without waiting.
    pub fn drain(&self) -> Vec<ServerHandshake> {
        std::iter::from_fn(|| self.next(Duration::ZERO)).collect()
    }
}

/// `EAGAIN`: the errno libzmq 4.3.4 reports on a server whose handshake interval ran out.
const EAGAIN: u32 = 11;

/// A server socket's handshake event in the client check's words.
fn server_outcome(event: u16, value: u32) -> Option<HandshakeOutcome> {
    if event == zmq::SocketEvent::HANDSHAKE_FAILED_NO_DETAIL as u16 {
        return Some(if value == EAGAIN {
            HandshakeOutcome::Stalled {
                waited: Duration::ZERO,
            }
        } else {
            HandshakeOutcome::Dropped { attempts: 1 }
        });
    }
    crate::client::conclusive(event, value)
}

/// A server needs a domain (empty disables the enforcement); its length is the policy's rule.
fn check_server_domain(domain: &str) -> Result<(), ServerSocketError> {
    if domain.is_empty() {
        return Err(ServerSocketError::EmptyDomain);
    }
    check_domain(domain).map_err(|_| ServerSocketError::DomainTooLong(domain.len()))
}

/// A CURVE or GSSAPI server needs a libzmq built with that mechanism: `has` answers
/// `zmq::has(name)` ("curve", "gssapi").
fn check_mechanism(
    mechanism: &ServerMechanism,
    has: impl Fn(&str) -> Option<bool>,
) -> Result<(), ServerSocketError> {
    match mechanism {
        ServerMechanism::Curve(_) if has("curve") != Some(true) => Err(NoCurveSupport.into()),
        ServerMechanism::Gssapi { .. } if has("gssapi") != Some(true) => {
            Err(ServerSocketError::NoGssapiSupport)
        }
        _ => Ok(()),
    }
}

fn enforce_domain(socket: &mut zmq::Socket) -> Result<(), ServerSocketError> {
    match crate::ffi::set_int_option(socket, ZMQ_ZAP_ENFORCE_DOMAIN, 1) {
        Ok(()) => Ok(()),
        Err(zmq::Error::EINVAL) => Err(ServerSocketError::EnforceUnsupported),
        Err(other) => Err(other.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_events_use_the_client_vocabulary() {
        use zmq::SocketEvent as E;
        let no_detail = E::HANDSHAKE_FAILED_NO_DETAIL as u16;
        assert_eq!(
            server_outcome(E::HANDSHAKE_FAILED_AUTH as u16, 400),
            Some(HandshakeOutcome::Refused { status: 400 })
        );
        assert!(matches!(
            server_outcome(no_detail, EAGAIN),
            Some(HandshakeOutcome::Stalled { .. })
        ));
        assert!(matches!(
            server_outcome(no_detail, 32),
            Some(HandshakeOutcome::Dropped { .. })
        ));
        assert_eq!(server_outcome(E::ACCEPTED as u16, 7), None);
    }

    #[test]
    fn domains_are_required_and_bounded() {
        assert!(matches!(
            check_server_domain(""),
            Err(ServerSocketError::EmptyDomain)
        ));
        assert!(matches!(
            check_server_domain(&"x".repeat(256)),
            Err(ServerSocketError::DomainTooLong(256))
        ));
        assert!(check_server_domain("global").is_ok());
    }

    #[test]
    fn a_curve_server_needs_curve_support_and_says_how_to_fix_it() {
        let curve = ServerMechanism::Curve(CurveSecretKey::from_bytes([1; 32]));
        assert!(check_mechanism(&curve, |_| Some(true)).is_ok());
        for missing in [Some(false), None] {
            let error = check_mechanism(&curve, |_| missing).unwrap_err();
            assert!(error.to_string().contains("libzmq3-dev"), "{error}");
        }
        assert!(check_mechanism(&ServerMechanism::Plain, |_| Some(false)).is_ok());
    }

    #[test]
    fn a_gssapi_server_needs_gssapi_support() {
        let gssapi = ServerMechanism::Gssapi { principal: None };
        assert!(check_mechanism(&gssapi, |_| Some(true)).is_ok());
        for missing in [Some(false), None] {
            let error = check_mechanism(&gssapi, |_| missing).unwrap_err();
            assert!(
                matches!(error, ServerSocketError::NoGssapiSupport),
                "{error}"
            );
        }
        assert!(check_mechanism(&ServerMechanism::Plain, |_| None).is_ok());
    }

    #[test]
    fn an_empty_domain_is_refused_before_any_option_is_set() {
        let context = zmq::Context::new();
        let result = ServerSocket::plain("").build(&context, zmq::REP);
        assert!(matches!(result, Err(ServerSocketError::EmptyDomain)));
    }
}
