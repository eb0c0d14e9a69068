//! What an attacker sends, through a raw ZMTP client where libzmq will not send it.

use crate::common::zmtp::{plain_hello, Hello};
use crate::common::*;
use actix_zap::messages::{AddPlainUsers, Watch, WatchSource};
use actix_zap::policy::HashedPassword;
use futures::executor::block_on;

/// An argon2id hash of any password, an empty one included (as another tool could store it).
fn hash_of(password: &[u8]) -> HashedPassword {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let phc = argon2::Argon2::default()
        .hash_password(password, &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
    HashedPassword::parse(&phc, &Default::default()).unwrap()
}

fn refused(hello: Hello) {
    assert!(matches!(hello, Hello::Error(_)), "{hello:?}");
}

#[test]
fn an_empty_password_is_refused_in_clear_text_hashed_and_watched_tables() {
    let (context, auth) = started();
    auth.configure_plain("clear", [("admin", "secret"), ("empty", "")])
        .unwrap();
    let users = vec![
        ("admin".to_owned(), hash_of(b"secret")),
        ("empty".to_owned(), hash_of(b"")),
    ];
    let added = block_on(auth.handle().send(AddPlainUsers::new("hashed", users)));
    assert_eq!(added.unwrap(), 2);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("passwords");
    std::fs::write(&file, "admin=secret\nempty=\n").unwrap();
    let source = WatchSource::PlainFile { path: file };
    let loaded = auth.watch(Watch::new("watched", source)).unwrap();
    assert_eq!(loaded.entries, 1, "{loaded:?}");
    assert_eq!(loaded.rejected.len(), 1, "{loaded:?}");
    assert!(
        loaded.rejected[0].to_string().contains("empty password"),
        "{loaded:?}"
    );

    for domain in ["clear", "hashed", "watched"] {
        let server = Listening::new(&context, &Server::Plain, Some(domain));
        // The raw client logs in with a right password: its refusals below prove something.
        assert_eq!(
            plain_hello(&server.endpoint, b"admin", b"secret"),
            Hello::Welcome,
            "{domain}"
        );
        refused(plain_hello(&server.endpoint, b"empty", b""));
        refused(plain_hello(&server.endpoint, b"admin", b""));
    }
    auth.stop();
}

/// An actor that takes `pause` per decision event, on a System of its own.
struct Slow {
    handled: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    pause: std::time::Duration,
}

impl actix::Actor for Slow {
    type Context = actix::Context<Self>;
}

impl actix::Handler<actix_zap::messages::DecisionEvent> for Slow {
    type Result = ();

    fn handle(&mut self, _: actix_zap::messages::DecisionEvent, _: &mut Self::Context) {
        std::thread::sleep(self.pause);
        self.handled
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn a_slow_subscriber_holds_at_most_its_queue_and_the_rest_is_dropped_and_counted() {
    use actix::Actor as _;
    use actix_zap::messages::Subscriber;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    const QUEUE: usize = 8;
    const REFUSALS: usize = 60;
    let handled = Arc::new(AtomicUsize::new(0));
    let (sender, recipient) = std::sync::mpsc::channel();
    let counter = Arc::clone(&handled);
    std::thread::spawn(move || {
        let system = actix::System::new();
        system.block_on(async move {
            let slow = Slow {
                handled: counter,
                pause: Duration::from_millis(200),
            };
            sender.send(slow.start().recipient()).unwrap();
        });
        system.run().unwrap();
    });
    let recipient = recipient.recv().unwrap();
    init_logging();
    let context = zmq::Context::new();
    let settings = actix_zap::Settings::default().with_subscriber_queue(QUEUE);
    let auth = actix_zap::Authenticator::builder()
        .settings(settings)
        .start_thread(&context)
        .unwrap();
    auth.configure_plain("global", [("admin", "secret")])
        .unwrap();
    let id = auth.subscribe(Subscriber::Actor(recipient)).unwrap();
    let server = Listening::new(&context, &Server::Plain, Some("global"));
    for _ in 0..REFUSALS {
        server
            .attempt(&context, &Client::Plain("admin", "wrong"))
            .assert_refused(400);
    }
    let handled_by_then = handled.load(Ordering::SeqCst);
    let dropped = || {
        let stats = auth.stats().unwrap();
        stats.events_dropped.get(&id).copied().unwrap_or(0) as usize
    };
    // Everything not dropped reaches the subscriber, at its own pace.
    let deadline = Instant::now() + Duration::from_secs(30);
    while handled.load(Ordering::SeqCst) + dropped() < REFUSALS && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (handled, dropped) = (handled.load(Ordering::SeqCst), dropped());
    assert_eq!(
        handled + dropped,
        REFUSALS,
        "handled {handled}, dropped {dropped}"
    );
    // At most QUEUE events were waiting when the refusals ended.
    assert!(
        handled <= handled_by_then + QUEUE,
        "handled {handled}, {handled_by_then} by the end of the refusals"
    );
    assert!(dropped > 0);
    auth.stop();
}

/// A watched password file that grows over its cap is refused, unread, and says its size.
#[test]
fn a_watched_password_file_over_its_cap_fails_closed_and_names_its_size() {
    use std::sync::{Arc, Mutex};
    let (context, auth) = started();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("passwords");
    std::fs::write(&file, "admin=secret\n").unwrap();
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&reports);
    let watch = Watch::plain("global", &file)
        .every(std::time::Duration::from_millis(20))
        .max_file_bytes(1024)
        .on_reload(move |report| sink.lock().unwrap().push(report.clone()));
    auth.watch(watch).unwrap();
    let server = Listening::new(&context, &Server::Plain, Some("global"));
    server
        .attempt(&context, &Client::Plain("admin", "secret"))
        .assert_admitted("admin");
    // Written aside and renamed into place: the watch sees it whole.
    let big = dir.path().join(".big");
    std::fs::write(&big, "admin=secret\n".repeat(1000)).unwrap();
    std::fs::rename(&big, &file).unwrap();
    let deadline = std::time::Instant::now() + PATIENCE;
    let error = loop {
        let last = reports.lock().unwrap().last().and_then(|r| r.error.clone());
        if let Some(error) = last {
            break error;
        }
        assert!(std::time::Instant::now() < deadline, "never refused");
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert!(
        matches!(
            error,
            actix_zap::ReloadError::TooLarge {
                size: 13000,
                limit: 1024,
                ..
            }
        ),
        "{error}"
    );
    server
        .attempt(&context, &Client::Plain("admin", "secret"))
        .assert_refused(400);
    auth.stop();
}

/// Every decision event, as (address, status, reason), in order.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, u16, String)>>>;

fn watch_decisions(auth: &actix_zap::ThreadAuthenticator) -> Seen {
    use actix_zap::messages::{DecisionEvent, Subscriber};
    let seen = Seen::default();
    let sink = std::sync::Arc::clone(&seen);
    let callback = move |e: &DecisionEvent| {
        let event = (e.address.clone(), e.status.as_u16(), e.reason.clone());
        sink.lock().unwrap().push(event);
    };
    auth.subscribe(Subscriber::Callback(std::sync::Arc::new(callback)))
        .unwrap();
    seen
}

fn reasons(seen: &Seen) -> Vec<String> {
    seen.lock().unwrap().iter().map(|e| e.2.clone()).collect()
}

/// Connects a PLAIN client from `source` (an address of the loopback network) to `server`,
/// sends one message and waits for the server to receive it: the time that took, or `None`
/// if nothing arrived within `patience`.
fn admitted_from(
    context: &zmq::Context,
    server: &Listening,
    source: &str,
    user: &'static str,
    password: &'static str,
    patience: std::time::Duration,
) -> Option<std::time::Duration> {
    let started = std::time::Instant::now();
    let port = server.endpoint.rsplit(':').next().unwrap();
    let client = client_socket(context, &Client::Plain(user, password));
    client
        .connect(&format!("tcp://{source}:0;127.0.0.1:{port}"))
        .unwrap();
    send_after_connect(&client, user);
    server
        .socket
        .set_rcvtimeo(patience.as_millis() as i32)
        .unwrap();
    let mut message = zmq::Message::new();
    let received = server.socket.recv(&mut message, 0);
    server
        .socket
        .set_rcvtimeo(PATIENCE.as_millis() as i32)
        .unwrap();
    received.ok()?;
    assert_eq!(message.gets("User-Id"), Some(user));
    assert_eq!(message.gets("Peer-Address"), Some(source));
    Some(started.elapsed())
}

#[test]
fn a_flood_of_guesses_is_throttled_and_legitimate_users_still_get_in() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    let (context, auth) = started();
    let users = vec![
        ("alice".to_owned(), hash_with("alice's", 1024, 1)),
        ("bob".to_owned(), hash_with("bob's", 1024, 1)),
    ];
    block_on(auth.handle().send(AddPlainUsers::new("hashed", users))).unwrap();
    let seen = watch_decisions(&auth);
    let server = Listening::new(&context, &Server::Plain, Some("hashed"));

    // The attacker: 4 raw clients on 127.0.0.1 guessing alice's password, as fast as the
    // server answers.
    let stop = Arc::new(AtomicBool::new(false));
    let guesses = Arc::new(AtomicUsize::new(0));
    let attackers: Vec<_> = (0..4)
        .map(|n| {
            let (stop, guesses) = (Arc::clone(&stop), Arc::clone(&guesses));
            let endpoint = server.endpoint.clone();
            std::thread::spawn(move || {
                let mut answers = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let guess = format!("guess-{n}-{}", guesses.fetch_add(1, Ordering::SeqCst));
                    answers.push(plain_hello(&endpoint, b"alice", guess.as_bytes()));
                }
                answers
            })
        })
        .collect();
    let deadline = Instant::now() + PATIENCE;
    while !reasons(&seen).iter().any(|r| r == "Too many failures") {
        assert!(Instant::now() < deadline, "the throttle never engaged");
        std::thread::sleep(Duration::from_millis(10));
    }

    // The throttle engaged after argon2 ran for the attacker: wrong passwords first.
    let verified_by_then = auth.stats().unwrap().verifications;
    let events = reasons(&seen);
    let first = events
        .iter()
        .position(|r| r == "Too many failures")
        .unwrap();
    let verified = events[..first]
        .iter()
        .filter(|r| *r == "Invalid password")
        .count();
    assert!(verified >= 5, "{:?}", &events[..first]);

    // While the flood goes on, alice from another address and bob from the attacker's
    // address are admitted within a second.
    let patience = Duration::from_secs(1);
    for (source, user, password) in [
        ("127.0.0.2", "alice", "alice's"),
        ("127.0.0.1", "bob", "bob's"),
        ("127.0.0.3", "alice", "alice's"),
    ] {
        let took = admitted_from(&context, &server, source, user, password, patience);
        assert!(
            took.is_some(),
            "{user} from {source} not admitted within 1 s"
        );
    }
    let during = guesses.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        guesses.load(Ordering::SeqCst) > during,
        "the flood still runs"
    );
    stop.store(true, Ordering::SeqCst);
    let answers: Vec<Hello> = attackers
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();

    // Every guess was refused with a 400 (never a 300: that would close without an ERROR);
    // once the throttle engaged, every one at once, without argon2: the only verifications
    // after it are the legitimate users' (alice's second login is remembered).
    assert!(
        answers.iter().all(|a| *a == Hello::Error("400".into())),
        "{:?}",
        answers.iter().find(|a| **a != Hello::Error("400".into()))
    );
    let stats = auth.stats().unwrap();
    assert_eq!(stats.count(actix_zap::zap::StatusCode::TryLater), 0);
    assert!(
        stats.verifications <= verified_by_then + 2,
        "{} verifications, {verified_by_then} when the throttle engaged",
        stats.verifications
    );
    let events = seen.lock().unwrap().clone();
    let first = (events.iter())
        .position(|(_, _, reason)| reason == "Too many failures")
        .unwrap();
    let later = &events[first..];
    // The attacker's verifications already in flight when its pair reached the threshold
    // end with their own answer (none with one in flight per address, the default on 2 cores).
    let in_flight = actix_zap::Settings::default().verifications_per_address() - 1;
    let not_throttled = |(address, status, reason): &&(String, u16, String)| {
        address == "127.0.0.1" && *status != 200 && reason != "Too many failures"
    };
    let late: Vec<_> = later.iter().filter(not_throttled).collect();
    assert!(late.len() <= in_flight, "{late:?}");
    let throttled = later.iter().filter(|e| e.2 == "Too many failures").count();
    assert!(throttled > 10, "{throttled} guesses throttled");
    assert!(stats.throttle_entries >= 2);
    auth.stop();
}

