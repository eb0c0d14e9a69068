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
