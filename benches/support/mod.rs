//! Helpers shared by the measurement tools that serve REP clients (`fleet_bench`,
//! `revocation_latency`, `staleness`; included with `#[path = "support/mod.rs"] mod support;`).
//!
//! - [`Server`] runs a REP server socket on a thread of its own and watches its handshakes
//!   with a socket monitor, so every outcome is a positive signal: libzmq says the handshake
//!   succeeded, or that the authenticator refused it (and with which ZAP status code).
//! - [`Server::attempt`] connects one REQ client, sends "Hello" and reports what happened.
//! - The `*_client` functions make client sockets; [`off_thread`] runs blocking socket work
//!   outside the actix thread.
//!
//! Every socket gets `LINGER 0` so that tearing the context down never hangs, and every
//! wait is bounded by [`PATIENCE`] (a failure guard, never a way to synchronise).
#![allow(dead_code)]

use std::error::Error;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use actix_zap::certs::Certificate;
use actix_zap::keys::CurvePublicKey;
use actix_zap::monitor;

/// The longest any single step may take before the example gives up.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub type Result<T, E = Box<dyn Error + Send + Sync>> = std::result::Result<T, E>;

/// Prints what went wrong and exits with status 1.
pub fn fail(what: impl std::fmt::Display) -> ! {
    eprintln!("UNEXPECTED: {what}");
    std::process::exit(1)
}

/// What happened to one client that connected and said "Hello".
#[derive(Debug)]
pub enum Outcome {
    /// The handshake succeeded and the server answered; the connection stays up.
    Admitted {
        reply: String,
        connection: Connection,
    },
    /// The authenticator refused the client (`HANDSHAKE_FAILED_AUTH`, with the ZAP status).
    Refused(u32),
    /// The handshake failed for another reason (wrong key, wrong mechanism...).
    Failed(String),
    /// Nothing happened within [`PATIENCE`].
    NoAnswer,
}

/// An established client connection (a REQ socket).
#[derive(Clone)]
pub struct Connection(Arc<Mutex<zmq::Socket>>);

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connection")
    }
}

impl Connection {
    /// Sends `text` and waits (at most [`PATIENCE`]) for the reply.
    pub fn ask(&self, text: &str) -> Option<String> {
        let socket = self.0.lock().unwrap();
        socket.send(text, 0).ok()?;
        socket.recv_string(0).ok()?.ok()
    }
}

/// A REQ socket with LINGER 0 and bounded waits.
fn client_socket(context: &zmq::Context) -> Result<zmq::Socket> {
    let socket = context.socket(zmq::REQ)?;
    socket.set_linger(0)?;
    socket.set_rcvtimeo(PATIENCE.as_millis() as i32)?;
    socket.set_sndtimeo(PATIENCE.as_millis() as i32)?;
    Ok(socket)
}

/// A client without security (NULL).
pub fn null_client(context: &zmq::Context) -> Result<zmq::Socket> {
    client_socket(context)
}

/// A PLAIN client with a username and password.
pub fn plain_client(context: &zmq::Context, user: &str, password: &str) -> Result<zmq::Socket> {
    let socket = client_socket(context)?;
    socket.set_plain_username(Some(user))?;
    socket.set_plain_password(Some(password))?;
    Ok(socket)
}

/// A CURVE client with its own certificate, expecting the server's public key.
pub fn curve_client(
    context: &zmq::Context,
    server_key: &CurvePublicKey,
    me: &Certificate,
) -> Result<zmq::Socket> {
    let secret = me
        .secret_key
        .as_ref()
        .ok_or("client certificate without secret key")?;
    let socket = client_socket(context)?;
    socket.set_curve_serverkey(server_key.as_bytes())?;
    socket.set_curve_publickey(me.public_key.as_bytes())?;
    socket.set_curve_secretkey(secret.as_bytes())?;
    Ok(socket)
}

/// Runs blocking socket work on tokio's blocking pool, off the actix thread (which must stay
/// free to answer ZAP requests).
pub async fn off_thread<T, F>(work: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| fail(format!("blocking task failed: {e}")))
}

