//! Fault injection: providers and user-id mappings that fail, panic or never answer, a full
//! provider queue, and certificate directory reads that hang or panic (the in-flight bound is
//! in `backpressure.rs`). Each faulty client gets its status; everyone else keeps being
//! served.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use actix_zap::keys::CurvePublicKey;
use actix_zap::messages::ConfigureCurve;
use actix_zap::provider::{CurveVerdict, Provider};
use actix_zap::{
    Authenticator, ConfigError, ReloadError, Settings, ThreadAuthenticator, CURVE_ALLOW_ANY,
};

/// A short deadline keeps these tests quick; the default is 5 s.
fn started(settings: Settings) -> (zmq::Context, ThreadAuthenticator) {
    init_logging();
    let context = zmq::Context::new();
    let builder = Authenticator::builder().settings(settings);
    let auth = builder.start_thread(&context).unwrap();
    (context, auth)
}

fn quick() -> Settings {
    Settings::default().with_provider_deadline(Duration::from_millis(300))
}

#[test]
fn providers_that_never_answer_give_500_at_the_deadline_and_others_are_served() {
    let (ctx, auth) = started(quick());
    let server_keys = Keys::generate();
    auth.configure_curve_callback(
        "async-hang",
        Provider::from_async_fn(|_, _| futures::future::pending()),
    )
    .unwrap();
    // Blocks its worker for good: the documented cost of a stuck synchronous call.
    let (_never_sent, never) = std::sync::mpsc::channel::<()>();
    let never = std::sync::Mutex::new(never);
    auth.configure_curve_callback(
        "sync-hang",
        Provider::from_fn(move |_: &str, _: &CurvePublicKey| {
            let _ = never.lock().unwrap().recv();
            Ok(CurveVerdict::admit())
        }),
    )
    .unwrap();
    auth.configure_curve("fine", CURVE_ALLOW_ANY).unwrap();
    let server = Server::Curve(server_keys.clone());
    let client = Client::Curve(server_keys.public, Keys::generate());
    handshake(&ctx, &server, Some("async-hang"), &client).assert_refused(500);
    handshake(&ctx, &server, Some("sync-hang"), &client).assert_refused(500);
    assert!(handshake(&ctx, &server, Some("fine"), &client).is_admitted());
    auth.stop();
}

#[test]
fn a_user_id_mapping_that_fails_panics_or_hangs_gives_500() {
    let (ctx, auth) = started(quick());
    let server_keys = Keys::generate();
    auth.configure_curve("*", CURVE_ALLOW_ANY).unwrap();
    let server = Listening::new(&ctx, &Server::Curve(server_keys.clone()), Some("global"));
    let client = Client::Curve(server_keys.public, Keys::generate());
    let policy = auth.handle().policy().clone();
    let set = |mapper: actix_zap::policy::UserIdMapper| {
        futures::executor::block_on(policy.send(actix_zap::messages::SetCurveUserId(Some(mapper))))
            .unwrap()
            .unwrap()
    };

    set(Arc::new(|_: &CurvePublicKey| Err("directory down".into())));
    server.attempt(&ctx, &client).assert_refused(500);
    set(Arc::new(|_: &CurvePublicKey| panic!("mapper bug")));
    server.attempt(&ctx, &client).assert_refused(500);
    set(Arc::new(|_: &CurvePublicKey| loop {
        std::thread::park();
    }));
    server.attempt(&ctx, &client).assert_refused(500);
    auth.set_curve_user_id(|_| "fine".into()).unwrap();
    server.attempt(&ctx, &client).assert_admitted("fine");
    auth.stop();
}