#[test]
fn an_unknown_username_is_refused_in_about_the_time_of_a_known_one() {
    use std::time::{Duration, Instant};
    // No throttle in the way: every attempt is verified.
    let settings = actix_zap::Settings::default().with_throttle_capacity(0);
    let (context, auth) = started_with(settings);
    let users = vec![("alice".to_owned(), hash_with("right", 1024, 2))];
    block_on(auth.handle().send(AddPlainUsers::new("hashed", users))).unwrap();
    let seen = watch_decisions(&auth);
    let server = Listening::new(&context, &Server::Plain, Some("hashed"));
    let time = |user: &[u8]| {
        let started = Instant::now();
        assert_eq!(
            plain_hello(&server.endpoint, user, b"wrong"),
            Hello::Error("400".into())
        );
        started.elapsed()
    };
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for n in 0..9 {
        known.push(time(b"alice"));
        unknown.push(time(format!("nobody-{n}").as_bytes()));
    }
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let (known, unknown) = (median(&mut known), median(&mut unknown));
    assert!(
        unknown * 2 >= known,
        "unknown {unknown:?}, known {known:?} (medians)"
    );
    let events = reasons(&seen);
    assert_eq!(
        events.iter().filter(|r| *r == "Invalid username").count(),
        9
    );
    assert_eq!(auth.stats().unwrap().verifications, 18);
    auth.stop();
}

