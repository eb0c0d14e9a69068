//! The in-flight bound applies backpressure (issue 18, item 8): beyond
//! `Settings::max_in_flight`, requests wait in libzmq for a slot instead of getting `300`,
//! and whatever the authenticator holds is still answered by its provider deadline.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use actix_zap::provider::{CurveVerdict, Provider};
use actix_zap::zap::StatusCode;
use actix_zap::{Authenticator, Settings, ThreadAuthenticator, CURVE_ALLOW_ANY};

fn started(settings: Settings) -> (zmq::Context, ThreadAuthenticator) {
    init_logging();
    let context = zmq::Context::new();
    let auth = Authenticator::builder()
        .settings(settings)
        .start_thread(&context)
        .unwrap();
    (context, auth)
}

/// An async provider that holds every request until the gate opens (then admits); `asked`
/// counts its calls, when the policy actor makes them (before it handles its next message, so
/// stats asked for afterwards see the count).
fn gated_provider() -> (Provider, Arc<tokio::sync::Semaphore>, Arc<AtomicUsize>) {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let asked = Arc::new(AtomicUsize::new(0));
    let (waiting, counter) = (Arc::clone(&gate), Arc::clone(&asked));
    let provider = Provider::from_async_fn(move |_, _| {
        counter.fetch_add(1, Ordering::SeqCst);
        let gate = Arc::clone(&waiting);
        async move {
            // The permit goes back when dropped: once opened, the gate stays open.
            let _permit = gate.acquire().await.expect("gate");
            Ok(CurveVerdict::admit())
        }
    });
    (provider, gate, asked)
}