#[test]
fn a_full_provider_queue_answers_300_instead_of_growing() {
    let settings = Settings::default()
        .with_provider_threads(1)
        .with_provider_queue(1)
        .with_provider_deadline(Duration::from_secs(10));
    let (ctx, auth) = started(settings);
    let server_keys = Keys::generate();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = std::sync::Mutex::new(release_rx);
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    auth.configure_curve_callback(
        "*",
        Provider::from_fn(move |_: &str, _: &CurvePublicKey| {
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = release_rx.lock().unwrap().recv();
            Ok(CurveVerdict::admit())
        }),
    )
    .unwrap();
    let client = Client::Curve(server_keys.public, Keys::generate());
    let servers: Vec<Listening> = (0..3)
        .map(|_| Listening::new(&ctx, &Server::Curve(server_keys.clone()), Some("d")))
        .collect();
    // First call occupies the only worker, second waits in the queue, third is refused.
    let _first = servers[0].connect(&ctx, &client);
    wait_for(&calls);
    let _second = servers[1].connect(&ctx, &client);
    // Connections race: let the second request be in flight before the third connects.
    let deadline = std::time::Instant::now() + PATIENCE;
    while auth.stats().unwrap().in_flight < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "second request never arrived"
        );
        std::thread::yield_now();
    }
    let _third = servers[2].connect(&ctx, &client);
    // The second is still queued, so the third finds the queue full.
    servers[2].outcome().assert_refused(300);
    release_tx.send(()).unwrap();
    release_tx.send(()).unwrap();
    assert!(servers[0].outcome().is_admitted());
    assert!(servers[1].outcome().is_admitted());
    drop(release_tx);
    auth.stop();
}

/// Stops the authenticator on another thread; fails the test if that does not return.
fn stop_within_patience(auth: ThreadAuthenticator) {
    let (done, stopped) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        auth.stop();
        let _ = done.send(());
    });
    stopped
        .recv_timeout(PATIENCE)
        .expect("stop() did not return while a directory read hangs");
}

/// A certificate directory (real files) whose client is admitted in domain "global", and a
/// CURVE server of that domain.
fn configured_directory(
    ctx: &zmq::Context,
    auth: &ThreadAuthenticator,
) -> (tempfile::TempDir, Listening, Client) {
    let (server_keys, client_keys) = (Keys::generate(), Keys::generate());
    let dir = tempfile::tempdir().unwrap();
    write_public(dir.path(), "client.key", &client_keys);
    assert_eq!(auth.configure_curve("*", dir.path()).unwrap().keys, 1);
    let server = Listening::new(ctx, &Server::Curve(server_keys.clone()), Some("global"));
    let client = Client::Curve(server_keys.public, client_keys);
    assert!(server.attempt(ctx, &client).is_admitted());
    (dir, server, client)
}

/// The same loader as a watch's: a directory read that hangs (an NFS stall) is a typed
/// timeout at the load's deadline, the domain refuses every CURVE client, and `stop()` does
/// not wait for the read.
#[test]
fn a_directory_read_that_hangs_fails_closed_with_a_typed_timeout_and_stop_returns() {
    let (ctx, auth) = started(Settings::default());
    let (dir, server, client) = configured_directory(&ctx, &auth);
    let (release, held) = std::sync::mpsc::channel::<()>();
    let held = std::sync::Mutex::new(held);
    let deadline = Duration::from_millis(300);
    let hanging = ConfigureCurve::directory("*", dir.path()).read_through(deadline, move |path| {
        // Blocks like an NFS stall, until the test ends.
        let _ = held.lock().unwrap().recv();
        std::fs::read(path)
    });
    let answer = auth.send(hanging);
    assert!(
        matches!(&answer, Err(ConfigError::LoadFailed(ReloadError::TimedOut { path, deadline: d }))
            if path == dir.path() && *d == deadline),
        "{answer:?}"
    );
    assert!(answer.unwrap_err().to_string().contains("took longer"));
    server.attempt(&ctx, &client).assert_refused(400);
    stop_within_patience(auth);
    drop(release);
}

/// A directory read that panics is a typed error; the domain fails closed until a later
/// configuration succeeds.
#[test]
fn a_directory_read_that_panics_is_a_typed_error_and_fails_closed() {
    let (ctx, auth) = started(Settings::default());
    let (dir, server, client) = configured_directory(&ctx, &auth);
    let panicking = ConfigureCurve::directory("*", dir.path())
        .read_through(PATIENCE, |_| panic!("a reader that panics"));
    let answer = auth.send(panicking);
    assert!(
        matches!(&answer, Err(ConfigError::LoadFailed(ReloadError::Panicked { path }))
            if path == dir.path()),
        "{answer:?}"
    );
    server.attempt(&ctx, &client).assert_refused(400);
    assert!(auth.is_running());
    assert_eq!(auth.configure_curve("*", dir.path()).unwrap().keys, 1);
    assert!(server.attempt(&ctx, &client).is_admitted());
    auth.stop();
}