#[test]
fn one_wrong_password_is_verified_once_while_another_domain_changes_every_5_ms() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    let (context, auth) = started();
    // Costly enough that many changes happen while it is verified.
    let users = vec![("alice".to_owned(), hash_with("right", 16 * 1024, 2))];
    block_on(auth.handle().send(AddPlainUsers::new("hashed", users))).unwrap();
    let server = Listening::new(&context, &Server::Plain, Some("hashed"));
    let stop = Arc::new(AtomicBool::new(false));
    let changer = {
        let (stop, handle) = (Arc::clone(&stop), auth.handle().clone());
        std::thread::spawn(move || {
            let mut changes = 0;
            while !stop.load(Ordering::SeqCst) {
                changes += 1;
                let table = [("someone", format!("password {changes}"))];
                block_on(handle.configure_plain("other", table)).unwrap();
                std::thread::sleep(Duration::from_millis(5));
            }
            changes
        })
    };
    std::thread::sleep(Duration::from_millis(20));
    let started = Instant::now();
    server
        .attempt(&context, &Client::Plain("alice", "wrong"))
        .assert_refused(400);
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let changes = changer.join().unwrap();
    assert!(changes >= 2, "only {changes} changes in {took:?}");
    let stats = auth.stats().unwrap();
    assert_eq!(stats.verifications, 1, "verified once, in {took:?}");
    assert_eq!(stats.count(actix_zap::zap::StatusCode::InternalError), 0);
    auth.stop();
}

