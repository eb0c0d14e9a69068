//! Revocation that ends sessions: a client sending every millisecond is revoked while its
//! session is open; its messages are delivered before the revocation's `Ok` and none after,
//! its connection is closed (its own monitor sees the disconnect), its reconnection is refused,
//! and another client, not revoked, has every message of the run delivered.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix_zap::messages::{RemoveCurveKeys, RemovePlainUsers};
use actix_zap::sessions::SessionSocket;
use actix_zap::{ServerSocket, ThreadAuthenticator};

use crate::common::{cheap_hash, started, Keys, PATIENCE};

/// A client that sends `"<name> <n>"` every millisecond until told to stop, with a monitor of
/// its own socket.
pub(crate) struct Sender {
    stop: Arc<AtomicBool>,
    /// Messages sent so far.
    sent: Arc<AtomicU64>,
    thread: Option<JoinHandle<u64>>,
    pub(crate) events: actix_zap::monitor::Events,
}

/// How a client logs in.
#[derive(Clone)]
pub(crate) enum Login {
    Curve(actix_zap::keys::CurvePublicKey, Keys),
    Plain(&'static str, &'static str),
    /// NULL: decided by address alone.
    Null,
}

impl Login {
    /// Sets the client side's security options on `socket`.
    pub(crate) fn apply(&self, socket: &zmq::Socket) {
        match self {
            Login::Curve(server, keys) => {
                socket.set_curve_serverkey(server.as_bytes()).unwrap();
                socket.set_curve_publickey(keys.public.as_bytes()).unwrap();
                socket.set_curve_secretkey(keys.secret.as_bytes()).unwrap();
            }
            Login::Plain(user, password) => {
                socket.set_plain_username(Some(user)).unwrap();
                socket.set_plain_password(Some(password)).unwrap();
            }
            Login::Null => {}
        }
    }
}

impl Sender {
    /// Connects to `endpoint` (optionally from `source`, an address of 127/8) and sends.
    pub(crate) fn start(
        context: &zmq::Context,
        name: &str,
        login: Login,
        endpoint: &str,
        source: Option<&str>,
    ) -> Sender {
        Sender::start_as(context, zmq::PUSH, name, login, endpoint, source)
    }

