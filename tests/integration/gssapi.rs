//! GSSAPI (Kerberos) end to end, each test in a realm of its own (`common::kerberos`): an
//! allowed principal's messages reach a GSSAPI server with the principal as their `User-Id`;
//! and libzmq's hole, shown: libzmq 4.3.x lets a GSSAPI peer in even when the authenticator
//! refuses it (ZAP 400), so a bare server socket delivers a refused principal's messages — and
//! with no handler bound it lets every principal in, `ZMQ_ZAP_ENFORCE_DOMAIN` notwithstanding.
//!
//! Kerberos is configured through environment variables, so each test runs in processes of its
//! own: the test process makes the realm (KDC, keytabs, credential caches) and starts the
//! server process (authenticator and server socket, with the server's keytab); the server
//! process starts a process per client principal (each with its own credential cache), all of
//! them this test binary running the same test.
//!
//! What the handshake needs (libzmq 4.3.4, MIT Kerberos 1.20): libzmq imports every name in
//! the host-based form by default, so the client names the server `zmq@localhost` (the
//! principal `zmq/localhost@REALM`) and sets no principal of its own: its credential cache's
//! default principal is used (a `ZMQ_GSSAPI_PRINCIPAL` would be imported host-based too,
//! unless `ZMQ_GSSAPI_PRINCIPAL_NAMETYPE` says otherwise). The server names itself the same
//! way, which makes libzmq acquire credentials to initiate as well as to accept: it needs a
//! client keytab besides its keytab (see `Realm::server_env`); without, the handshake fails
//! with no event on either side. The realm's `krb5.conf` turns off DNS and hostname
//! canonicalisation, so `localhost` is not rewritten into whatever the resolver calls it. The
//! principal libzmq sends in the ZAP request (the `User-Id` of an admission) is the full
//! display name, realm included: `alice@ACTIX-ZAP.TEST`.

use std::collections::HashSet;
use std::sync::mpsc::{channel, Receiver};
use std::sync::Mutex;
use std::time::Instant;

use crate::common::kerberos::{self, isolated_in_realm, principal};
use crate::common::*;

use actix_zap::messages::DecisionEvent;
use actix_zap::policy::GssapiPolicy;
use actix_zap::sessions::SessionSocket;
use actix_zap::{ServerSocket, ThreadAuthenticator};

const DOMAIN: &str = "kerberos";
/// Messages each client sends.
const MESSAGES: usize = 5;
/// In the realm, and in the domain's GSSAPI policy.
const ALLOWED: &str = "alice";
/// In the realm (a valid Kerberos principal), not in the domain's policy.
const REFUSED: &str = "mallory";

/// Set by the server process for a client process: which client it is, and where to connect.
const CLIENT: &str = "ACTIX_ZAP_TEST_GSSAPI_CLIENT";
const ENDPOINT: &str = "ACTIX_ZAP_TEST_GSSAPI_ENDPOINT";

#[test]
fn an_allowed_principal_reaches_a_gssapi_server_as_its_user_id() {
    const TEST: &str = "gssapi::an_allowed_principal_reaches_a_gssapi_server_as_its_user_id";
    isolated_in_realm(TEST, &[ALLOWED], || {
        let Some((received, decisions)) = play(TEST, &[ALLOWED], Zap::Authenticator, Socket::Bare)
        else {
            return; // a client process
        };
        assert_eq!(received, sent_by(ALLOWED, &principal(ALLOWED)));
        let [decision] = decisions.as_slice() else {
            panic!("one handshake, one decision: {decisions:?}");
        };
        assert_eq!(decision.status.as_u16(), 200, "{decision:?}");
        assert_eq!(decision.user_id, principal(ALLOWED));
    });
}

/// libzmq 4.3.x's hole, demonstrated: the authenticator refuses the principal, and the bare
/// socket delivers its messages all the same — with an empty `User-Id`, so the application
/// cannot even tell whose they are. Only a socket that checks each message's session (issue 19)
/// can keep them out; with one, the assertion on the refused client's messages turns around.
#[test]
fn a_refused_principal_still_reaches_a_bare_gssapi_socket() {
    const TEST: &str = "gssapi::a_refused_principal_still_reaches_a_bare_gssapi_socket";
    isolated_in_realm(TEST, &[ALLOWED, REFUSED], || {
        let clients = [ALLOWED, REFUSED];
        let Some((received, decisions)) = play(TEST, &clients, Zap::Authenticator, Socket::Bare)
        else {
            return; // a client process
        };
        let (refusals, admissions): (Vec<_>, Vec<_>) = decisions
            .iter()
            .partition(|decision| decision.status.as_u16() == 400);
        let [refusal] = refusals.as_slice() else {
            panic!("the refused principal's one decision: {decisions:?}");
        };
        assert_eq!(refusal.reason, "Unknown principal");
        let [admission] = admissions.as_slice() else {
            panic!("the allowed principal's one decision: {decisions:?}");
        };
        assert_eq!(admission.status.as_u16(), 200);
        assert_eq!(admission.user_id, principal(ALLOWED));

        let from = |client: &str| -> Vec<Received> {
            let prefix = format!("{client} ");
            let mine = received.iter().filter(|m| m.body.starts_with(&prefix));
            mine.cloned().collect()
        };
        assert_eq!(from(ALLOWED), sent_by(ALLOWED, &principal(ALLOWED)));
        // The hole: refused, and delivered.
        assert_eq!(from(REFUSED), sent_by(REFUSED, ""));
    });
}

