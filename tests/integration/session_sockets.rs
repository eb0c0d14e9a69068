//! The `SessionSocket` on every socket type it covers, end to end with real sockets: ROUTER
//! (with sends refused to a revoked peer), REP (its state machine reset after a dropped
//! request), DEALER, PAIR, PULL, XPUB (subscriptions carry the session's properties), inproc
//! peers (delivered or dropped, as asked), peers admitted by another ZAP handler (never
//! delivered, their connections ended), the async receive inside an actix System, and what a
//! revocation shows to an observer.
//!
//! Every run is judged by what the sockets delivered and what the clients' own monitors saw;
//! every wait is bounded by `PATIENCE`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix_zap::messages::{RemoveCurveKeys, RemovePlainUsers};
use actix_zap::monitor::Events;
use actix_zap::sessions::{InprocPeers, SessionError, SessionSocket};
use actix_zap::zap::mark::MARK_PROPERTY;
use actix_zap::ServerSocket;

use crate::common::{init_logging, started, Keys, PATIENCE};
use crate::sessions::{
    bind_tcp, curve_setup, revocation_run_as, wait_count, Login, Sender, UNREAD_AT_REVOCATION,
};

/// A client socket's own monitor: disconnects and handshake outcomes.
fn watch(context: &zmq::Context, socket: &zmq::Socket) -> Events {
    let endpoint = actix_zap::monitor::unique_endpoint("session-sockets-client");
    let mask = zmq::SocketEvent::DISCONNECTED as i32
        | zmq::SocketEvent::HANDSHAKE_SUCCEEDED as i32
        | zmq::SocketEvent::HANDSHAKE_FAILED_AUTH as i32;
    actix_zap::monitor::spawn(context, socket, &endpoint, mask)
        .unwrap()
        .0
}

