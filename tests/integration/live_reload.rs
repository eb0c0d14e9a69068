//! Live reload end to end: watched certificate directories and password files, with real
//! libzmq handshakes over tcp. Every wait is for a reload report or a handshake outcome;
//! nothing sleeps to synchronise. Latencies are printed, never asserted (speed goals live in
//! the measurement tools).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use actix_zap::messages::{ConfigurePlain, Reloaded, TakeOver, Watch};
use actix_zap::policy::PolicyError;
use actix_zap::{ConfigError, WatchError};

/// A watch whose reloads arrive on a channel, so tests wait for the real signal.
fn reload_channel() -> (
    impl Fn(&Reloaded) + Send + Sync + 'static,
    Receiver<Reloaded>,
) {
    let (tx, rx) = channel();
    let tx = Mutex::new(tx);
    (
        move |r: &Reloaded| {
            let _ = tx.lock().unwrap().send(r.clone());
        },
        rx,
    )
}

/// Waits for the first reload that satisfies `wanted` (earlier ones are other changes).
fn reload_where(reloads: &Receiver<Reloaded>, wanted: impl Fn(&Reloaded) -> bool) -> Reloaded {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let reloaded = reloads
            .recv_timeout(left)
            .expect("the awaited reload did not come");
        if wanted(&reloaded) {
            return reloaded;
        }
    }
}

fn watches(auth: &actix_zap::ThreadAuthenticator) -> Vec<Reloaded> {
    auth.watches().unwrap()
}

/// Stops the authenticator on another thread; fails the test if that does not return.
fn stop_within_patience(auth: actix_zap::ThreadAuthenticator) {
    let (done, stopped) = channel();
    std::thread::spawn(move || {
        auth.stop();
        let _ = done.send(());
    });
    stopped
        .recv_timeout(PATIENCE)
        .expect("stop() did not return while a read hangs");
}

/// Rewrites `file` with `text` and puts its modification time back, as `cp -p`,
/// `rsync -t --inplace` and `touch -r` do.
fn rewrite_keeping_mtime(file: &Path, text: &str) {
    let mtime = std::fs::metadata(file).unwrap().modified().unwrap();
    std::fs::write(file, text).unwrap();
    std::fs::File::options()
        .write(true)
        .open(file)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(std::fs::metadata(file).unwrap().modified().unwrap(), mtime);
}

/// Attempts as `client` until refused; the time from `since` to that refusal.
fn refused_after(
    ctx: &zmq::Context,
    server: &Listening,
    client: &Client,
    since: Instant,
) -> Duration {
    let deadline = since + PATIENCE;
    while server.attempt(ctx, client).is_admitted() {
        assert!(Instant::now() < deadline, "never refused");
    }
    since.elapsed()
}

#[test]
fn a_watched_directory_admits_new_keys_and_refuses_deleted_ones_by_itself() {
    let (ctx, auth) = started();
    let dir = tempfile::tempdir().unwrap();
    let (server_keys, alice, bob) = (Keys::generate(), Keys::generate(), Keys::generate());
    write_public(dir.path(), "bob.key", &bob);
    let (on_reload, reloads) = reload_channel();
    let first = auth
        .watch(Watch::curve("*", dir.path()).on_reload(on_reload))
        .unwrap();
    assert_eq!(first.entries, 1);
    let _ = reloads.recv_timeout(PATIENCE).unwrap(); // the first load
    let server = Listening::new(&ctx, &Server::Curve(server_keys.clone()), Some("d"));
    let as_alice = Client::Curve(server_keys.public, alice.clone());
    let as_bob = Client::Curve(server_keys.public, bob.clone());
    server.attempt(&ctx, &as_alice).assert_refused(400);

    let changed = Instant::now();
    write_public(dir.path(), "alice.key", &alice);
    reload_where(&reloads, |r| r.entries == 2);
    println!("new key applied after {:?}", changed.elapsed());
    server
        .attempt(&ctx, &as_alice)
        .assert_admitted(&alice.public.to_z85());

    // Bob's key is deleted and another file is broken: Bob is refused, Alice stays, the
    // broken file is reported.
    std::fs::remove_file(dir.path().join("bob.key")).unwrap();
    std::fs::write(
        dir.path().join("broken.key"),
        "curve\n\tpublic-key = \"x\"\n",
    )
    .unwrap();
    reload_where(&reloads, |r| r.entries == 1 && r.rejected.len() == 1);
    server.attempt(&ctx, &as_bob).assert_refused(400);
    server
        .attempt(&ctx, &as_alice)
        .assert_admitted(&alice.public.to_z85());

    // The directory disappears: everyone is refused, and it is reported.
    std::fs::remove_dir_all(dir.path()).unwrap();
    reload_where(&reloads, |r| r.error.is_some());
    server.attempt(&ctx, &as_alice).assert_refused(400);
    assert!(auth.handle().is_running());
    auth.stop();
}