/// Waits (bounded by `PATIENCE`) until the authenticator's stats satisfy `done`.
fn wait_for_stats(
    auth: &ThreadAuthenticator,
    what: &str,
    done: impl Fn(&actix_zap::messages::Stats) -> bool,
) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let stats = auth.stats().unwrap();
        if done(&stats) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: never happened; {stats:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn beyond_the_in_flight_bound_a_request_waits_for_a_slot_instead_of_300() {
    let (ctx, auth) = started(Settings::default().with_max_in_flight(1));
    let server_keys = Keys::generate();
    let (provider, release, asked) = held_provider();
    auth.configure_curve_callback("held", provider).unwrap();
    auth.configure_curve("other", CURVE_ALLOW_ANY).unwrap();
    let client = Client::Curve(server_keys.public, Keys::generate());
    let held = Listening::new(&ctx, &Server::Curve(server_keys.clone()), Some("held"));
    let other = Listening::new(&ctx, &Server::Curve(server_keys), Some("other"));

    let _waiting = held.connect(&ctx, &client);
    wait_for(&asked);
    // The one slot is taken: the other request (which needs no provider) stays in libzmq,
    // unread, and nobody is refused.
    let _other = other.connect(&ctx, &client);
    wait_for_stats(&auth, "the other request held back", |s| s.held_back == 1);
    let stats = auth.stats().unwrap();
    assert_eq!(stats.in_flight, 1);
    assert_eq!(stats.count(StatusCode::TryLater), 0);
    release.notify_one();
    assert!(held.outcome().is_admitted());
    // The freed slot reads the other request at once: no 300, no waiting for a reconnect.
    assert!(other.outcome().is_admitted());
    let stats = auth.stats().unwrap();
    assert_eq!(stats.count(StatusCode::TryLater), 0);
    assert_eq!(stats.count(StatusCode::Ok), 2);
    assert_eq!(stats.in_flight, 0);
    auth.stop();
}

#[test]
fn a_burst_larger_than_the_in_flight_bound_is_fully_admitted_without_300() {
    const BOUND: usize = 8;
    const CLIENTS: usize = 40;
    let (ctx, auth) = started(Settings::default().with_max_in_flight(BOUND));
    let server_keys = Keys::generate();
    let (provider, gate, asked) = gated_provider();
    auth.configure_curve_callback("storm", provider).unwrap();
    let server = Listening::new(&ctx, &Server::Curve(server_keys.clone()), Some("storm"));
    let clients: Vec<zmq::Socket> = (0..CLIENTS)
        .map(|_| server.connect(&ctx, &Client::Curve(server_keys.public, Keys::generate())))
        .collect();

    // The bound is full and more requests wait behind it.
    wait_for_stats(&auth, "the bound reached", |s| {
        s.in_flight == BOUND && s.held_back >= 1
    });
    // No request beyond the bound reached the provider, and none was refused.
    assert_eq!(asked.load(Ordering::SeqCst), BOUND);
    assert_eq!(auth.stats().unwrap().count(StatusCode::TryLater), 0);

    gate.add_permits(CLIENTS);
    for n in 0..CLIENTS {
        let outcome = server.outcome();
        assert!(outcome.is_admitted(), "client {n}: {outcome:?}");
    }
    let stats = auth.stats().unwrap();
    assert_eq!(stats.count(StatusCode::Ok), CLIENTS as u64);
    assert_eq!(stats.count(StatusCode::TryLater), 0);
    assert_eq!(asked.load(Ordering::SeqCst), CLIENTS);
    assert_eq!(stats.in_flight, 0);
    drop(clients);
    auth.stop();
}

#[test]
fn a_request_held_past_the_provider_deadline_gets_500_not_a_hang() {
    const BOUND: usize = 2;
    const CLIENTS: usize = 6;
    let deadline = Duration::from_millis(300);
    let settings = Settings::default()
        .with_max_in_flight(BOUND)
        .with_provider_deadline(deadline);
    let (ctx, auth) = started(settings);
    let server_keys = Keys::generate();
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&asked);
    auth.configure_curve_callback(
        "hung",
        Provider::from_async_fn(move |_, _| {
            counter.fetch_add(1, Ordering::SeqCst);
            futures::future::pending()
        }),
    )
    .unwrap();
    let server = Listening::new(&ctx, &Server::Curve(server_keys.clone()), Some("hung"));
    let start = Instant::now();
    let clients: Vec<zmq::Socket> = (0..CLIENTS)
        .map(|_| server.connect(&ctx, &Client::Curve(server_keys.public, Keys::generate())))
        .collect();
    // Every request is answered 500 at its deadline, those held back after the slots free:
    // the last of them in about CLIENTS / BOUND deadlines, never a hang and never a 300.
    for n in 0..CLIENTS {
        let outcome = server.outcome();
        assert!(
            matches!(outcome, Outcome::Refused(500)),
            "client {n}: {outcome:?}"
        );
    }
    let elapsed = start.elapsed();
    let stats = auth.stats().unwrap();
    assert_eq!(stats.count(StatusCode::InternalError), CLIENTS as u64);
    assert_eq!(stats.count(StatusCode::TryLater), 0);
    assert_eq!(asked.load(Ordering::SeqCst), CLIENTS);
    assert!(
        stats.held_back >= 1,
        "the bound never held a request back: {stats:?}"
    );
    assert_eq!(stats.in_flight, 0);
    // At least one request waited for a slot, so at least two deadlines passed.
    assert!(elapsed >= 2 * deadline, "{elapsed:?}");
    drop(clients);
    auth.stop();
}

#[test]
fn stopping_answers_held_back_requests_300_and_waits_only_for_those_in_flight() {
    let deadline = Duration::from_millis(300);
    let settings = Settings::default()
        .with_max_in_flight(1)
        .with_provider_deadline(deadline);
    let (ctx, auth) = started(settings);
    let server_keys = Keys::generate();
    let (provider, _gate, asked) = gated_provider();
    auth.configure_curve_callback("held", provider).unwrap();
    auth.configure_curve("other", CURVE_ALLOW_ANY).unwrap();
    let client = Client::Curve(server_keys.public, Keys::generate());
    let held = Listening::new(&ctx, &Server::Curve(server_keys.clone()), Some("held"));
    let other = Listening::new(&ctx, &Server::Curve(server_keys), Some("other"));
    let _first = held.connect(&ctx, &client);
    wait_for(&asked);
    let _second = other.connect(&ctx, &client);
    wait_for_stats(&auth, "the second request held back", |s| s.held_back == 1);

    let stopping = {
        let auth = auth.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            auth.stop();
            start.elapsed()
        })
    };
    // The held-back request is read and told to come back later; the one in flight gets its
    // answer at its deadline, and then stop returns.
    other.outcome().assert_refused(300);
    held.outcome().assert_refused(500);
    let took = stopping.join().unwrap();
    assert!(took < PATIENCE, "{took:?}");
}