    /// [`start`](Self::start) with another sending socket type (DEALER, PAIR).
    pub(crate) fn start_as(
        context: &zmq::Context,
        socket_type: zmq::SocketType,
        name: &str,
        login: Login,
        endpoint: &str,
        source: Option<&str>,
    ) -> Sender {
        let socket = context.socket(socket_type).unwrap();
        socket.set_linger(0).unwrap();
        login.apply(&socket);
        let endpoint_name = actix_zap::monitor::unique_endpoint("sessions-test-client");
        let mask = zmq::SocketEvent::DISCONNECTED as i32
            | zmq::SocketEvent::HANDSHAKE_SUCCEEDED as i32
            | zmq::SocketEvent::HANDSHAKE_FAILED_AUTH as i32;
        let (events, _reader) =
            actix_zap::monitor::spawn(context, &socket, &endpoint_name, mask).unwrap();
        let target = match source {
            Some(source) => format!("tcp://{source}:0;{}", endpoint.trim_start_matches("tcp://")),
            None => endpoint.to_owned(),
        };
        socket.connect(&target).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let name = name.to_owned();
        let count = Arc::new(AtomicU64::new(0));
        let counting = Arc::clone(&count);
        let thread = std::thread::spawn(move || {
            let mut sent = 0u64;
            while !stopping.load(Ordering::Relaxed) {
                match socket.send(format!("{name} {sent}").as_bytes(), zmq::DONTWAIT) {
                    Ok(()) => {
                        sent += 1;
                        counting.store(sent, Ordering::Relaxed);
                    }
                    Err(zmq::Error::EAGAIN) => {}
                    Err(error) => panic!("{name}: {error}"),
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            sent
        });
        Sender {
            stop,
            sent: count,
            thread: Some(thread),
            events,
        }
    }

    /// Stops sending; how many messages were sent.
    pub(crate) fn finish(&mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }

    /// Messages sent so far.
    pub(crate) fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Waits (bounded) until the client has sent `n` messages.
    pub(crate) fn wait_sent(&self, n: u64) {
        wait_count(&self.sent, n);
    }

    /// Waits for `event` on the client's own socket.
    pub(crate) fn saw(&self, event: zmq::SocketEvent) -> Option<u32> {
        let deadline = Instant::now() + PATIENCE;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.events.recv_timeout(left) {
                Ok((e, value)) if e == event as u16 => return Some(value),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.finish();
        }
    }
}

/// Waits (bounded) until `count` reaches `n` (on another thread).
pub(crate) fn wait_count(count: &AtomicU64, n: u64) {
    let deadline = Instant::now() + PATIENCE;
    while count.load(Ordering::Relaxed) < n {
        assert!(
            Instant::now() < deadline,
            "the client never sent {n} messages"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Messages a revoked client sends, unread, before its revocation: the socket must drop
/// them after the `Ok` (most are in its queue by then; without them a run would only show
/// that the connection was shut down, not that the socket checks what it already holds).
pub(crate) const UNREAD_AT_REVOCATION: u64 = 50;

/// Per client: the numbers received, in order.
#[derive(Default)]
pub(crate) struct Received {
    pub(crate) kept: Vec<u64>,
    pub(crate) revoked: Vec<u64>,
}

/// Right after a revocation's `Ok`: receives until `more` further messages of the kept client
/// came (each receive bounded), and asserts that none of the revoked session came meanwhile;
/// the revoked session's count at the `Ok`.
fn nothing_revoked_while_kept_sends(
    server: &mut SessionSocket,
    received: &mut Received,
    more: usize,
) -> usize {
    let revoked_at_ok = received.revoked.len();
    let target = received.kept.len() + more;
    while received.kept.len() < target {
        assert!(receive_one(server, received), "the kept client stalled");
    }
    assert_eq!(
        received.revoked.len(),
        revoked_at_ok,
        "messages of the revoked session were delivered after the revocation's Ok"
    );
    revoked_at_ok
}

pub(crate) fn receive_one(server: &mut SessionSocket, received: &mut Received) -> bool {
    match server.recv_msg(0) {
        Ok(message) => {
            let text = std::str::from_utf8(&message).unwrap().to_owned();
            let (name, n) = text.split_once(' ').unwrap();
            let n: u64 = n.parse().unwrap();
            match name {
                "kept" => received.kept.push(n),
                "revoked" => received.revoked.push(n),
                other => panic!("a message from {other}"),
            }
            true
        }
        Err(actix_zap::sessions::SessionError::Zmq(zmq::Error::EAGAIN)) => false,
        Err(error) => panic!("receive: {error}"),
    }
}

/// Runs one revocation: both clients send; once each has 20 messages delivered, `revoke`
/// narrows the policy (and returns once it answered `Ok`); then the run goes on until the kept
/// client has 200 more messages delivered.
pub(crate) fn revocation_run(
    context: &zmq::Context,
    server: SessionSocket,
    logins: (Login, Login),
    revoked_from: Option<&str>,
    revoke: impl FnOnce(),
) {
    revocation_run_as(context, server, zmq::PUSH, logins, revoked_from, revoke);
}

/// [`revocation_run`] with clients of `client_type` (one the server's type accepts).
pub(crate) fn revocation_run_as(
    context: &zmq::Context,
    mut server: SessionSocket,
    client_type: zmq::SocketType,
    logins: (Login, Login),
    revoked_from: Option<&str>,
    revoke: impl FnOnce(),
) {
    let endpoint = bind_tcp(&server);
    let mut kept = Sender::start_as(context, client_type, "kept", logins.0, &endpoint, None);
    let mut revoked = Sender::start_as(
        context,
        client_type,
        "revoked",
        logins.1,
        &endpoint,
        revoked_from,
    );
    let mut received = Received::default();
    let deadline = Instant::now() + PATIENCE;
    while received.kept.len() < 20 || received.revoked.len() < 20 {
        assert!(
            Instant::now() < deadline,
            "both clients never got 20 messages through"
        );
        assert!(
            receive_one(&mut server, &mut received),
            "nothing received in time"
        );
    }
    // The server stops reading while the revoked client sends on.
    let last = *received.revoked.last().unwrap();
    revoked.wait_sent(last + 1 + UNREAD_AT_REVOCATION);
    revoke();
    let before = nothing_revoked_while_kept_sends(&mut server, &mut received, 200);
    assert!(
        revoked.saw(zmq::SocketEvent::DISCONNECTED).is_some(),
        "the revoked client's connection was not closed"
    );
    assert_eq!(
        revoked.saw(zmq::SocketEvent::HANDSHAKE_FAILED_AUTH),
        Some(400),
        "the revoked client's reconnection was not refused"
    );
    revoked.finish();
    let sent = kept.finish();
    server.raw().set_rcvtimeo(2_000).unwrap();
    while (received.kept.len() as u64) < sent {
        assert!(
            receive_one(&mut server, &mut received),
            "the kept client lost messages: {} of {sent} delivered",
            received.kept.len()
        );
    }
    assert_eq!(
        received.kept,
        (0..sent).collect::<Vec<_>>(),
        "kept client's messages"
    );
    assert_eq!(received.revoked.len(), before);
}

pub(crate) fn curve_setup() -> (zmq::Context, ThreadAuthenticator, Keys, Keys, Keys) {
    let (context, auth) = started();
    let (server, kept, revoked) = (Keys::generate(), Keys::generate(), Keys::generate());
    let keys = [kept.public, revoked.public].into_iter().collect();
    auth.configure_curve_keys("global", keys).unwrap();
    (context, auth, server, kept, revoked)
}

#[test]
fn a_removed_curve_key_ends_its_open_session() {
    let (context, auth, server, kept, revoked) = curve_setup();
    let socket = ServerSocket::curve("global", server.secret.clone())
        .build_sessions(&context, zmq::PULL)
        .unwrap();
    let logins = (
        Login::Curve(server.public, kept),
        Login::Curve(server.public, revoked.clone()),
    );
    revocation_run(&context, socket, logins, None, || {
        let removal = RemoveCurveKeys::new("global", [revoked.public]);
        auth.send(removal).unwrap();
    });
    let stats = auth.stats().unwrap();
    assert_eq!(stats.sessions_ended, 1);
}

#[test]
fn a_removed_plain_user_ends_its_open_session() {
    let (context, auth) = started();
    auth.configure_plain("global", [("kept", "pw"), ("revoked", "pw")])
        .unwrap();
    let socket = ServerSocket::plain("global")
        .build_sessions(&context, zmq::PULL)
        .unwrap();
    let logins = (Login::Plain("kept", "pw"), Login::Plain("revoked", "pw"));
    revocation_run(&context, socket, logins, None, || {
        let removal = RemovePlainUsers {
            domain: "global".into(),
            users: vec!["revoked".into()],
        };
        auth.send(removal).unwrap();
    });
}

#[test]
fn a_changed_password_ends_the_session_that_used_the_old_one() {
    let (context, auth) = started();
    auth.configure_plain("global", [("kept", "pw"), ("revoked", "old")])
        .unwrap();
    let socket = ServerSocket::plain("global")
        .build_sessions(&context, zmq::PULL)
        .unwrap();
    let logins = (Login::Plain("kept", "pw"), Login::Plain("revoked", "old"));
    revocation_run(&context, socket, logins, None, || {
        auth.configure_plain("global", [("kept", "pw"), ("revoked", "new")])
            .unwrap();
    });
}

#[test]
fn a_denied_address_ends_the_sessions_from_it() {
    let (context, auth, server, kept, revoked) = curve_setup();
    let socket = ServerSocket::curve("global", server.secret.clone())
        .build_sessions(&context, zmq::PULL)
        .unwrap();
    let logins = (
        Login::Curve(server.public, kept),
        Login::Curve(server.public, revoked),
    );
    revocation_run(&context, socket, logins, Some("127.0.0.2"), || {
        auth.deny(["127.0.0.2"]).unwrap();
    });
}

#[test]
fn a_certificate_deleted_from_a_watched_directory_ends_its_open_session() {
    let (context, auth) = started();
    let dir = tempfile::tempdir().unwrap();
    let (server, kept, revoked) = (Keys::generate(), Keys::generate(), Keys::generate());
    crate::common::write_public(dir.path(), "kept.key", &kept);
    crate::common::write_public(dir.path(), "revoked.key", &revoked);
    let (reports, reloads) = std::sync::mpsc::channel();
    let reports = std::sync::Mutex::new(reports);
    let watch = actix_zap::messages::Watch::curve("global", dir.path()).on_reload(move |r| {
        let _ = reports.lock().unwrap().send(r.entries);
    });
    assert_eq!(auth.watch(watch).unwrap().entries, 2);
    let socket = ServerSocket::curve("global", server.secret.clone())
        .build_sessions(&context, zmq::PULL)
        .unwrap();
    let logins = (
        Login::Curve(server.public, kept),
        Login::Curve(server.public, revoked),
    );
    revocation_run(&context, socket, logins, None, || {
        std::fs::remove_file(dir.path().join("revoked.key")).unwrap();
        // The report comes once the watch's change was applied (through the one way in).
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let entries = reloads
                .recv_timeout(left)
                .expect("the deletion was never applied");
            if entries == 1 {
                break;
            }
        }
    });
}

/// A message's sender name and descriptor.
fn next_from(server: &mut SessionSocket) -> (String, String) {
    let mut message = server.recv_msg(0).expect("a message in time");
    let fd = message
        .gets("__fd")
        .expect("a tcp peer's message has __fd")
        .to_owned();
    let text = std::str::from_utf8(&message).unwrap().to_owned();
    (text.split_once(' ').unwrap().0.to_owned(), fd)
}

/// Reads until a message from `name` comes; its descriptor.
fn descriptor_of(server: &mut SessionSocket, name: &str) -> String {
    loop {
        let (from, fd) = next_from(server);
        if from == name {
            return fd;
        }
    }
}

/// Both descriptor-reuse orders: the revoked client's session and the kept client's end up
/// on the same descriptor number (asserted, else retried with new clients); revoking the first
/// must not end the second's connection.
fn reuse_run(read_old_first: bool) {
    let (context, auth, server_keys, kept, revoked) = curve_setup();
    let mut server = ServerSocket::curve("global", server_keys.secret.clone())
        .build_sessions(&context, zmq::PULL)
        .unwrap();
    let endpoint = bind_tcp(&server);
    let login = |keys: &Keys| Login::Curve(server_keys.public, keys.clone());
    for attempt in 0..20 {
        // Names per attempt: messages an earlier attempt left queued are told apart.
        let (old_name, new_name) = (format!("revoked-{attempt}"), format!("kept-{attempt}"));
        let mut old = Sender::start(&context, &old_name, login(&revoked), &endpoint, None);
        let old_fd = if read_old_first {
            // The old session's messages are read (it is bound) before its connection goes.
            Some(descriptor_of(&mut server, &old_name))
        } else {
            // Wait for its handshake only: its first message is read after the reuse. It
            // lives a while first, as connections do (a reuse within milliseconds of the
            // admission cannot be told from the monitor's lag; see MONITOR_LAG).
            assert!(old.saw(zmq::SocketEvent::HANDSHAKE_SUCCEEDED).is_some());
            std::thread::sleep(Duration::from_millis(600));
            None
        };
        old.finish();
        // Time for the server to close the old connection, so that its number can be reused
        // (whether it was is read from the messages below, never assumed).
        std::thread::sleep(Duration::from_millis(50));
        let mut new = Sender::start(&context, &new_name, login(&kept), &endpoint, None);
        let (old_fd, new_fd) = match old_fd {
            Some(old_fd) => (old_fd, descriptor_of(&mut server, &new_name)),
            None => {
                // Both first read now, after the new connection was accepted.
                let (mut old_fd, mut new_fd) = (None, None);
                while old_fd.is_none() || new_fd.is_none() {
                    let (from, fd) = next_from(&mut server);
                    if from == old_name {
                        old_fd = old_fd.or(Some(fd));
                    } else if from == new_name {
                        new_fd = new_fd.or(Some(fd));
                    }
                }
                (old_fd.unwrap(), new_fd.unwrap())
            }
        };
        if old_fd != new_fd {
            new.finish();
            continue;
        }
        auth.send(RemoveCurveKeys::new("global", [revoked.public]))
            .unwrap();
        // The kept client goes on: 100 more of its messages, and no disconnect on its side.
        let mut more = 0;
        while more < 100 {
            let (from, _) = next_from(&mut server);
            assert!(
                !from.starts_with("revoked"),
                "a revoked session's message after the Ok"
            );
            more += usize::from(from == new_name);
        }
        let disconnected = std::iter::from_fn(|| new.events.try_recv().ok())
            .any(|(event, _)| event == zmq::SocketEvent::DISCONNECTED as u16);
        assert!(
            !disconnected,
            "the client that reused the descriptor was disconnected"
        );
        new.finish();
        auth.stop();
        return;
    }
    panic!("the descriptor number was never reused in 20 attempts");
}

#[test]
fn revoking_a_session_read_before_its_descriptor_was_reused_spares_the_new_connection() {
    reuse_run(true);
}

#[test]
fn revoking_a_session_first_read_after_its_descriptor_was_reused_spares_the_new_connection() {
    reuse_run(false);
}

#[test]
fn an_expired_key_ends_its_open_session() {
    use actix_zap::messages::AddCurveKeys;
    use actix_zap::policy::CurveEntry;
    let (context, auth) = started();
    let (server, kept, expiring) = (Keys::generate(), Keys::generate(), Keys::generate());
    let expires = std::time::SystemTime::now() + Duration::from_secs(2);
    let entries = [
        CurveEntry::new(kept.public),
        CurveEntry {
            expires: Some(expires),
            ..CurveEntry::new(expiring.public)
        },
    ];
    auth.send(AddCurveKeys::new("global", entries)).unwrap();
    let socket = ServerSocket::curve("global", server.secret.clone())
        .build_sessions(&context, zmq::PULL)
        .unwrap();
    let logins = (
        Login::Curve(server.public, kept),
        Login::Curve(server.public, expiring),
    );
    revocation_run(&context, socket, logins, None, || {
        // The expiry is the narrowing: its sweep (every second) has ended the session once
        // it is counted (the count follows the publication to the sockets).
        let deadline = Instant::now() + PATIENCE;
        while auth.stats().unwrap().sessions_ended == 0 {
            assert!(
                Instant::now() < deadline,
                "the expired key's session never ended"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(std::time::SystemTime::now() >= expires);
    });
}

/// Marks outlive a restart of the authenticator on the same context: an open session keeps
/// being delivered across `stop()` and `start()`, and the new authenticator can end it.
#[test]
fn sessions_survive_a_restart_and_the_new_authenticator_ends_them() {
    let (context, auth, server, kept, revoked) = curve_setup();
    let mut socket = ServerSocket::curve("global", server.secret.clone())
        .build_sessions(&context, zmq::PULL)
        .unwrap();
    let endpoint = bind_tcp(&socket);
    let login = |keys: &Keys| Login::Curve(server.public, keys.clone());
    let _kept = Sender::start(&context, "kept", login(&kept), &endpoint, None);
    let revoked_sender = Sender::start(&context, "revoked", login(&revoked), &endpoint, None);
    let mut received = Received::default();
    while received.kept.len() < 10 || received.revoked.len() < 10 {
        assert!(
            receive_one(&mut socket, &mut received),
            "nothing received in time"
        );
    }
    auth.stop();
    let auth = ThreadAuthenticator::start(&context).unwrap();
    let keys = [kept.public, revoked.public].into_iter().collect();
    auth.configure_curve_keys("global", keys).unwrap();
    // Both sessions go on under the new authenticator.
    let (kept_before, revoked_before) = (received.kept.len(), received.revoked.len());
    while received.kept.len() < kept_before + 50 || received.revoked.len() < revoked_before + 50 {
        assert!(
            receive_one(&mut socket, &mut received),
            "a session was dropped by the restart"
        );
    }
    auth.send(RemoveCurveKeys::new("global", [revoked.public]))
        .unwrap();
    nothing_revoked_while_kept_sends(&mut socket, &mut received, 100);
    assert!(revoked_sender.saw(zmq::SocketEvent::DISCONNECTED).is_some());
    auth.stop();
}

/// A bound server socket's tcp endpoint.
pub(crate) fn bind_tcp(server: &SessionSocket) -> String {
    server.raw().set_linger(0).unwrap();
    server
        .raw()
        .set_rcvtimeo(PATIENCE.as_millis() as i32)
        .unwrap();
    server.bind("tcp://127.0.0.1:*").unwrap();
    server.raw().get_last_endpoint().unwrap().unwrap()
}

/// Hashed PLAIN: a user whose PHC string changes (a new password) has her open session ended;
/// a user whose entry is written again with the same PHC string keeps hers.
#[test]
fn a_changed_phc_string_ends_the_hashed_users_session() {
    let (context, auth) = started();
    let kept_hash = cheap_hash("pw");
    auth.add_plain_users(
        "global",
        [("kept", kept_hash.clone()), ("revoked", cheap_hash("old"))],
    )
    .unwrap();
    let socket = ServerSocket::plain("global")
        .build_sessions(&context, zmq::PULL)
        .unwrap();
    let logins = (Login::Plain("kept", "pw"), Login::Plain("revoked", "old"));
    revocation_run(&context, socket, logins, None, || {
        // The kept user's entry is written again, unchanged: a narrowing of her name too.
        auth.add_plain_users(
            "global",
            [("kept", kept_hash), ("revoked", cheap_hash("new"))],
        )
        .unwrap();
    });
    assert_eq!(auth.stats().unwrap().sessions_ended, 1);
}

/// A session that shows its first message only after a narrowing that took its key away is
/// ended then, on the receiving thread: nothing of it is delivered, its connection ends, and
/// the authenticator tells it as a decision event too.
#[test]
fn a_session_first_seen_after_its_revocation_is_ended_and_told() {
    let (context, auth, server, _kept, revoked) = curve_setup();
    let (events, reasons) = std::sync::mpsc::channel();
    let events = std::sync::Mutex::new(events);
    auth.on_decision(move |event| {
        if event.reason.starts_with("Session ended") {
            let _ = events.lock().unwrap().send(event.clone());
        }
    })
    .unwrap();
    let mut socket = ServerSocket::curve("global", server.secret.clone())
        .build_sessions(&context, zmq::PULL)
        .unwrap();
    socket.raw().set_linger(0).unwrap();
    socket.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = socket.raw().get_last_endpoint().unwrap().unwrap();
    let client = context.socket(zmq::PUSH).unwrap();
    client.set_linger(0).unwrap();
    Login::Curve(server.public, revoked.clone()).apply(&client);
    let name = actix_zap::monitor::unique_endpoint("sessions-test-silent");
    let mask = zmq::SocketEvent::HANDSHAKE_SUCCEEDED as i32 | zmq::SocketEvent::DISCONNECTED as i32;
    let (client_events, _reader) =
        actix_zap::monitor::spawn(&context, &client, &name, mask).unwrap();
    client.connect(&endpoint).unwrap();
    let (event, _) = client_events.recv_timeout(PATIENCE).expect("the handshake");
    assert_eq!(event, zmq::SocketEvent::HANDSHAKE_SUCCEEDED as u16);
    // Admitted, silent: not bound. The key is removed; then the client speaks.
    auth.send(RemoveCurveKeys::new("global", [revoked.public]))
        .unwrap();
    client.send("too late", 0).unwrap();
    socket.raw().set_rcvtimeo(500).unwrap();
    match socket.recv_msg(0) {
        Err(actix_zap::sessions::SessionError::Zmq(zmq::Error::EAGAIN)) => {}
        other => panic!("a revoked session's first message was delivered: {other:?}"),
    }
    let ended = reasons
        .recv_timeout(PATIENCE)
        .expect("a Session ended event");
    assert_eq!(ended.client_key, Some(revoked.public));
    assert!(ended.lived.is_some());
    let (event, _) = client_events
        .recv_timeout(PATIENCE)
        .expect("the disconnect");
    assert_eq!(event, zmq::SocketEvent::DISCONNECTED as u16);
    assert_eq!(auth.stats().unwrap().sessions_ended, 1);
}