/// Waits (bounded) for `event` among `events`; its value.
fn saw(events: &Events, event: zmq::SocketEvent) -> Option<u32> {
    let deadline = Instant::now() + PATIENCE;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match events.recv_timeout(left) {
            Ok((e, value)) if e == event as u16 => return Some(value),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

/// Waits (bounded) until the raw socket has a message to read, without reading it.
fn readable(server: &SessionSocket) -> bool {
    let mut items = [server.raw().as_poll_item(zmq::POLLIN)];
    zmq::poll(&mut items, PATIENCE.as_millis() as i64).unwrap() == 1
}

/// `"<name> <n>"`.
fn parse(body: &[u8]) -> (String, u64) {
    let text = std::str::from_utf8(body).unwrap();
    let (name, n) = text.split_once(' ').unwrap();
    (name.to_owned(), n.parse().unwrap())
}

/// What a client on its own thread does every millisecond.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Act {
    /// DEALER: sends `"<name> <n>"` and reads the replies `"re <n>"`.
    Request,
    /// SUB: operation `n` subscribes to `"<name> <n>"` (even `n`) or unsubscribes from
    /// `"<name> <n - 1>"` (odd `n`).
    Subscribe,
}

/// What a client did.
#[derive(Debug, Default)]
struct Tally {
    sent: u64,
    replies: Vec<u64>,
}

/// A client that acts every millisecond until told to stop, with a monitor of its own socket.
struct Peer {
    stop: Arc<AtomicBool>,
    /// Messages sent (operations done) so far.
    sent: Arc<AtomicU64>,
    thread: Option<JoinHandle<Tally>>,
    events: Events,
}

impl Peer {
    /// Connects to `endpoint` and acts; a requester with `await_replies`, once stopped, waits
    /// (bounded) for the replies to everything it sent.
    fn start(
        context: &zmq::Context,
        act: Act,
        name: &'static str,
        login: Login,
        endpoint: &str,
        await_replies: bool,
    ) -> Peer {
        let socket_type = match act {
            Act::Request => zmq::DEALER,
            Act::Subscribe => zmq::SUB,
        };
        let socket = context.socket(socket_type).unwrap();
        socket.set_linger(0).unwrap();
        login.apply(&socket);
        let events = watch(context, &socket);
        socket.connect(endpoint).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let sent = Arc::new(AtomicU64::new(0));
        let counting = Arc::clone(&sent);
        let thread = std::thread::spawn(move || {
            let mut tally = Tally::default();
            // One reply, waiting as `flags` says; whether there was one.
            let read_reply = |tally: &mut Tally, flags| match socket.recv_bytes(flags) {
                Ok(reply) => {
                    let (re, n) = parse(&reply);
                    assert_eq!(re, "re");
                    tally.replies.push(n);
                    true
                }
                Err(zmq::Error::EAGAIN) => false,
                Err(error) => panic!("{name}: {error}"),
            };
            while !stopping.load(Ordering::Relaxed) {
                let n = tally.sent;
                match act {
                    Act::Request => {
                        match socket.send(format!("{name} {n}").as_bytes(), zmq::DONTWAIT) {
                            Ok(()) => tally.sent += 1,
                            Err(zmq::Error::EAGAIN) => {}
                            Err(error) => panic!("{name}: {error}"),
                        }
                        while read_reply(&mut tally, zmq::DONTWAIT) {}
                    }
                    Act::Subscribe => {
                        if n % 2 == 0 {
                            socket.set_subscribe(format!("{name} {n}").as_bytes())
                        } else {
                            socket.set_unsubscribe(format!("{name} {}", n - 1).as_bytes())
                        }
                        .unwrap();
                        tally.sent += 1;
                    }
                }
                counting.store(tally.sent, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
            if await_replies {
                socket.set_rcvtimeo(PATIENCE.as_millis() as i32).unwrap();
                // A timeout ends it: the caller sees the replies missing.
                while (tally.replies.len() as u64) < tally.sent && read_reply(&mut tally, 0) {}
            }
            tally
        });
        Peer {
            stop,
            sent,
            thread: Some(thread),
            events,
        }
    }

    fn request_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    fn join(&mut self) -> Tally {
        self.request_stop();
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if self.thread.is_some() && !std::thread::panicking() {
            self.join();
        } else {
            self.request_stop();
        }
    }
}

/// What the server made of one receive.
enum Served {
    /// A message of client `name`, its `n`.
    Got(String, u64),
    /// A message that belongs to no client's count (checked by the serving closure).
    Skipped,
    /// Nothing within the receive timeout.
    Nothing,
}

/// Per client name: the numbers delivered, in order.
#[derive(Default)]
struct Delivered(HashMap<String, Vec<u64>>);

impl Delivered {
    fn count(&self, name: &str) -> usize {
        self.0.get(name).map_or(0, Vec::len)
    }

    fn serve(
        &mut self,
        server: &mut SessionSocket,
        serve: &mut impl FnMut(&mut SessionSocket) -> Served,
    ) -> bool {
        match serve(server) {
            Served::Got(name, n) => {
                assert!(name == "kept" || name == "revoked", "a message from {name}");
                self.0.entry(name).or_default().push(n);
                true
            }
            Served::Skipped => true,
            Served::Nothing => false,
        }
    }
}

/// One revocation with two [`Peer`]s, `"kept"` and `"revoked"`, acting as `act` on `server`:
/// once each has 20 messages delivered, `revoke` narrows the policy (returning once it
/// answered `Ok`); the run goes on until the kept client has 200 more delivered. None of the
/// revoked client's is delivered after the `Ok`, its connection is closed and its
/// reconnection refused; every message of the kept client is delivered, in order (and, for
/// requesters, every reply reaches it).
fn peer_run(
    context: &zmq::Context,
    mut server: SessionSocket,
    act: Act,
    logins: (Login, Login),
    mut serve: impl FnMut(&mut SessionSocket) -> Served,
    revoke: impl FnOnce(&mut SessionSocket),
) {
    let endpoint = bind_tcp(&server);
    let replies = act == Act::Request;
    let mut kept = Peer::start(context, act, "kept", logins.0, &endpoint, replies);
    let mut revoked = Peer::start(context, act, "revoked", logins.1, &endpoint, false);
    let mut delivered = Delivered::default();
    let deadline = Instant::now() + PATIENCE;
    while delivered.count("kept") < 20 || delivered.count("revoked") < 20 {
        assert!(
            Instant::now() < deadline,
            "both clients never got 20 through"
        );
        assert!(
            delivered.serve(&mut server, &mut serve),
            "nothing received in time"
        );
    }
    // The server stops reading while the revoked client sends on.
    let last = *delivered.0["revoked"].last().unwrap();
    wait_count(&revoked.sent, last + 1 + UNREAD_AT_REVOCATION);
    revoke(&mut server);
    let before = delivered.count("revoked");
    let target = delivered.count("kept") + 200;
    while delivered.count("kept") < target {
        assert!(
            delivered.serve(&mut server, &mut serve),
            "the kept client stalled"
        );
    }
    assert_eq!(
        delivered.count("revoked"),
        before,
        "messages of the revoked session were delivered after the revocation's Ok"
    );
    assert!(
        saw(&revoked.events, zmq::SocketEvent::DISCONNECTED).is_some(),
        "the revoked client's connection was not closed"
    );
    assert_eq!(
        saw(&revoked.events, zmq::SocketEvent::HANDSHAKE_FAILED_AUTH),
        Some(400),
        "the revoked client's reconnection was not refused"
    );
    revoked.join();
    // The kept client stops; a requester finishes once it has every reply, served here.
    kept.request_stop();
    server.raw().set_rcvtimeo(100).unwrap();
    let deadline = Instant::now() + PATIENCE;
    while !kept.is_finished() {
        assert!(Instant::now() < deadline, "the kept client never finished");
        delivered.serve(&mut server, &mut serve);
    }
    let tally = kept.join();
    server.raw().set_rcvtimeo(2_000).unwrap();
    while (delivered.count("kept") as u64) < tally.sent {
        assert!(
            delivered.serve(&mut server, &mut serve),
            "the kept client lost messages: {} of {} delivered",
            delivered.count("kept"),
            tally.sent
        );
    }
    let all: Vec<u64> = (0..tally.sent).collect();
    assert_eq!(delivered.0["kept"], all, "the kept client's messages");
    if replies {
        assert_eq!(tally.replies, all, "the kept client's replies");
    }
    assert_eq!(delivered.count("revoked"), before);
}

fn curve_logins(server: &Keys, kept: Keys, revoked: &Keys) -> (Login, Login) {
    (
        Login::Curve(server.public, kept),
        Login::Curve(server.public, revoked.clone()),
    )
}

#[test]
fn router_delivers_no_revoked_message_and_refuses_sends_to_the_revoked_peer() {
    let (context, auth, server_keys, kept, revoked) = curve_setup();
    let server = ServerSocket::curve("global", server_keys.secret.clone())
        .build_sessions(&context, zmq::ROUTER)
        .unwrap();
    let routes: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
    let seen = Arc::clone(&routes);
    let serve = move |server: &mut SessionSocket| match server.recv_multipart(0) {
        Ok(parts) => {
            assert_eq!(parts.len(), 2, "routing id and body");
            let (name, n) = parse(&parts[1]);
            let id = parts[0].clone();
            seen.lock()
                .unwrap()
                .entry(name.clone())
                .or_insert(id.clone());
            server
                .send_multipart([id, format!("re {n}").into_bytes()], 0)
                .expect("a reply to an admitted peer");
            Served::Got(name, n)
        }
        Err(SessionError::Zmq(zmq::Error::EAGAIN)) => Served::Nothing,
        Err(error) => panic!("receive: {error}"),
    };
    let logins = curve_logins(&server_keys, kept, &revoked);
    peer_run(&context, server, Act::Request, logins, serve, |server| {
        auth.send(RemoveCurveKeys::new("global", [revoked.public]))
            .unwrap();
        let id = routes.lock().unwrap()["revoked"].clone();
        let sent = server.send_multipart([id, b"late".to_vec()], 0);
        assert!(
            matches!(sent, Err(SessionError::Revoked)),
            "a send to the revoked peer after the Ok: {sent:?}"
        );
    });
    assert_eq!(auth.stats().unwrap().sessions_ended, 1);
}

#[test]
fn rep_drops_a_revoked_request_and_goes_on_serving_the_other_client() {
    let (context, auth, server_keys, kept, revoked) = curve_setup();
    let mut server = ServerSocket::curve("global", server_keys.secret.clone())
        .build_sessions(&context, zmq::REP)
        .unwrap();
    let endpoint = bind_tcp(&server);
    let (kept_login, revoked_login) = curve_logins(&server_keys, kept, &revoked);
    let client = |login: &Login| {
        let socket = context.socket(zmq::REQ).unwrap();
        socket.set_linger(0).unwrap();
        socket.set_rcvtimeo(PATIENCE.as_millis() as i32).unwrap();
        login.apply(&socket);
        let events = watch(&context, &socket);
        socket.connect(&endpoint).unwrap();
        (socket, events)
    };
    let (kept_client, _kept_events) = client(&kept_login);
    let (revoked_client, revoked_events) = client(&revoked_login);
    let round_trip = |server: &mut SessionSocket, client: &zmq::Socket, text: &str| {
        client.send(text, 0).unwrap();
        let request = server.recv_multipart(0).expect("a request in time");
        assert_eq!(request, [text.as_bytes()], "the request served");
        server.send(format!("re {text}").as_str(), 0).unwrap();
        let reply = client.recv_bytes(0).expect("a reply in time");
        assert_eq!(reply, format!("re {text}").as_bytes());
    };
    // Both sessions are seen (bound) by the socket.
    round_trip(&mut server, &kept_client, "kept 0");
    round_trip(&mut server, &revoked_client, "revoked 0");
    // The revoked client's next request waits in the socket (the kept client is idle)...
    revoked_client.send("revoked 1", 0).unwrap();
    assert!(readable(&server), "the revoked request never arrived");
    // ...when its key is removed.
    auth.send(RemoveCurveKeys::new("global", [revoked.public]))
        .unwrap();
    // Its request is dropped, and the REP socket serves the kept client as before.
    for n in 1..=20 {
        round_trip(&mut server, &kept_client, &format!("kept {n}"));
    }
    let events = server.raw().get_events().unwrap();
    assert!(
        !events.contains(zmq::POLLIN),
        "the revoked request is still waiting: it was never read (and dropped)"
    );
    assert!(
        saw(&revoked_events, zmq::SocketEvent::DISCONNECTED).is_some(),
        "the revoked client's connection was not closed"
    );
    assert_eq!(
        saw(&revoked_events, zmq::SocketEvent::HANDSHAKE_FAILED_AUTH),
        Some(400),
        "the revoked client's reconnection was not refused"
    );
    assert_eq!(auth.stats().unwrap().sessions_ended, 1);
}

#[test]
fn dealer_delivers_no_message_of_a_removed_plain_user() {
    let (context, auth) = started();
    auth.configure_plain("global", [("kept", "pw"), ("revoked", "pw")])
        .unwrap();
    let server = ServerSocket::plain("global")
        .build_sessions(&context, zmq::DEALER)
        .unwrap();
    let logins = (Login::Plain("kept", "pw"), Login::Plain("revoked", "pw"));
    revocation_run_as(&context, server, zmq::DEALER, logins, None, || {
        let removal = RemovePlainUsers {
            domain: "global".into(),
            users: vec!["revoked".into()],
        };
        auth.send(removal).unwrap();
    });
}

#[test]
fn pull_delivers_no_message_of_a_null_session_from_a_denied_address() {
    let (context, auth) = started();
    let server = ServerSocket::null("global")
        .build_sessions(&context, zmq::PULL)
        .unwrap();
    let logins = (Login::Null, Login::Null);
    revocation_run_as(
        &context,
        server,
        zmq::PUSH,
        logins,
        Some("127.0.0.2"),
        || {
            auth.deny(["127.0.0.2"]).unwrap();
        },
    );
}

/// PAIR has one peer: once the revoked one's session ended, nothing more of it is delivered,
/// its connection ends, and the next peer (admitted) takes its place — which it can only do
/// once the socket has read through every message left of the revoked one.
#[test]
fn pair_delivers_nothing_more_of_its_revoked_peer_and_ends_its_connection() {
    let (context, auth, server_keys, kept, revoked) = curve_setup();
    let mut server = ServerSocket::curve("global", server_keys.secret.clone())
        .build_sessions(&context, zmq::PAIR)
        .unwrap();
    let endpoint = bind_tcp(&server);
    let (kept_login, revoked_login) = curve_logins(&server_keys, kept, &revoked);
    let mut revoked_peer = Sender::start_as(
        &context,
        zmq::PAIR,
        "revoked",
        revoked_login,
        &endpoint,
        None,
    );
    let next = |server: &mut SessionSocket| {
        let message = server.recv_msg(0).expect("a message in time");
        parse(&message)
    };
    let mut last = 0;
    for _ in 0..20 {
        let (name, n) = next(&mut server);
        assert_eq!(name, "revoked");
        last = n;
    }
    // The server stops reading while the revoked peer sends on.
    revoked_peer.wait_sent(last + 1 + UNREAD_AT_REVOCATION);
    auth.send(RemoveCurveKeys::new("global", [revoked.public]))
        .unwrap();
    assert!(
        revoked_peer.saw(zmq::SocketEvent::DISCONNECTED).is_some(),
        "the revoked peer's connection was not closed"
    );
    assert_eq!(
        revoked_peer.saw(zmq::SocketEvent::HANDSHAKE_FAILED_AUTH),
        Some(400),
        "the revoked peer's reconnection was not refused"
    );
    // Another peer may take the pair's one place only once the socket has read through what
    // is left of the revoked one's connection (libzmq ignores a second peer meanwhile: it
    // stays connected without a pipe). Each attempt's wait reads on; a peer that came too
    // early is replaced.
    server.raw().set_rcvtimeo(1_000).unwrap();
    let deadline = Instant::now() + PATIENCE;
    let mut kept_peer = loop {
        assert!(Instant::now() < deadline, "no other peer was ever served");
        let mut peer = Sender::start_as(
            &context,
            zmq::PAIR,
            "kept",
            kept_login.clone(),
            &endpoint,
            None,
        );
        match server.recv_msg(0) {
            Ok(message) => {
                assert_eq!(
                    parse(&message).0,
                    "kept",
                    "a message of the revoked peer was delivered after the revocation's Ok"
                );
                break peer;
            }
            Err(SessionError::Zmq(zmq::Error::EAGAIN)) => {
                peer.finish();
            }
            Err(error) => panic!("receive: {error}"),
        }
    };
    for _ in 0..50 {
        assert_eq!(next(&mut server).0, "kept");
    }
    revoked_peer.finish();
    kept_peer.finish();
}

/// Whether the tcp stream `stream` was shut down (a read returns end of file at once; an
/// intact stream with nothing to read would block).
fn shut_down(stream: &std::net::TcpStream) -> bool {
    use std::io::Read;
    stream.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    match (&*stream).read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => false,
        Err(error) => panic!("reading the bystander stream: {error}"),
    }
}

/// A revoked client's messages left unread when its connection closed; its descriptor number
/// is then reused by a connection that is no socket of this context (here a plain tcp stream
/// of the process). Reading the leftovers — bound before (`read_before`) or first seen only
/// now — drops them all and must leave the stream alone: a number read from a message is a
/// connection of this socket only while its monitor says so.
fn reuse_outside_run(read_before: bool) {
    let (context, auth, server_keys, _kept, revoked) = curve_setup();
    let mut server = ServerSocket::curve("global", server_keys.secret.clone())
        .build_sessions(&context, zmq::PULL)
        .unwrap();
    let endpoint = bind_tcp(&server);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let login = Login::Curve(server_keys.public, revoked.clone());
    for _attempt in 0..20 {
        let mut client = Sender::start(&context, "revoked", login.clone(), &endpoint, None);
        let revoked_fd: i32 = if read_before {
            let mut message = server.recv_msg(0).expect("a message in time");
            message.gets("__fd").unwrap().parse().unwrap()
        } else {
            assert!(client.saw(zmq::SocketEvent::HANDSHAKE_SUCCEEDED).is_some());
            // Its number, read from its first message (through the raw socket: the session
            // socket must first see this session after the revocation).
            let mut message = server.raw().recv_msg(0).expect("a message in time");
            message.gets("__fd").unwrap().parse().unwrap()
        };
        client.wait_sent(UNREAD_AT_REVOCATION);
        client.finish();
        drop(client);
        // The server closes its end of the connection; a stream of the process may then get
        // its number (asserted, else another attempt). Streams on lower free numbers are held
        // meanwhile, so that the number is the lowest free one.
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut held = Vec::new();
        let bystander = loop {
            let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (accepted, _) = listener.accept().unwrap();
            let fd = |s: &std::net::TcpStream| std::os::unix::io::AsRawFd::as_raw_fd(s);
            if fd(&stream) == revoked_fd {
                break Some((stream, accepted));
            }
            if fd(&accepted) == revoked_fd {
                break Some((accepted, stream));
            }
            if Instant::now() > deadline {
                break None;
            }
            if fd(&stream) < revoked_fd || fd(&accepted) < revoked_fd {
                held.push((stream, accepted));
            } else {
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        drop(held);
        let Some((bystander, _its_peer)) = bystander else {
            continue;
        };
        assert!(
            readable(&server),
            "no message of the revoked client was left"
        );
        auth.send(RemoveCurveKeys::new("global", [revoked.public]))
            .unwrap();
        match server.recv_msg(zmq::DONTWAIT) {
            Err(SessionError::Zmq(zmq::Error::EAGAIN)) => {}
            Ok(_) => panic!("a revoked session's message was delivered after the Ok"),
            Err(error) => panic!("receive: {error}"),
        }
        assert!(
            !shut_down(&bystander),
            "a stream that reused the revoked connection's number was shut down"
        );
        return;
    }
    panic!("the descriptor number was never reused in 20 attempts");
}

#[test]
fn leftovers_of_a_bound_session_whose_connection_went_are_dropped_after_a_revocation_and_its_reused_number_is_left_alone(
) {
    reuse_outside_run(true);
}

#[test]
fn leftovers_first_seen_after_a_revocation_leave_their_reused_number_alone() {
    reuse_outside_run(false);
}

/// XPUB: subscriptions carry the session's properties, so a revoked subscriber's later
/// subscribe and unsubscribe messages are never delivered. (When a subscriber's connection
/// ends, libzmq itself queues the unsubscriptions of the topics it still had: those carry no
/// properties — they are libzmq's, not the peer's — and pass as in-process messages do.)
#[test]
fn xpub_delivers_no_subscription_of_a_revoked_subscriber() {
    let (context, auth, server_keys, kept, revoked) = curve_setup();
    let server = ServerSocket::curve("global", server_keys.secret.clone())
        .build_sessions(&context, zmq::XPUB)
        .unwrap();
    let unmarked = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&unmarked);
    let serve = move |server: &mut SessionSocket| match server.recv_msg(0) {
        Ok(mut message) => {
            let marked = message.gets(MARK_PROPERTY).is_some();
            let (&op, topic) = message.split_first().expect("a subscription has a byte");
            let (name, k) = parse(topic);
            if !marked {
                assert_eq!(op, 0, "an unmarked subscription to {name} {k}");
                counted.fetch_add(1, Ordering::Relaxed);
                return Served::Skipped;
            }
            assert!(op == 0 || op == 1, "not a subscription: {op}");
            // Operation k subscribed to "<name> k", operation k + 1 unsubscribed from it.
            Served::Got(name, if op == 1 { k } else { k + 1 })
        }
        Err(SessionError::Zmq(zmq::Error::EAGAIN)) => Served::Nothing,
        Err(error) => panic!("receive: {error}"),
    };
    let logins = curve_logins(&server_keys, kept, &revoked);
    peer_run(&context, server, Act::Subscribe, logins, serve, |_| {
        auth.send(RemoveCurveKeys::new("global", [revoked.public]))
            .unwrap();
    });
    assert!(
        unmarked.load(Ordering::Relaxed) <= 2,
        "more unsubscriptions of libzmq's own than the two clients' last topics"
    );
}

/// A PULL `SessionSocket` bound on inproc and tcp: an in-process PUSH's messages are delivered
/// by default and dropped with `InprocPeers::Drop`; a tcp peer is decided by its mark either
/// way.
#[test]
fn inproc_peers_are_delivered_by_default_and_dropped_when_asked() {
    let (context, _auth) = started();
    for (inproc, delivered) in [(InprocPeers::Deliver, true), (InprocPeers::Drop, false)] {
        let mut server = ServerSocket::null("global")
            .build_sessions_with(&context, zmq::PULL, inproc)
            .unwrap();
        let inproc_endpoint = format!("inproc://session-sockets-{inproc:?}");
        server.bind(&inproc_endpoint).unwrap();
        let tcp_endpoint = bind_tcp(&server);
        let local = context.socket(zmq::PUSH).unwrap();
        local.set_linger(0).unwrap();
        local.connect(&inproc_endpoint).unwrap();
        local.send("inproc 0", 0).unwrap();
        assert!(readable(&server), "the in-process message never arrived");
        match server.recv_msg(zmq::DONTWAIT) {
            Ok(message) if delivered => assert_eq!(&message[..], b"inproc 0"),
            Err(SessionError::Zmq(zmq::Error::EAGAIN)) if !delivered => {}
            other => panic!("{inproc:?}: {other:?}"),
        }
        // A tcp peer (NULL, admitted by the authenticator) is delivered either way, and with
        // `Drop` never an in-process message sent meanwhile.
        local.send("inproc 1", 0).unwrap();
        let remote = context.socket(zmq::PUSH).unwrap();
        remote.set_linger(0).unwrap();
        remote.connect(&tcp_endpoint).unwrap();
        remote.send("tcp 0", 0).unwrap();
        let mut seen = Vec::new();
        while !seen.contains(&"tcp 0".to_owned()) {
            let message = server.recv_msg(0).expect("the tcp peer's message in time");
            seen.push(String::from_utf8(message.to_vec()).unwrap());
        }
        if !delivered {
            assert_eq!(seen, ["tcp 0"], "{inproc:?}");
        }
    }
}

/// A ZAP handler of the test's own on a context: admits every request with `200` and
/// `metadata`, which carries no mark of this process's authenticator ("a handler swapped
/// out").
struct SwappedHandler {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<usize>>,
}

impl SwappedHandler {
    fn start(context: &zmq::Context, metadata: Vec<u8>) -> SwappedHandler {
        let socket = context.socket(zmq::ROUTER).unwrap();
        socket.set_linger(0).unwrap();
        socket.bind(actix_zap::zap::ZAP_ENDPOINT).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut answered = 0;
            while !stopping.load(Ordering::Relaxed) {
                if socket.poll(zmq::POLLIN, 20).unwrap() == 0 {
                    continue;
                }
                // routing id, delimiter, version, request id, domain, address, identity, ...
                let request = socket.recv_multipart(0).unwrap();
                let reply: [&[u8]; 8] = [
                    &request[0],
                    b"",
                    b"1.0",
                    &request[3],
                    b"200",
                    b"OK",
                    b"swapped",
                    &metadata,
                ];
                socket.send_multipart(reply, 0).unwrap();
                answered += 1;
            }
            answered
        });
        SwappedHandler {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops; how many requests it admitted.
    fn finish(&mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().map_or(0, |t| t.join().unwrap())
    }
}

impl Drop for SwappedHandler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// ZMTP metadata: one property.
fn property(name: &str, value: &str) -> Vec<u8> {
    let mut bytes = vec![name.len() as u8];
    bytes.extend_from_slice(name.as_bytes());
    bytes.extend_from_slice(&(value.len() as u32).to_be_bytes());
    bytes.extend_from_slice(value.as_bytes());
    bytes
}

/// A NULL tcp client admitted by a swapped-in handler that answers with `metadata`: none of
/// its messages is delivered, and its connection is ended (its own monitor sees it).
fn swapped_handler_run(metadata: Vec<u8>) {
    init_logging();
    let context = zmq::Context::new();
    let mut handler = SwappedHandler::start(&context, metadata);
    let mut server = ServerSocket::null("global")
        .build_sessions(&context, zmq::PULL)
        .unwrap();
    let endpoint = bind_tcp(&server);
    let mut client = Sender::start(&context, "unmarked", Login::Null, &endpoint, None);
    assert!(
        client.saw(zmq::SocketEvent::HANDSHAKE_SUCCEEDED).is_some(),
        "the swapped-in handler did not admit the client"
    );
    assert!(readable(&server), "no message of the client arrived");
    let deadline = Instant::now() + PATIENCE;
    loop {
        assert!(
            Instant::now() < deadline,
            "the unmarked client's connection was never ended"
        );
        match server.recv_msg(zmq::DONTWAIT) {
            Err(SessionError::Zmq(zmq::Error::EAGAIN)) => {}
            Ok(message) => panic!("an unmarked message was delivered: {message:?}"),
            Err(error) => panic!("receive: {error}"),
        }
        let event = client.events.recv_timeout(Duration::from_millis(10));
        if matches!(event, Ok((e, _)) if e == zmq::SocketEvent::DISCONNECTED as u16) {
            break;
        }
    }
    client.finish();
    assert!(handler.finish() >= 1);
}

#[test]
fn a_session_admitted_by_another_handler_is_never_delivered_and_its_connection_ends() {
    swapped_handler_run(Vec::new());
}

#[test]
fn a_forged_mark_is_never_delivered_and_its_connection_ends() {
    let forged = "1;s=1;d=global;m=NULL;n=;a=127.0.0.1;t=0;g=0;x=0;\
                  f=00000000000000000000000000000000;mac=00000000000000000000000000000000";
    swapped_handler_run(property(MARK_PROPERTY, forged));
}

/// One message through an async receive (`recv_multipart_async` or `recv_msg_async`),
/// bounded.
async fn next_async(server: &mut SessionSocket, multipart: bool) -> (String, u64) {
    let body = if multipart {
        let receive = tokio::time::timeout(PATIENCE, server.recv_multipart_async());
        let mut parts = receive.await.expect("a message in time").unwrap();
        assert_eq!(parts.len(), 1);
        parts.remove(0)
    } else {
        let receive = tokio::time::timeout(PATIENCE, server.recv_msg_async());
        receive.await.expect("a message in time").unwrap().to_vec()
    };
    parse(&body)
}

/// Inside an actix System, with the actix `Authenticator` on the same thread: the async
/// receives deliver both clients' messages, and after a revocation none of the revoked one's.
#[actix::test]
async fn async_receives_deliver_no_message_of_a_revoked_session() {
    init_logging();
    let context = zmq::Context::new();
    let auth = actix_zap::Authenticator::start(&context).unwrap();
    let (server_keys, kept, revoked) = (Keys::generate(), Keys::generate(), Keys::generate());
    let keys = [kept.public, revoked.public].into_iter().collect();
    auth.configure_curve_keys("global", keys).await.unwrap();
    let mut server = ServerSocket::curve("global", server_keys.secret.clone())
        .build_sessions(&context, zmq::PULL)
        .unwrap();
    let endpoint = bind_tcp(&server);
    let (kept_login, revoked_login) = curve_logins(&server_keys, kept, &revoked);
    let mut kept_client = Sender::start(&context, "kept", kept_login, &endpoint, None);
    let revoked_client = Sender::start(&context, "revoked", revoked_login, &endpoint, None);
    let mut delivered: HashMap<String, Vec<u64>> = HashMap::new();
    // Receives alternate between the multipart and the single-frame one.
    let mut turn = 0u64;
    let mut multipart = move || {
        turn += 1;
        turn.is_multiple_of(2)
    };
    let count = |d: &HashMap<String, Vec<u64>>, name: &str| d.get(name).map_or(0, Vec::len);
    while count(&delivered, "kept") < 20 || count(&delivered, "revoked") < 20 {
        let (name, n) = next_async(&mut server, multipart()).await;
        delivered.entry(name).or_default().push(n);
    }
    // The socket stops reading while the revoked client sends on.
    let last = *delivered["revoked"].last().unwrap();
    let deadline = Instant::now() + PATIENCE;
    while revoked_client.sent() < last + 1 + UNREAD_AT_REVOCATION {
        assert!(
            Instant::now() < deadline,
            "the revoked client stopped sending"
        );
        actix::clock::sleep(Duration::from_millis(1)).await;
    }
    auth.send(RemoveCurveKeys::new("global", [revoked.public]))
        .await
        .unwrap();
    let before = count(&delivered, "revoked");
    let target = count(&delivered, "kept") + 200;
    while count(&delivered, "kept") < target {
        let (name, n) = next_async(&mut server, multipart()).await;
        delivered.entry(name).or_default().push(n);
    }
    assert_eq!(
        count(&delivered, "revoked"),
        before,
        "messages of the revoked session were delivered after the revocation's Ok"
    );
    // The client's own monitor, waited for off the actix thread (the authenticator refuses
    // the reconnection on it).
    let (disconnected, refused) = tokio::task::spawn_blocking(move || {
        let mut client = revoked_client;
        let seen = (
            client.saw(zmq::SocketEvent::DISCONNECTED),
            client.saw(zmq::SocketEvent::HANDSHAKE_FAILED_AUTH),
        );
        client.finish();
        seen
    })
    .await
    .unwrap();
    assert!(
        disconnected.is_some(),
        "the revoked client's connection was not closed"
    );
    assert_eq!(
        refused,
        Some(400),
        "the revoked client's reconnection was not refused"
    );
    let sent = kept_client.finish();
    while (count(&delivered, "kept") as u64) < sent {
        let (name, n) = next_async(&mut server, multipart()).await;
        delivered.entry(name).or_default().push(n);
    }
    assert_eq!(delivered["kept"], (0..sent).collect::<Vec<_>>());
    assert_eq!(count(&delivered, "revoked"), before);
    auth.stop().await;
}

/// What a revocation shows: a decision event for the ended session (who, why, how long it
/// lived), `Stats::sessions_ended` and `sessions_bound`, and `inspect().sessions` per domain.
#[test]
fn a_revocation_is_observable_as_an_event_counters_and_bound_sessions_per_domain() {
    let started_at = Instant::now();
    let (context, auth, server_keys, kept, revoked) = curve_setup();
    let bystander = Keys::generate();
    let other_keys = [bystander.public].into_iter().collect();
    auth.configure_curve_keys("other", other_keys).unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    auth.on_decision(move |event| sink.lock().unwrap().push(event.clone()))
        .unwrap();
    let mut global = ServerSocket::curve("global", server_keys.secret.clone())
        .build_sessions(&context, zmq::PULL)
        .unwrap();
    let mut other = ServerSocket::curve("other", server_keys.secret.clone())
        .build_sessions(&context, zmq::PULL)
        .unwrap();
    let (global_endpoint, other_endpoint) = (bind_tcp(&global), bind_tcp(&other));
    let login = |keys: &Keys| Login::Curve(server_keys.public, keys.clone());
    let _kept = Sender::start(&context, "kept", login(&kept), &global_endpoint, None);
    let _revoked = Sender::start(&context, "revoked", login(&revoked), &global_endpoint, None);
    let _bystander = Sender::start(&context, "other", login(&bystander), &other_endpoint, None);
    // Each session is bound at its first message on its socket.
    let mut names = std::collections::BTreeSet::new();
    while names.len() < 2 {
        let message = global.recv_msg(0).expect("a message in time");
        names.insert(parse(&message).0);
    }
    let message = other.recv_msg(0).expect("a message in time");
    assert_eq!(parse(&message).0, "other");
    let per_domain = |pairs: &[(&str, usize)]| {
        (pairs.iter())
            .map(|(domain, n)| (domain.to_string(), *n))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(
        auth.inspect().unwrap().sessions,
        per_domain(&[("global", 2), ("other", 1)])
    );
    let stats = auth.stats().unwrap();
    assert_eq!((stats.sessions_bound, stats.sessions_ended), (3, 0));

    auth.send(RemoveCurveKeys::new("global", [revoked.public]))
        .unwrap();
    // All of it is there once the removal answered.
    assert_eq!(
        auth.inspect().unwrap().sessions,
        per_domain(&[("global", 1), ("other", 1)])
    );
    let stats = auth.stats().unwrap();
    assert_eq!((stats.sessions_bound, stats.sessions_ended), (2, 1));
    let ended: Vec<_> = (events.lock().unwrap().iter())
        .filter(|event| event.reason.starts_with("Session ended:"))
        .cloned()
        .collect();
    assert_eq!(ended.len(), 1, "{ended:?}");
    let event = &ended[0];
    assert_eq!(event.client_key, Some(revoked.public));
    assert_eq!(event.user_id, revoked.public.to_z85());
    assert_eq!(event.domain, "global");
    assert_eq!(event.mechanism, actix_zap::messages::EventMechanism::Curve);
    assert_eq!(event.status, actix_zap::zap::StatusCode::Denied);
    let lived = event
        .lived
        .expect("an ended session says how long it lived");
    assert!(
        lived <= started_at.elapsed(),
        "lived {lived:?}, longer than the test has run"
    );
    assert!(
        event.reason.contains("revoked"),
        "the reason names the revocation: {}",
        event.reason
    );
}

/// A ROUTER peer with a fixed routing id is revoked, then admitted again: sends to its id are
/// refused while its session is ended, and reach its new session once it reconnected.
#[test]
fn router_serves_a_readmitted_peer_under_the_same_routing_id() {
    let (context, auth, server_keys, kept, revoked) = curve_setup();
    let mut server = ServerSocket::curve("global", server_keys.secret.clone())
        .build_sessions(&context, zmq::ROUTER)
        .unwrap();
    server.raw().set_router_mandatory(true).unwrap();
    let endpoint = bind_tcp(&server);
    let client = context.socket(zmq::DEALER).unwrap();
    client.set_linger(0).unwrap();
    client.set_rcvtimeo(PATIENCE.as_millis() as i32).unwrap();
    client.set_identity(b"client-a").unwrap();
    Login::Curve(server_keys.public, revoked.clone()).apply(&client);
    let events = watch(&context, &client);
    client.connect(&endpoint).unwrap();
    let round_trip = |server: &mut SessionSocket, text: &str| {
        client.send(text, 0).unwrap();
        let request = server.recv_multipart(0).expect("a request in time");
        assert_eq!(request, [&b"client-a"[..], text.as_bytes()]);
        let reply = [b"client-a".to_vec(), format!("re {text}").into_bytes()];
        server
            .send_multipart(reply, 0)
            .expect("a reply to an admitted peer");
        let reply = client.recv_bytes(0).expect("the reply in time");
        assert_eq!(reply, format!("re {text}").as_bytes());
    };
    round_trip(&mut server, "first 0");
    auth.send(RemoveCurveKeys::new("global", [revoked.public]))
        .unwrap();
    let refused = server.send_multipart([&b"client-a"[..], b"late"], 0);
    assert!(matches!(refused, Err(SessionError::Revoked)), "{refused:?}");
    assert!(saw(&events, zmq::SocketEvent::DISCONNECTED).is_some());
    assert_eq!(
        saw(&events, zmq::SocketEvent::HANDSHAKE_FAILED_AUTH),
        Some(400)
    );
    // libzmq ignores a new peer whose routing id is still held by an old pipe (one the
    // application has not read through). The old one's end is read, and the raw socket (with
    // ROUTER_MANDATORY) shows when the id is free.
    let deadline = Instant::now() + PATIENCE;
    loop {
        match server.recv_multipart(zmq::DONTWAIT) {
            Err(SessionError::Zmq(zmq::Error::EAGAIN)) => {}
            other => panic!("the revoked peer's leftovers: {other:?}"),
        }
        match server.raw().send_multipart([&b"client-a"[..], b"probe"], 0) {
            Err(zmq::Error::EHOSTUNREACH) => break,
            Err(zmq::Error::EAGAIN) => {}
            other => panic!("probing the old pipe: {other:?}"),
        }
        assert!(Instant::now() < deadline, "the old pipe never went");
        std::thread::sleep(Duration::from_millis(1));
    }
    // Admitted again. (libzmq gives up an endpoint whose handshake was refused, and a DEALER
    // connects once per endpoint: the client disconnects it and connects anew.) The same id
    // routes to its new session.
    let keys = [kept.public, revoked.public].into_iter().collect();
    auth.configure_curve_keys("global", keys).unwrap();
    client.disconnect(&endpoint).unwrap();
    client.connect(&endpoint).unwrap();
    assert!(saw(&events, zmq::SocketEvent::HANDSHAKE_SUCCEEDED).is_some());
    round_trip(&mut server, "again 1");
}

/// Connections to `port` on 127.0.0.1 in state ESTABLISHED, from the kernel's table (both
/// ends of each: the server's and the client's).
fn established_on(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let port = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 3
                && fields[3] == "01"
                && (fields[1].ends_with(&port) || fields[2].ends_with(&port))
        })
        .count()
}

/// Waits (bounded) until no connection to the tcp `endpoint` is established any more.
fn wait_all_closed(endpoint: &str) {
    let port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    let deadline = Instant::now() + PATIENCE;
    while established_on(port) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(established_on(port), 0, "a client's connection stays up");
}

/// A client of `socket_type` that connects as `login` says (and, given one, with `identity`
/// as its routing id), is admitted, sends `"<name> <n>"` for `n` in `0..count` and leaves:
/// its socket closes with a linger, so the messages are sent and then the connection ends.
fn send_and_leave(
    context: &zmq::Context,
    endpoint: &str,
    socket_type: zmq::SocketType,
    login: &Login,
    identity: Option<&[u8]>,
    (name, count): (&str, u64),
) {
    let client = context.socket(socket_type).unwrap();
    client.set_linger(PATIENCE.as_millis() as i32).unwrap();
    client.set_sndhwm(0).unwrap();
    if let Some(identity) = identity {
        client.set_identity(identity).unwrap();
    }
    login.apply(&client);
    let events = watch(context, &client);
    client.connect(endpoint).unwrap();
    assert!(saw(&events, zmq::SocketEvent::HANDSHAKE_SUCCEEDED).is_some());
    for n in 0..count {
        client.send(format!("{name} {n}").as_str(), 0).unwrap();
    }
}

/// A client that sends and leaves before the server reads: its session is bound to no
/// descriptor at its first message (the connection is gone), and no disconnect will ever name
/// it. Such sessions are delivered, held a second, and then forgotten (at the next first
/// sight), so the sessions bound do not grow with every client that came and went.
#[test]
fn sessions_of_clients_gone_before_their_first_message_are_forgotten() {
    const CLIENTS: usize = 20;
    let (context, auth) = started();
    let mut server = ServerSocket::null("global")
        .build_sessions(&context, zmq::PULL)
        .unwrap();
    let endpoint = bind_tcp(&server);
    for n in 0..CLIENTS {
        let name = format!("gone{n}");
        send_and_leave(
            &context,
            &endpoint,
            zmq::PUSH,
            &Login::Null,
            None,
            (&name, 1),
        );
    }
    wait_all_closed(&endpoint);

    let mut delivered: Vec<String> = (0..CLIENTS)
        .map(|_| parse(&server.recv_msg(0).unwrap()).0)
        .collect();
    delivered.sort_unstable();
    let mut sent: Vec<String> = (0..CLIENTS).map(|n| format!("gone{n}")).collect();
    sent.sort_unstable();
    assert_eq!(delivered, sent);
    // Bound to no descriptor (a session bound to one whose connection went is not counted):
    // before, these stayed on the board until the socket closed.
    assert_eq!(auth.stats().unwrap().sessions_bound, CLIENTS);

    std::thread::sleep(Duration::from_millis(1_100));
    let staying = context.socket(zmq::PUSH).unwrap();
    staying.set_linger(0).unwrap();
    staying.connect(&endpoint).unwrap();
    staying.send("staying 0", 0).unwrap();
    assert_eq!(parse(&server.recv_msg(0).unwrap()), ("staying".into(), 0));
    assert_eq!(auth.stats().unwrap().sessions_bound, 1);
    assert_eq!(auth.inspect().unwrap().sessions.get("global"), Some(&1));
}

/// Forgetting such a session never lets a message of it through: the socket forgets it
/// first, and reads its next message as a first sight, judged by every narrowing since its
/// admission. Here a key removed after its session was forgotten keeps the rest of its
/// messages out.
#[test]
fn a_forgotten_session_is_judged_again_at_its_next_message() {
    // Enough that the socket attaches the staying client's connection before it has read
    // them all (while messages wait, libzmq looks at new connections every 100 messages).
    const LEFT: u64 = 1_000;
    let (context, auth, server_keys, kept, revoked) = curve_setup();
    let mut server = ServerSocket::curve("global", server_keys.secret.clone())
        .build_sessions(&context, zmq::PULL)
        .unwrap();
    server.raw().set_rcvhwm(0).unwrap();
    let endpoint = bind_tcp(&server);
    let (staying_login, leaving_login) = curve_logins(&server_keys, kept, &revoked);
    let leaving = ("leaving", LEFT);
    send_and_leave(
        &context,
        &endpoint,
        zmq::PUSH,
        &leaving_login,
        None,
        leaving,
    );
    wait_all_closed(&endpoint);
    assert_eq!(parse(&server.recv_msg(0).unwrap()), ("leaving".into(), 0));

    std::thread::sleep(Duration::from_millis(1_100));
    let staying = context.socket(zmq::PUSH).unwrap();
    staying.set_linger(0).unwrap();
    staying_login.apply(&staying);
    let events = watch(&context, &staying);
    staying.connect(&endpoint).unwrap();
    assert!(saw(&events, zmq::SocketEvent::HANDSHAKE_SUCCEEDED).is_some());
    staying.send("staying 0", 0).unwrap();
    // Queued beside what is left of the leaving session's (the socket takes turns).
    std::thread::sleep(Duration::from_millis(100));
    let mut leaving_read = 1;
    loop {
        match parse(&server.recv_msg(0).unwrap()) {
            (name, _) if name == "leaving" => leaving_read += 1,
            (_, n) => {
                assert_eq!(n, 0);
                break;
            }
        }
    }
    assert!(
        leaving_read < LEFT,
        "nothing of the leaving session was left to read"
    );
    // The staying session's first sight forgot the leaving one.
    assert_eq!(auth.stats().unwrap().sessions_bound, 1);

    auth.send(RemoveCurveKeys::new("global", [revoked.public]))
        .unwrap();
    staying.send("staying 1", 0).unwrap();
    // Every message of the leaving session left is dropped on the way to this one.
    assert_eq!(parse(&server.recv_msg(0).unwrap()), ("staying".into(), 1));
    let stats = auth.stats().unwrap();
    assert_eq!((stats.sessions_ended, stats.sessions_bound), (1, 1));
}

/// A NULL client of the test's own that sends `count` messages `"<name> <n>"` at once, with
/// its own monitor, and never reconnects (a reconnection would take descriptor numbers); its
/// socket is made now and connected by [`connect`](Self::connect).
struct Burst {
    socket: zmq::Socket,
    events: Events,
}

impl Burst {
    fn new(context: &zmq::Context) -> Burst {
        let socket = context.socket(zmq::PUSH).unwrap();
        socket.set_linger(0).unwrap();
        socket.set_sndhwm(0).unwrap();
        socket.set_reconnect_ivl(-1).unwrap();
        let events = watch(context, &socket);
        Burst { socket, events }
    }

    fn connect(&self, endpoint: &str, name: &str, count: u64) {
        self.socket.connect(endpoint).unwrap();
        assert!(saw(&self.events, zmq::SocketEvent::HANDSHAKE_SUCCEEDED).is_some());
        for n in 0..count {
            self.socket.send(format!("{name} {n}").as_str(), 0).unwrap();
        }
    }
}

/// Makes `fd` the number the process's next connection *accepts*: holds every free number
/// below it but the highest (which the connecting side takes first). `None` if `fd` is not
/// free, or no number below it is.
fn make_next_accepted(fd: i32) -> Option<Vec<std::fs::File>> {
    use std::os::unix::io::AsRawFd;
    let mut held = Vec::new();
    loop {
        let file = std::fs::File::open("/dev/null").unwrap();
        match file.as_raw_fd() {
            n if n < fd => held.push(file),
            n if n == fd => {
                drop(file);
                held.pop()?;
                return Some(held);
            }
            _ => return None,
        }
    }
}

/// Whether `events` told a disconnect among those waiting now.
fn disconnected_now(events: &Events) -> bool {
    disconnected_within(events, Duration::ZERO)
}

/// Whether `events` tells a disconnect within `wait`.
fn disconnected_within(events: &Events, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok((event, _)) if event == zmq::SocketEvent::DISCONNECTED as u16 => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}

/// One attempt of the test below: `Err` says why it proved nothing (the number was not
/// reused, or nothing was left to read after the reuse).
fn unmarked_leftovers_run() -> Result<(), String> {
    let context = zmq::Context::new();
    let mut handler = SwappedHandler::start(&context, Vec::new());
    let mut server = ServerSocket::null("global")
        .build_sessions(&context, zmq::PULL)
        .unwrap();
    let endpoint = bind_tcp(&server);
    // Many more than libzmq reads before it looks at new connections (every 100 messages), so
    // that some are left when the admitted clients' connections are attached; fewer than the
    // socket's receive bound (1,000), past which libzmq would stop reading the connection and
    // so not see it end.
    let unmarked = Burst::new(&context);
    unmarked.connect(&endpoint, "unmarked", 600);
    // Its number, from a message read past the check.
    let target: i32 = (server.raw().recv_msg(0).unwrap().gets("__fd").unwrap())
        .parse()
        .unwrap();
    handler.finish();
    drop(handler);
    // This process's authenticator from now on (the swapped one's endpoint frees soon).
    let deadline = Instant::now() + PATIENCE;
    let _auth = loop {
        match actix_zap::ThreadAuthenticator::start(&context) {
            Ok(auth) => break auth,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(error) => panic!("the authenticator cannot start: {error}"),
        }
    };
    // An admitted client's message, read after the unmarked connection's next one, which
    // ends it: what is left of it stays queued.
    let admitted = Burst::new(&context);
    admitted.connect(&endpoint, "admitted", 3);
    std::thread::sleep(Duration::from_millis(50));
    let mut delivered = Vec::new();
    loop {
        delivered.push(parse(&server.recv_msg(0).unwrap()));
        if disconnected_within(&unmarked.events, Duration::from_millis(200)) {
            break;
        }
        assert!(delivered.len() < 3, "the unmarked connection was not ended");
    }
    drop(unmarked);
    let dropped_before = server.messages_dropped();

    // A later admitted connection gets the unmarked one's number, if it can be arranged: once
    // libzmq has closed the server's end (bounded; else the attempt says the number is taken).
    let reuser = Burst::new(&context);
    let closed_by = Instant::now() + Duration::from_secs(1);
    let open = || std::fs::read_link(format!("/proc/self/fd/{target}")).is_ok();
    while open() && Instant::now() < closed_by {
        std::thread::sleep(Duration::from_millis(5));
    }
    let Some(held) = make_next_accepted(target) else {
        let what = std::fs::read_link(format!("/proc/self/fd/{target}"));
        return Err(format!(
            "number {target} taken ({what:?}) or none free below it"
        ));
    };
    reuser.connect(&endpoint, "reuser", 2);
    drop(held);
    let mut reuser_fd = None;
    while reuser_fd.is_none() {
        let mut message = server.recv_msg(0).expect("the reuser's message in time");
        let (name, n) = parse(&message);
        if name == "reuser" {
            reuser_fd = message.gets("__fd").map(|fd| fd.parse::<i32>().unwrap());
        } else {
            delivered.push((name, n));
        }
    }
    // Another attempt unless the number was reused and leftovers were read after it.
    if reuser_fd != Some(target) {
        return Err(format!(
            "the later connection got {reuser_fd:?}, not {target}"
        ));
    }
    if server.messages_dropped() == dropped_before {
        return Err(format!(
            "no leftover was left after the reuse ({dropped_before} dropped before)"
        ));
    }
    assert!(
        delivered.iter().all(|(name, _)| name == "admitted"),
        "{delivered:?}"
    );
    // The reuser's connection stays up: a message it sends now, after the leftovers were
    // read, still comes (it does not reconnect), and it saw no disconnect.
    assert_eq!(parse(&server.recv_msg(0).unwrap()), ("reuser".into(), 1));
    let sent = reuser.socket.send("reuser 2", zmq::DONTWAIT);
    assert!(sent.is_ok(), "the reuser has no connection: {sent:?}");
    assert_eq!(parse(&server.recv_msg(0).unwrap()), ("reuser".into(), 2));
    assert!(
        !disconnected_now(&reuser.events),
        "the connection that reused the unmarked one's number was ended"
    );
    Ok(())
}

/// A connection admitted by another handler is ended at its first message; what is left of it
/// and read after a later admitted connection of the socket got its number is dropped, and
/// that later connection stays up (the leftovers are told by their metadata, not their
/// number). Retries until the number is reused and leftovers are read after it (never passes
/// vacuously). In a child process: it arranges descriptor numbers, which other tests of the
/// process would take meanwhile.
#[test]
fn leftovers_of_an_ended_unmarked_connection_leave_its_reused_number_alone() {
    crate::common::child::isolated(
        "session_sockets::leftovers_of_an_ended_unmarked_connection_leave_its_reused_number_alone",
        &[],
        || {
            init_logging();
            let mut why = Vec::new();
            for _attempt in 0..20 {
                match unmarked_leftovers_run() {
                    Ok(()) => return,
                    Err(reason) => why.push(reason),
                }
            }
            panic!("20 attempts proved nothing: {why:#?}");
        },
    );
}

/// A ROUTER socket forgets no session: its application may still send to a peer it read from,
/// and once that peer is revoked the send must be refused — also when the peer's first message
/// was read after its connection went (bound to no descriptor, which other socket types
/// forget a second later).
#[test]
fn a_router_still_refuses_sends_to_a_peer_revoked_after_its_connection_went() {
    let (context, auth, server_keys, kept, revoked) = curve_setup();
    let mut server = ServerSocket::curve("global", server_keys.secret.clone())
        .build_sessions(&context, zmq::ROUTER)
        .unwrap();
    let endpoint = bind_tcp(&server);
    let (staying_login, leaving_login) = curve_logins(&server_keys, kept, &revoked);
    let (leaving, identity) = (("leaving", 1), Some(&b"leaving"[..]));
    send_and_leave(
        &context,
        &endpoint,
        zmq::DEALER,
        &leaving_login,
        identity,
        leaving,
    );
    wait_all_closed(&endpoint);
    let frames = server.recv_multipart(0).unwrap();
    assert_eq!(frames, [b"leaving".to_vec(), b"leaving 0".to_vec()]);

    // Another session's first sight, past the time a PULL socket would forget the first.
    std::thread::sleep(Duration::from_millis(1_100));
    let staying = context.socket(zmq::DEALER).unwrap();
    staying.set_linger(0).unwrap();
    staying_login.apply(&staying);
    staying.connect(&endpoint).unwrap();
    staying.send("staying 0", 0).unwrap();
    let frames = server.recv_multipart(0).unwrap();
    assert_eq!(frames[1], b"staying 0");
    assert_eq!(auth.stats().unwrap().sessions_bound, 2);

    auth.send(RemoveCurveKeys::new("global", [revoked.public]))
        .unwrap();
    assert!(matches!(
        server.send_multipart([&b"leaving"[..], b"re 0"], 0),
        Err(SessionError::Revoked)
    ));
    server
        .send_multipart([frames[0].as_slice(), b"re 0"], 0)
        .unwrap();
    assert_eq!(staying.recv_bytes(0).unwrap(), b"re 0");
}