/// A REP server on its own thread, bound to a free port on 127.0.0.1 and watched by a
/// monitor. Dropping it stops the thread and closes the socket.
pub struct Server {
    pub endpoint: String,
    events: Mutex<monitor::Events>,
    control: Mutex<zmq::Socket>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

static NAMES: AtomicUsize = AtomicUsize::new(0);

fn unique(prefix: &str) -> String {
    format!(
        "inproc://{prefix}-{}",
        NAMES.fetch_add(1, Ordering::Relaxed)
    )
}

impl Server {
    /// Binds `socket` (configured, not bound yet) and serves it on a thread: every request
    /// is answered with what `respond` returns. `respond` can read the message properties
    /// the authenticator set (`User-Id`, metadata) with `zmq::Message::gets`.
    pub fn start<F>(context: &zmq::Context, socket: zmq::Socket, mut respond: F) -> Result<Server>
    where
        F: FnMut(&mut zmq::Message) -> String + Send + 'static,
    {
        socket.set_linger(0)?;
        // The monitor must be connected before any client connects, and drained all the
        // time: libzmq's I/O thread blocks while a monitor event cannot be delivered.
        let events = watch(context, &socket)?;
        socket.bind("tcp://127.0.0.1:0")?;
        let endpoint = socket
            .get_last_endpoint()?
            .map_err(|_| "endpoint is not UTF-8")?;

        let control_endpoint = unique("server-control");
        let control_rx = context.socket(zmq::PAIR)?;
        control_rx.set_linger(0)?;
        control_rx.bind(&control_endpoint)?;
        let control = context.socket(zmq::PAIR)?;
        control.set_linger(0)?;
        control.connect(&control_endpoint)?;

        let thread = std::thread::spawn(move || {
            // Dropping `socket` and `control_rx` at the end closes them.
            let mut items = [
                socket.as_poll_item(zmq::POLLIN),
                control_rx.as_poll_item(zmq::POLLIN),
            ];
            loop {
                if zmq::poll(&mut items, -1).is_err() || items[1].is_readable() {
                    return;
                }
                if items[0].is_readable() {
                    let mut request = zmq::Message::new();
                    if socket.recv(&mut request, zmq::DONTWAIT).is_ok() {
                        let reply = respond(&mut request);
                        if socket.send(reply.as_str(), 0).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Ok(Server {
            endpoint,
            events: Mutex::new(events),
            control: Mutex::new(control),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Connects `client`, sends "Hello" and reports what happened: the server's handshake
    /// event says whether the client got in; if it did, its reply is awaited.
    ///
    /// Call it for one client at a time, so that the next handshake event is this client's.
    pub fn attempt(&self, client: zmq::Socket) -> Outcome {
        if let Err(e) = client.connect(&self.endpoint) {
            return Outcome::Failed(format!("connect: {e}"));
        }
        // Queued without waiting: `connect` made the pipe (`ZMQ_IMMEDIATE` is off), but a
        // client refused before this call (on a loaded machine the whole handshake can end
        // first) has lost it already, since libzmq ends the session on the server's ERROR. A
        // blocking send would then wait PATIENCE and leave this client's handshake event
        // to the next attempt. The event below still says what happened.
        let queued = match client.send("Hello", zmq::DONTWAIT) {
            Ok(()) => true,
            Err(zmq::Error::EAGAIN) => false,
            Err(e) => return Outcome::Failed(format!("send: {e}")),
        };
        match self.next_handshake() {
            None => Outcome::NoAnswer,
            // Never seen: an admitted client keeps its pipe.
            Some(Handshake::Succeeded) if !queued => {
                Outcome::Failed("admitted, but its pipe was gone before the send".into())
            }
            Some(Handshake::Succeeded) => match client.recv_string(0) {
                Ok(Ok(reply)) => Outcome::Admitted {
                    reply,
                    connection: Connection(Arc::new(Mutex::new(client))),
                },
                _ => Outcome::NoAnswer,
            },
            Some(Handshake::Refused(status)) => Outcome::Refused(status),
            Some(Handshake::Failed(why)) => Outcome::Failed(why),
        }
        // A client that was not admitted is dropped (closed) here.
    }

    fn next_handshake(&self) -> Option<Handshake> {
        let events = self.events.lock().unwrap();
        loop {
            let (event, value) = events.recv_timeout(PATIENCE).ok()?;
            if let Some(handshake) = Handshake::from_event(event, value) {
                return Some(handshake);
            }
        }
    }

    /// Stops the server thread, which closes the server socket.
    pub fn stop(&self) {
        if let Some(thread) = self.thread.lock().unwrap().take() {
            let _ = self.control.lock().unwrap().send("stop", 0);
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The end of one handshake, as the server's monitor reports it.
enum Handshake {
    Succeeded,
    Refused(u32),
    Failed(String),
}

impl Handshake {
    fn from_event(event: u16, value: u32) -> Option<Handshake> {
        use zmq::SocketEvent as E;
        Some(match event {
            e if e == E::HANDSHAKE_SUCCEEDED as u16 => Handshake::Succeeded,
            e if e == E::HANDSHAKE_FAILED_AUTH as u16 => Handshake::Refused(value),
            e if e == E::HANDSHAKE_FAILED_PROTOCOL as u16 => {
                Handshake::Failed(protocol_error(value).to_owned())
            }
            e if e == E::HANDSHAKE_FAILED_NO_DETAIL as u16 => {
                Handshake::Failed(format!("handshake failed (errno {value})"))
            }
            _ => return None,
        })
    }
}

/// Names the `ZMQ_PROTOCOL_ERROR_*` values a failed handshake reports.
fn protocol_error(value: u32) -> &'static str {
    match value {
        0x1100_0001 => "CURVE cryptographic error: the client's HELLO did not decrypt",
        0x1100_0002 => "security mechanism mismatch",
        0x2000_0000..=0x2000_0005 => "invalid reply from the ZAP handler",
        _ => "ZMTP protocol error",
    }
}

/// Starts a monitor on `socket` (see `monitor.rs`) and returns the (event, value) pairs.
fn watch(context: &zmq::Context, socket: &zmq::Socket) -> Result<monitor::Events> {
    let endpoint = unique("monitor");
    let (events, _thread) =
        monitor::spawn(context, socket, &endpoint, zmq::SocketEvent::ALL as i32)?;
    Ok(events)
}