#[test]
fn the_work_one_address_has_in_flight_is_capped() {
    use actix_zap::zap::StatusCode;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};
    // No queue: over the cap, refused at once (the queue has a test of its own below).
    let settings = actix_zap::Settings::default()
        .with_lookups_per_address(2)
        .with_verifications_per_address(1)
        .with_address_queue(0)
        .with_provider_deadline(PATIENCE);
    let (context, auth) = started_with(settings);
    let seen = watch_decisions(&auth);
    // CURVE: a provider that holds every lookup until released.
    let (provider, release, asked) = held_provider();
    auth.configure_curve_callback("held", provider).unwrap();
    let server_keys = Keys::generate();
    let curve = Listening::new(&context, &Server::Curve(server_keys.clone()), Some("held"));
    let client = || Client::Curve(server_keys.public, Keys::generate());
    let held: Vec<_> = (0..2).map(|_| curve.connect(&context, &client())).collect();
    let deadline = Instant::now() + PATIENCE;
    while asked.load(Ordering::SeqCst) < 2 {
        assert!(Instant::now() < deadline, "the lookups never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    // A third lookup from the same address: refused at once, never asked.
    let _third = curve.connect(&context, &client());
    curve.outcome().assert_refused(400);
    assert_eq!(asked.load(Ordering::SeqCst), 2);
    assert!(reasons(&seen).contains(&"Too many attempts in flight".to_owned()));
    release.notify_waiters();
    for _ in 0..2 {
        assert!(curve.outcome().is_admitted());
    }
    drop(held);

    // PLAIN: one verification in flight per address; the second waits for none.
    let users = vec![("alice".to_owned(), hash_with("right", 16 * 1024, 2))];
    block_on(auth.handle().send(AddPlainUsers::new("hashed", users))).unwrap();
    let plain = Listening::new(&context, &Server::Plain, Some("hashed"));
    let _slow = plain.connect(&context, &Client::Plain("alice", "right"));
    while auth.stats().unwrap().verifications == 0 {
        assert!(Instant::now() < deadline, "the verification never started");
        std::thread::sleep(Duration::from_millis(2));
    }
    let started = Instant::now();
    assert_eq!(
        plain_hello(&plain.endpoint, b"alice", b"right"),
        Hello::Error("400".into())
    );
    let refused_in = started.elapsed();
    assert_eq!(auth.stats().unwrap().verifications, 1, "{refused_in:?}");
    // The first one was not disturbed; from another address, a second one runs.
    let mut outcomes = [plain.outcome(), plain.outcome()];
    outcomes.sort_by_key(|o| !o.is_admitted());
    assert!(outcomes[0].is_admitted(), "{outcomes:?}");
    let took = admitted_from(&context, &plain, "127.0.0.2", "alice", "right", PATIENCE);
    assert!(took.is_some());
    assert_eq!(auth.stats().unwrap().count(StatusCode::TryLater), 0);
    auth.stop();
}

#[test]
fn unknown_curve_keys_count_as_failures_of_their_address() {
    let (context, auth) = started();
    let dir = tempfile::tempdir().unwrap();
    let known = Keys::generate();
    write_public(dir.path(), "known.key", &known);
    auth.configure_curve("keys", dir.path()).unwrap();
    let server_keys = Keys::generate();
    let server = Listening::new(&context, &Server::Curve(server_keys.clone()), Some("keys"));
    assert_eq!(auth.stats().unwrap().throttle_entries, 0);
    server
        .attempt(&context, &Client::Curve(server_keys.public, known.clone()))
        .assert_admitted(&known.public.to_z85());
    assert_eq!(auth.stats().unwrap().throttle_entries, 0, "an admission");
    server
        .attempt(
            &context,
            &Client::Curve(server_keys.public, Keys::generate()),
        )
        .assert_refused(400);
    assert_eq!(auth.stats().unwrap().throttle_entries, 1, "the address");
    auth.stop();
}

/// A CURVE client of `server` connecting from `source` (an address of the loopback network),
/// sending one message once connected.
fn curve_from(
    context: &zmq::Context,
    server: &Listening,
    source: &str,
    server_keys: &Keys,
    keys: &Keys,
) -> zmq::Socket {
    let port = server.endpoint.rsplit(':').next().unwrap();
    let client = client_socket(context, &Client::Curve(server_keys.public, keys.clone()));
    client
        .connect(&format!("tcp://{source}:0;127.0.0.1:{port}"))
        .unwrap();
    send_after_connect(&client, "hello");
    client
}

/// Waits until `n` requests wait their turn behind their addresses' caps.
fn wait_queued(auth: &actix_zap::ThreadAuthenticator, n: usize) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while auth.stats().unwrap().address_queued != n {
        assert!(
            std::time::Instant::now() < deadline,
            "never {n} waiting: {:?}",
            auth.stats().unwrap()
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// A provider that holds the calls for `held` keys at `gate` and admits every key.
fn gated_provider(gate: &std::sync::Arc<Gate>, held: &[Keys]) -> actix_zap::provider::Provider {
    use actix_zap::keys::CurvePublicKey;
    use actix_zap::provider::{CurveVerdict, Provider};
    let held: std::collections::HashSet<String> = held.iter().map(|k| k.public.to_z85()).collect();
    let gate = std::sync::Arc::clone(gate);
    Provider::from_fn(move |_: &str, key: &CurvePublicKey| {
        if held.contains(&key.to_z85()) {
            gate.pass();
        }
        Ok(CurveVerdict::admit())
    })
}

#[test]
fn clients_behind_one_address_wait_their_turn_and_a_flood_beyond_the_queue_is_refused() {
    use actix_zap::zap::StatusCode;
    use std::sync::Arc;
    const CAP: usize = 2;
    const QUEUE: usize = 3;
    let settings = actix_zap::Settings::default()
        .with_lookups_per_address(CAP)
        .with_address_queue(QUEUE)
        .with_provider_deadline(PATIENCE);
    let (context, auth) = started_with(settings);
    let seen = watch_decisions(&auth);
    // The provider holds the NAT's clients until the test opens the gate (a slow provider);
    // any other key it admits at once.
    let nat: Vec<Keys> = (0..CAP + QUEUE).map(|_| Keys::generate()).collect();
    let gate = Arc::new(Gate::default());
    auth.configure_curve_callback("nat", gated_provider(&gate, &nat))
        .unwrap();
    let server_keys = Keys::generate();
    let server = Listening::new(&context, &Server::Curve(server_keys.clone()), Some("nat"));
    let client = |keys: &Keys| Client::Curve(server_keys.public, keys.clone());

    // After a restart, more clients of one address than its cap connect at once: the cap's
    // worth of lookups run, the others wait their turn.
    let _nat: Vec<zmq::Socket> = nat
        .iter()
        .map(|keys| server.connect(&context, &client(keys)))
        .collect();
    gate.wait_entered(CAP);
    wait_queued(&auth, QUEUE);
    assert_eq!(gate.entered(), CAP, "no more than the cap runs");
    // A flood from the same address beyond cap + queue: refused at once, with its text, and
    // never asked (the provider would admit these keys at once).
    for _ in 0..3 {
        let _flood = server.connect(&context, &client(&Keys::generate()));
        server.outcome().assert_refused(400);
    }
    let busy = reasons(&seen)
        .iter()
        .filter(|r| *r == "Too many attempts in flight")
        .count();
    assert_eq!(busy, 3);
    // Another address does not wait behind them: admitted while they are all still held.
    let other = Keys::generate();
    let _other = curve_from(&context, &server, "127.0.0.2", &server_keys, &other);
    let mut admitted = server.outcome();
    assert_eq!(
        admitted.property("Peer-Address").as_deref(),
        Some("127.0.0.2")
    );
    assert!(!gate.is_open());
    assert_eq!(auth.stats().unwrap().address_queued, QUEUE);

    // The slow lookups end: every client that waited runs in turn and is admitted.
    gate.open();
    for _ in 0..CAP + QUEUE {
        assert!(server.outcome().is_admitted());
    }
    assert_eq!(gate.entered(), CAP + QUEUE);
    let stats = auth.stats().unwrap();
    assert_eq!(stats.address_queued, 0);
    assert_eq!(stats.count(StatusCode::TryLater), 0);
    assert_eq!(stats.count(StatusCode::InternalError), 0);
    auth.stop();
}

#[test]
fn requests_waiting_behind_work_that_hangs_are_answered_by_their_deadline() {
    use std::sync::Arc;
    let settings = actix_zap::Settings::default()
        .with_lookups_per_address(1)
        .with_address_queue(2)
        .with_provider_deadline(std::time::Duration::from_millis(300));
    let (context, auth) = started_with(settings);
    let held: Vec<Keys> = (0..3).map(|_| Keys::generate()).collect();
    let gate = Arc::new(Gate::default());
    auth.configure_curve_callback("hung", gated_provider(&gate, &held))
        .unwrap();
    let server_keys = Keys::generate();
    let server = Listening::new(&context, &Server::Curve(server_keys.clone()), Some("hung"));
    let client = |keys: &Keys| Client::Curve(server_keys.public, keys.clone());
    let _held: Vec<zmq::Socket> = held
        .iter()
        .map(|keys| server.connect(&context, &client(keys)))
        .collect();
    // The provider never answers while the gate is shut: each is answered `500` by its
    // deadline, whether it was running or still waiting its turn.
    for _ in 0..3 {
        server.outcome().assert_refused(500);
    }
    assert_eq!(auth.stats().unwrap().address_queued, 0);
    // Every ticket came back: with the gate open, the address's one lookup runs again.
    gate.open();
    let fresh = Keys::generate();
    assert!(server.attempt(&context, &client(&fresh)).is_admitted());
    auth.stop();
}

#[test]
fn a_guess_queued_behind_the_ones_that_reach_the_threshold_is_throttled_not_verified() {
    use actix_zap::messages::BeforeVerificationForTests;
    use std::sync::Arc;
    let settings = actix_zap::Settings::default()
        .with_verifications_per_address(1)
        .with_address_queue(4)
        .with_throttle_pair_threshold(2);
    let (context, auth) = started_with(settings);
    let users = vec![("alice".to_owned(), hash_with("right", 64, 1))];
    block_on(auth.handle().send(AddPlainUsers::new("hashed", users))).unwrap();
    let seen = watch_decisions(&auth);
    let gate = Arc::new(Gate::default());
    let hold = Arc::clone(&gate);
    auth.send(BeforeVerificationForTests(Arc::new(move || hold.pass())))
        .unwrap();
    let server = Listening::new(&context, &Server::Plain, Some("hashed"));
    // Three guesses at once: one is verified (held), two wait their turn.
    let _guesses: Vec<zmq::Socket> = (0..3)
        .map(|_| server.connect(&context, &Client::Plain("alice", "wrong")))
        .collect();
    gate.wait_entered(1);
    wait_queued(&auth, 2);
    gate.open();
    for _ in 0..3 {
        server.outcome().assert_refused(400);
    }
    // The first two failures reach the pair's threshold: the third, decided again when its
    // turn came, is throttled without argon2.
    let events = reasons(&seen);
    let count = |reason: &str| events.iter().filter(|r| *r == reason).count();
    assert_eq!(count("Invalid password"), 2, "{events:?}");
    assert_eq!(count("Too many failures"), 1, "{events:?}");
    assert_eq!(auth.stats().unwrap().verifications, 2);
    auth.stop();
}

/// A request waiting its turn behind its address's cap is decided by the policy in force when
/// its turn comes: a key removed (by a message answered `Ok`) while it waits is refused.
#[test]
fn a_key_removed_while_its_request_waits_its_turn_is_refused() {
    use actix_zap::messages::RemoveCurveKeys;
    use std::sync::Arc;
    let settings = actix_zap::Settings::default()
        .with_lookups_per_address(1)
        .with_address_queue(1)
        .with_provider_deadline(PATIENCE);
    let (context, auth) = started_with(settings);
    let (running, waiting) = (Keys::generate(), Keys::generate());
    let gate = Arc::new(Gate::default());
    auth.configure_curve_callback(
        "queue",
        gated_provider(&gate, std::slice::from_ref(&running)),
    )
    .unwrap();
    let server_keys = Keys::generate();
    let server = Listening::new(&context, &Server::Curve(server_keys.clone()), Some("queue"));
    let client = |keys: &Keys| Client::Curve(server_keys.public, keys.clone());
    let _running = server.connect(&context, &client(&running));
    gate.wait_entered(1);
    let _waiting = server.connect(&context, &client(&waiting));
    wait_queued(&auth, 1);
    let removed = auth.send(RemoveCurveKeys::new("queue", [waiting.public]));
    assert!(removed.is_ok(), "{removed:?}");
    gate.open();
    let mut outcomes = [server.outcome(), server.outcome()];
    let admitted = outcomes.iter().filter(|o| o.is_admitted()).count();
    assert_eq!(admitted, 1, "only the key still trusted");
    let refused = outcomes.iter_mut().find(|o| !o.is_admitted()).unwrap();
    refused.assert_refused(400);
    assert_eq!(
        gate.entered(),
        1,
        "the removed key's provider was never asked"
    );
    auth.stop();
}