#[test]
fn a_watched_password_file_applies_changes_and_fails_closed_when_removed() {
    let (ctx, auth) = started();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("passwords");
    std::fs::write(&file, "# users\nadmin=one\n").unwrap();
    auth.configure_plain("*", [("admin", "fallback")]).unwrap();
    let (on_reload, reloads) = reload_channel();
    auth.watch(Watch::plain("global", &file).on_reload(on_reload))
        .unwrap();
    let _ = reloads.recv_timeout(PATIENCE).unwrap();
    let server = Listening::new(&ctx, &Server::Plain, Some("global"));
    server
        .attempt(&ctx, &Client::Plain("admin", "one"))
        .assert_admitted("admin");

    std::fs::write(&file, "admin=two\n").unwrap();
    assert_eq!(reloads.recv_timeout(PATIENCE).unwrap().entries, 1);
    server
        .attempt(&ctx, &Client::Plain("admin", "one"))
        .assert_refused(400);
    server
        .attempt(&ctx, &Client::Plain("admin", "two"))
        .assert_admitted("admin");

    std::fs::remove_file(&file).unwrap();
    reload_where(&reloads, |r| r.error.is_some());
    // No fallback to "*": the watched domain refuses everyone until the file is back.
    server
        .attempt(&ctx, &Client::Plain("admin", "fallback"))
        .assert_refused(400);
    assert!(watches(&auth)[0].error.is_some());
    // By hand, replacing the watched table is refused (typed, naming the watch) ...
    let refused = auth.configure_plain("global", [("admin", "three")]);
    match refused {
        Err(ConfigError::Policy(PolicyError::OwnedBy { owner, .. })) => {
            assert!(owner.contains("passwords"), "{owner}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(watches(&auth).len(), 1);
    // ... unless it takes over, which ends the watch.
    let take_over = ConfigurePlain::new("global", [("admin", "three")]).take_over();
    auth.send(take_over).unwrap();
    assert!(watches(&auth).is_empty());
    server
        .attempt(&ctx, &Client::Plain("admin", "three"))
        .assert_admitted("admin");
    auth.stop();
}

/// Item a: the old password stops working after a same-size rewrite with the mtime put
/// back, through kernel notifications and through polling alone.
#[test]
fn a_same_size_rewrite_with_the_mtime_restored_is_noticed() {
    for polling in [false, true] {
        let (ctx, auth) = started();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("passwords");
        std::fs::write(&file, "admin=one\n").unwrap();
        let (on_reload, reloads) = reload_channel();
        let mut watch = Watch::plain("global", &file)
            .every(Duration::from_millis(50))
            .on_reload(on_reload);
        if polling {
            watch = watch.polling_only();
        }
        auth.watch(watch).unwrap();
        let _ = reloads.recv_timeout(PATIENCE).unwrap();
        let server = Listening::new(&ctx, &Server::Plain, Some("global"));
        server
            .attempt(&ctx, &Client::Plain("admin", "one"))
            .assert_admitted("admin");

        rewrite_keeping_mtime(&file, "admin=two\n");
        reload_where(&reloads, |r| r.entries == 1 && r.error.is_none());
        // A reload may have caught the file before its mtime was put back; either way the
        // installed table is the new one once the file holds still.
        let deadline = Instant::now() + PATIENCE;
        while server
            .attempt(&ctx, &Client::Plain("admin", "one"))
            .is_admitted()
        {
            assert!(Instant::now() < deadline, "the old password stays valid");
            reloads.recv_timeout(PATIENCE).expect("a reload");
        }
        server
            .attempt(&ctx, &Client::Plain("admin", "two"))
            .assert_admitted("admin");
        auth.stop();
    }
}

/// Rewrites `file` every 100 ms until dropped.
struct Churn {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Churn {
    fn start(file: PathBuf, text: String) -> Churn {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                std::fs::write(&file, &text).unwrap();
                std::thread::sleep(Duration::from_millis(100)); // the load, not a wait
            }
        });
        Churn {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Churn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Item b: a directory where another file never holds still does not delay a deletion.
#[test]
fn a_deleted_key_is_refused_at_once_while_another_file_is_rewritten_every_100_ms() {
    for polling in [false, true] {
        let (ctx, auth) = started();
        let dir = tempfile::tempdir().unwrap();
        let (server_keys, alice, bob, busy) = (
            Keys::generate(),
            Keys::generate(),
            Keys::generate(),
            Keys::generate(),
        );
        write_public(dir.path(), "alice.key", &alice);
        write_public(dir.path(), "bob.key", &bob);
        write_public(dir.path(), "busy.key", &busy);
        let busy_text = std::fs::read_to_string(dir.path().join("busy.key")).unwrap();
        let (on_reload, reloads) = reload_channel();
        let mut watch = Watch::curve("d", dir.path()).on_reload(on_reload);
        if polling {
            watch = watch.polling_only();
        }
        assert_eq!(auth.watch(watch).unwrap().entries, 3);
        let server = Listening::new(&ctx, &Server::Curve(server_keys.clone()), Some("d"));
        let as_bob = Client::Curve(server_keys.public, bob.clone());
        server
            .attempt(&ctx, &as_bob)
            .assert_admitted(&bob.public.to_z85());

        let churn = Churn::start(dir.path().join("busy.key"), busy_text);
        let deleted = Instant::now();
        std::fs::remove_file(dir.path().join("bob.key")).unwrap();
        reload_where(&reloads, |r| r.entries == 2);
        let took = refused_after(&ctx, &server, &as_bob, deleted);
        let mode = if polling { "polling" } else { "notifications" };
        println!("{mode}: deleted key refused {took:?} after the unlink, under churn");
        server.attempt(&ctx, &as_bob).assert_refused(400);
        drop(churn);
        let as_alice = Client::Curve(server_keys.public, alice.clone());
        server
            .attempt(&ctx, &as_alice)
            .assert_admitted(&alice.public.to_z85());
        auth.stop();
    }
}

/// Item c: the polling fallback alone applies a deletion.
#[test]
fn through_the_polling_fallback_a_deleted_key_is_refused() {
    let (ctx, auth) = started();
    let dir = tempfile::tempdir().unwrap();
    let (server_keys, alice, bob) = (Keys::generate(), Keys::generate(), Keys::generate());
    write_public(dir.path(), "alice.key", &alice);
    write_public(dir.path(), "bob.key", &bob);
    let (on_reload, reloads) = reload_channel();
    let watch = Watch::curve("d", dir.path())
        .polling_only()
        .on_reload(on_reload);
    assert_eq!(auth.watch(watch).unwrap().entries, 2);
    let server = Listening::new(&ctx, &Server::Curve(server_keys.clone()), Some("d"));
    let as_bob = Client::Curve(server_keys.public, bob.clone());
    server
        .attempt(&ctx, &as_bob)
        .assert_admitted(&bob.public.to_z85());
    let deleted = Instant::now();
    std::fs::remove_file(dir.path().join("bob.key")).unwrap();
    reload_where(&reloads, |r| r.entries == 1);
    let took = refused_after(&ctx, &server, &as_bob, deleted);
    println!("polling (250 ms): deleted key refused {took:?} after the unlink");
    auth.stop();
}

/// A watched pyzmq directory that gains files its layout does not read (CZMQ's `*.cert`, a
/// FIFO named like a certificate) reports them by name, as a `ConfigureCurve` would, without
/// opening the FIFO; once they are gone, the report says nothing more.
#[test]
fn a_watched_directory_names_the_files_it_passes_over_as_they_come_and_go() {
    let (_ctx, auth) = started();
    let dir = tempfile::tempdir().unwrap();
    write_public(dir.path(), "alice.key", &Keys::generate());
    let (on_reload, reloads) = reload_channel();
    let first = auth
        .watch(Watch::curve("*", dir.path()).on_reload(on_reload))
        .unwrap();
    assert_eq!((first.entries, &first.warning), (1, &None));

    write_public(dir.path(), "bob.cert", &Keys::generate());
    let pipe = dir.path().join("pipe.key");
    let made = std::process::Command::new("mkfifo")
        .arg(&pipe)
        .status()
        .unwrap();
    assert!(made.success());
    let named = reload_where(&reloads, |r| r.warning.is_some() && !r.rejected.is_empty());
    assert_eq!(named.entries, 1);
    let warning = named.warning.unwrap();
    assert!(warning.contains("(bob.cert)"), "{warning}");
    assert!(
        named.rejected[0]
            .to_string()
            .contains("pipe.key: not a regular file"),
        "{:?}",
        named.rejected
    );

    std::fs::remove_file(dir.path().join("bob.cert")).unwrap();
    std::fs::remove_file(&pipe).unwrap();
    reload_where(&reloads, |r| r.warning.is_none() && r.rejected.is_empty());
    stop_within_patience(auth);
}

/// What the test reader does on its next call.
const READ: u8 = 0;
const HANG: u8 = 1;
const PANIC: u8 = 2;

fn error_says(reloaded: &Reloaded, words: &str) -> bool {
    reloaded
        .error
        .as_ref()
        .is_some_and(|e| e.to_string().contains(words))
}

/// Item d: a read that hangs or panics fails the domain closed, is reported, does not wedge
/// the watch, and does not keep `stop()` from returning.
#[test]
fn a_hanging_or_panicking_read_fails_closed_and_stop_still_returns() {
    let (ctx, auth) = started();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("passwords");
    std::fs::write(&file, "admin=one\n").unwrap();
    let mode = Arc::new(AtomicU8::new(READ));
    let (release, released) = channel::<()>();
    let released = Mutex::new(released);
    let reading = Arc::clone(&mode);
    let (on_reload, reloads) = reload_channel();
    let watch = Watch::plain("global", &file)
        .every(Duration::from_millis(20))
        .read_deadline(Duration::from_secs(1))
        .on_reload(on_reload)
        .read_through(move |path| match reading.load(Ordering::SeqCst) {
            HANG => {
                // Blocks like an NFS stall, until the test releases it (or forever).
                let _ = released.lock().unwrap().recv();
                std::fs::read(path)
            }
            PANIC => panic!("a reader that panics"),
            _ => std::fs::read(path),
        });
    assert_eq!(auth.watch(watch).unwrap().error, None);
    let server = Listening::new(&ctx, &Server::Plain, Some("global"));
    let admin = Client::Plain("admin", "one");
    server.attempt(&ctx, &admin).assert_admitted("admin");

    // A read hangs: past the deadline the domain refuses everyone, and says so. (The file is
    // written again so that a look reads it: an unchanged file whose change time is over a
    // second old is not read again just to hash it.)
    mode.store(HANG, Ordering::SeqCst);
    std::fs::write(&file, "admin=one\n").unwrap();
    reload_where(&reloads, |r| error_says(r, "took longer"));
    server.attempt(&ctx, &admin).assert_refused(400);
    assert!(watches(&auth)[0].error.is_some());
    // The read comes back: the watch goes on by itself.
    mode.store(READ, Ordering::SeqCst);
    release.send(()).unwrap();
    reload_where(&reloads, |r| r.error.is_none() && r.entries == 1);
    server.attempt(&ctx, &admin).assert_admitted("admin");

    // A read panics: the same.
    mode.store(PANIC, Ordering::SeqCst);
    std::fs::write(&file, "admin=one\n").unwrap();
    reload_where(&reloads, |r| error_says(r, "panicked"));
    server.attempt(&ctx, &admin).assert_refused(400);
    mode.store(READ, Ordering::SeqCst);
    reload_where(&reloads, |r| r.error.is_none());
    server.attempt(&ctx, &admin).assert_admitted("admin");

    // A read hangs for good: stop() returns all the same.
    mode.store(HANG, Ordering::SeqCst);
    std::fs::write(&file, "admin=one\n").unwrap();
    reload_where(&reloads, |r| error_says(r, "took longer"));
    server.attempt(&ctx, &admin).assert_refused(400);
    stop_within_patience(auth);
    drop(release);
}

/// Item d, end to end: a FIFO put in place of the watched file is never opened for a
/// blocking read; it is reported, the domain fails closed, and stop() returns.
#[test]
fn a_fifo_in_place_of_a_watched_file_is_refused_and_reported() {
    let (ctx, auth) = started();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("passwords");
    std::fs::write(&file, "admin=one\n").unwrap();
    let (on_reload, reloads) = reload_channel();
    auth.watch(Watch::plain("global", &file).on_reload(on_reload))
        .unwrap();
    let server = Listening::new(&ctx, &Server::Plain, Some("global"));
    let admin = Client::Plain("admin", "one");
    server.attempt(&ctx, &admin).assert_admitted("admin");

    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    std::fs::rename(&fifo, &file).unwrap();
    let report = reload_where(&reloads, |r| r.error.is_some());
    assert!(
        report
            .error
            .as_ref()
            .unwrap()
            .to_string()
            .contains("not a regular file"),
        "{report:?}"
    );
    server.attempt(&ctx, &admin).assert_refused(400);

    // The watch goes on: a regular file again is loaded again.
    let replacement = dir.path().join("new");
    std::fs::write(&replacement, "admin=one\n").unwrap();
    std::fs::rename(&replacement, &file).unwrap();
    reload_where(&reloads, |r| r.error.is_none());
    server.attempt(&ctx, &admin).assert_admitted("admin");
    stop_within_patience(auth);
}

/// Item e: a refused `ConfigurePlain` changes nothing, not even the domain's watch.
#[test]
fn a_refused_configure_plain_leaves_the_watch_running() {
    let (ctx, auth) = started();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("passwords");
    std::fs::write(&file, "admin=one\n").unwrap();
    let (on_reload, reloads) = reload_channel();
    auth.watch(Watch::plain("global", &file).on_reload(on_reload))
        .unwrap();
    let _ = reloads.recv_timeout(PATIENCE).unwrap();
    let empty: [(&str, &str); 0] = [];
    assert!(matches!(
        auth.configure_plain("global", empty),
        Err(ConfigError::Policy(_))
    ));
    assert_eq!(watches(&auth).len(), 1);

    // Later edits still apply.
    std::fs::write(&file, "admin=two\n").unwrap();
    reload_where(&reloads, |r| r.entries == 1);
    let server = Listening::new(&ctx, &Server::Plain, Some("global"));
    server
        .attempt(&ctx, &Client::Plain("admin", "one"))
        .assert_refused(400);
    server
        .attempt(&ctx, &Client::Plain("admin", "two"))
        .assert_admitted("admin");
    auth.stop();
}

/// Item f: an interval below the 10 ms floor is refused with a typed error, and the refused
/// message changes nothing (the running watch stays).
#[test]
fn a_watch_interval_below_the_floor_is_refused_and_changes_nothing() {
    let (ctx, auth) = started();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("passwords");
    std::fs::write(&file, "admin=one\n").unwrap();
    let (on_reload, reloads) = reload_channel();
    auth.watch(Watch::plain("global", &file).on_reload(on_reload))
        .unwrap();
    let _ = reloads.recv_timeout(PATIENCE).unwrap(); // the first load
    for interval in [Duration::ZERO, Duration::from_millis(9)] {
        let refused = auth.watch(Watch::plain("global", &file).every(interval));
        assert!(
            matches!(
                refused,
                Err(ConfigError::Watch(WatchError::IntervalTooShort { interval: i, floor }))
                    if i == interval && floor == Watch::MIN_INTERVAL
            ),
            "{refused:?}"
        );
    }
    assert_eq!(watches(&auth).len(), 1);
    std::fs::write(&file, "admin=two\n").unwrap();
    reload_where(&reloads, |r| r.entries == 1 && r.error.is_none());
    let server = Listening::new(&ctx, &Server::Plain, Some("global"));
    server
        .attempt(&ctx, &Client::Plain("admin", "two"))
        .assert_admitted("admin");
    auth.stop();
}

/// A rough distribution of deletion → first refused handshake, for notifications and for
/// polling, in a directory of 1,000 keys. Run with
/// `cargo test --release --test integration live_reload:: -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a test"]
fn deletion_to_refusal_latency() {
    const FILES: usize = 1_000;
    const TRIALS: usize = 50;
    for polling in [false, true] {
        let (ctx, auth) = started();
        let dir = tempfile::tempdir().unwrap();
        for i in 0..FILES - 1 {
            write_public(dir.path(), &format!("k{i:04}.key"), &Keys::generate());
        }
        let (on_reload, reloads) = reload_channel();
        let mut watch = Watch::curve("d", dir.path()).on_reload(on_reload);
        if polling {
            watch = watch.polling_only();
        }
        auth.watch(watch).unwrap();
        let server_keys = Keys::generate();
        let server = Listening::new(&ctx, &Server::Curve(server_keys.clone()), Some("d"));
        let mut took = Vec::new();
        for _ in 0..TRIALS {
            let victim = Keys::generate();
            write_public(dir.path(), "victim.key", &victim);
            reload_where(&reloads, |r| r.entries == FILES);
            let client = Client::Curve(server_keys.public, victim.clone());
            server
                .attempt(&ctx, &client)
                .assert_admitted(&victim.public.to_z85());
            let deleted = Instant::now();
            std::fs::remove_file(dir.path().join("victim.key")).unwrap();
            took.push(refused_after(&ctx, &server, &client, deleted));
            reload_where(&reloads, |r| r.entries == FILES - 1);
        }
        took.sort();
        let mode = if polling {
            "polling 250 ms"
        } else {
            "notifications"
        };
        println!(
            "{mode}, {FILES} files, {TRIALS} trials: p50 {:?}, p99 {:?}, max {:?}",
            took[TRIALS / 2],
            took[TRIALS * 99 / 100],
            took[TRIALS - 1]
        );
        auth.stop();
    }
}