/// The protection: the same two principals, served by a `SessionSocket`. The refused
/// principal's session carries no mark of the authenticator (ZAP refused it), so none of its
/// messages is delivered, while the allowed principal's all are.
#[test]
fn a_refused_principal_never_reaches_a_session_socket() {
    const TEST: &str = "gssapi::a_refused_principal_never_reaches_a_session_socket";
    isolated_in_realm(TEST, &[ALLOWED, REFUSED], || {
        let clients = [ALLOWED, REFUSED];
        let Some((received, decisions)) =
            play(TEST, &clients, Zap::Authenticator, Socket::Sessions)
        else {
            return; // a client process
        };
        assert!(
            decisions.iter().any(|d| d.status.as_u16() == 400),
            "the refused principal was refused: {decisions:?}"
        );
        assert_eq!(received, sent_by(ALLOWED, &principal(ALLOWED)));
    });
}

/// And with no handler bound, where libzmq admits every GSSAPI principal: a session socket
/// delivers none of their messages (none carries a mark).
#[test]
fn with_no_authenticator_a_session_socket_delivers_nothing() {
    const TEST: &str = "gssapi::with_no_authenticator_a_session_socket_delivers_nothing";
    isolated_in_realm(TEST, &[REFUSED], || {
        let Some((received, _)) = play(TEST, &[REFUSED], Zap::Nobody, Socket::Sessions) else {
            return; // a client process
        };
        assert_eq!(received, Vec::new());
    });
}

/// libzmq 4.3.x's other GSSAPI hole: `ZMQ_ZAP_ENFORCE_DOMAIN` (which `ServerSocket` sets)
/// makes NULL, PLAIN and CURVE servers refuse everyone while no handler is bound, but a GSSAPI
/// server then skips ZAP and admits every principal (with no `User-Id`).
#[test]
fn with_no_authenticator_a_gssapi_server_admits_every_principal() {
    const TEST: &str = "gssapi::with_no_authenticator_a_gssapi_server_admits_every_principal";
    isolated_in_realm(TEST, &[REFUSED], || {
        let Some((received, _)) = play(TEST, &[REFUSED], Zap::Nobody, Socket::Bare) else {
            return; // a client process
        };
        assert_eq!(received, sent_by(REFUSED, ""));
    });
}

/// One message as the server application received it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Received {
    /// The `User-Id` property libzmq put on the message.
    user_id: String,
    body: String,
}

/// What `client` sends, as the server would receive it with `user_id`.
fn sent_by(client: &str, user_id: &str) -> Vec<Received> {
    (0..MESSAGES)
        .map(|i| Received {
            user_id: user_id.to_owned(),
            body: format!("{client} {i}"),
        })
        .collect()
}

/// Who answers the server's ZAP requests.
enum Zap {
    /// An authenticator whose GSSAPI policy admits [`ALLOWED`] only.
    Authenticator,
    /// Nothing is bound to the ZAP endpoint.
    Nobody,
}

/// Plays this process's part of `test`: a client process sends its messages and returns `None`;
/// the server process serves `clients` (each in a process of its own) and returns what its
/// application received and the authenticator's decisions (one per client).
fn play(
    test: &str,
    clients: &[&str],
    zap: Zap,
    kind: Socket,
) -> Option<(Vec<Received>, Vec<DecisionEvent>)> {
    if let Ok(client) = std::env::var(CLIENT) {
        let endpoint = std::env::var(ENDPOINT).expect("the server's endpoint");
        send_as(&client, &endpoint);
        return None;
    }
    init_logging();
    let context = zmq::Context::new();
    let auth = match zap {
        Zap::Authenticator => {
            let auth = ThreadAuthenticator::start(&context).unwrap();
            let allowed = HashSet::from([principal(ALLOWED)]);
            auth.configure_gssapi(DOMAIN, GssapiPolicy::Principals(allowed))
                .unwrap();
            Some(auth)
        }
        Zap::Nobody => None,
    };
    let decisions = auth.as_ref().map(follow);
    let server = Server::bind(&context, kind);
    let processes: Vec<_> = clients
        .iter()
        .map(|client| {
            let cache = kerberos::client_env(client);
            let env = [
                (cache.0, cache.1),
                (CLIENT, client.to_string()),
                (ENDPOINT, server.endpoint.clone()),
            ];
            let test = test.to_owned();
            std::thread::spawn(move || {
                let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
                child::run_in_child(&test, &env);
            })
        })
        .collect();
    // A bare socket delivers every client's messages; a session socket only the admitted
    // ones (the others are dropped as they come).
    let expected = match kind {
        Socket::Bare => clients.len() * MESSAGES,
        Socket::Sessions => clients.iter().filter(|c| **c == ALLOWED).count() * MESSAGES,
    };
    let mut received = server.serve(PATIENCE, |received| received.len() == expected);
    for process in processes {
        if let Err(panic) = process.join() {
            std::panic::resume_unwind(panic);
        }
    }
    // Every client has sent all it had and exited: what is still queued is read now (a
    // session socket must drop it).
    received.extend(server.serve(std::time::Duration::from_secs(1), |_| false));
    let decisions = decisions.map_or_else(Vec::new, |decisions| {
        let next = |_| decisions.recv_timeout(PATIENCE).expect("a decision event");
        (0..clients.len()).map(next).collect()
    });
    Some((received, decisions))
}

/// Which server socket the application receives from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Socket {
    /// A bare libzmq socket built by `ServerSocket`: libzmq's hole shows.
    Bare,
    /// A `SessionSocket` (`ServerSocket::build_sessions`): only admitted sessions' messages.
    Sessions,
}

/// The GSSAPI server under test.
struct Server {
    socket: Receiving,
    endpoint: String,
}

enum Receiving {
    Bare(zmq::Socket),
    Sessions(Box<std::cell::RefCell<SessionSocket>>),
}

impl Server {
    fn bind(context: &zmq::Context, kind: Socket) -> Server {
        let recipe = ServerSocket::gssapi(DOMAIN, Some(kerberos::SERVICE));
        let socket = match kind {
            Socket::Bare => Receiving::Bare(recipe.build(context, zmq::PULL).expect("a socket")),
            Socket::Sessions => Receiving::Sessions(Box::new(std::cell::RefCell::new(
                recipe
                    .build_sessions(context, zmq::PULL)
                    .expect("a session socket"),
            ))),
        };
        let endpoint = match &socket {
            Receiving::Bare(socket) => bind_raw(socket),
            Receiving::Sessions(socket) => bind_raw(socket.borrow().raw()),
        };
        Server { socket, endpoint }
    }

    /// Every message the application receives, until `enough` or `patience` has passed
    /// (then the caller's assertions say what is missing).
    fn serve(
        &self,
        patience: std::time::Duration,
        enough: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + patience;
        let mut received = Vec::new();
        while !enough(&received) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let timeout = left.as_millis().max(1) as i32;
            let outcome = match &self.socket {
                Receiving::Bare(socket) => {
                    socket.set_rcvtimeo(timeout).unwrap();
                    socket.recv_msg(0)
                }
                Receiving::Sessions(socket) => {
                    let mut socket = socket.borrow_mut();
                    socket.raw().set_rcvtimeo(timeout).unwrap();
                    socket.recv_msg(0).map_err(|error| match error {
                        actix_zap::sessions::SessionError::Zmq(error) => error,
                        other => panic!("receiving: {other}"),
                    })
                }
            };
            match outcome {
                Ok(mut message) => received.push(Received {
                    user_id: message.gets("User-Id").unwrap_or_default().to_owned(),
                    body: message.as_str().expect("UTF-8 test messages").to_owned(),
                }),
                Err(zmq::Error::EAGAIN) => break,
                Err(error) => panic!("receiving: {error}"),
            }
        }
        received
    }
}

fn bind_raw(socket: &zmq::Socket) -> String {
    socket.set_linger(0).unwrap();
    socket.bind("tcp://127.0.0.1:0").unwrap();
    socket.get_last_endpoint().unwrap().unwrap()
}

/// Every decision of `auth`, in order.
fn follow(auth: &ThreadAuthenticator) -> Receiver<DecisionEvent> {
    let (tx, rx) = channel();
    let tx = Mutex::new(tx);
    auth.on_decision(move |event| {
        let _ = tx.lock().unwrap().send(event.clone());
    })
    .unwrap();
    rx
}

/// A client process: connects as its credential cache's principal, waits for its handshake
/// to succeed (a Kerberos failure shows here, not as missing messages), sends its messages and
/// lingers until they are out.
fn send_as(client: &str, endpoint: &str) {
    let context = zmq::Context::new();
    let socket = context.socket(zmq::PUSH).unwrap();
    socket
        .set_gssapi_service_principal(kerberos::SERVICE)
        .unwrap();
    socket.set_gssapi_plaintext(false).unwrap();
    socket.set_linger(PATIENCE.as_millis() as i32).unwrap();
    socket.set_sndtimeo(PATIENCE.as_millis() as i32).unwrap();
    let monitor = Monitor::attach(&context, &socket);
    let connection = Connection { socket, monitor };
    connection.socket.connect(endpoint).unwrap();
    let (event, value) = connection.monitor.next_handshake();
    assert_eq!(
        event,
        zmq::SocketEvent::HANDSHAKE_SUCCEEDED as u16,
        "{client}'s GSSAPI handshake failed (event {event:#x}, value {value:#x})"
    );
    for i in 0..MESSAGES {
        let message = format!("{client} {i}");
        connection.socket.send(message.as_str(), 0).unwrap();
    }
    // Closing lingers until the messages are out; then the monitor's thread ends.
}

/// A client socket and its monitor, in drop order: the monitor's thread ends only once the
/// socket is closed, also when a failed assertion unwinds.
struct Connection {
    socket: zmq::Socket,
    monitor: Monitor,
}
