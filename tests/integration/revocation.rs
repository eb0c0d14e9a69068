//! Revocation you can rely on: once a narrowing call has returned, the narrower policy decides
//! every handshake from then on — including those already waiting on a provider — and the
//! caveats that remain behave as the README says.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::common::*;
use actix_zap::certs::CertStore;
use actix_zap::keys::CurvePublicKey;
use actix_zap::policy::MechanismKind;
use actix_zap::provider::{CurveVerdict, Provider};
use actix_zap::zap::Metadata;
use actix_zap::ServerSocket;
use tokio::sync::Notify;

/// An async provider that holds every key's first call until `release` is notified, then
/// answers with `verdict(key)`; later calls answer at once. `asked` counts calls.
struct Gate {
    provider: Provider,
    release: Arc<Notify>,
    asked: Arc<AtomicUsize>,
}

fn gate(verdict: impl Fn(&CurvePublicKey) -> CurveVerdict + Send + Sync + 'static) -> Gate {
    let release = Arc::new(Notify::new());
    let asked = Arc::new(AtomicUsize::new(0));
    let verdict = Arc::new(verdict);
    let (gate, counter) = (Arc::clone(&release), Arc::clone(&asked));
    let provider = Provider::from_async_fn(move |_, key| {
        let (gate, counter, verdict) = (gate.clone(), counter.clone(), verdict.clone());
        async move {
            if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                gate.notified().await;
            }
            Ok(verdict(&key))
        }
    });
    Gate {
        provider,
        release,
        asked,
    }
}

fn keys_of(keys: &[&Keys]) -> CertStore {
    let mut store = CertStore::new();
    for k in keys {
        store.insert(k.public, Metadata::empty());
    }
    store
}

/// Waits until `counter` reaches `n`.
fn wait_until(counter: &AtomicUsize, n: usize) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while counter.load(Ordering::SeqCst) < n {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing happened in time"
        );
        std::thread::yield_now();
    }
}

/// A CURVE client whose handshake waits on a held provider that will admit it.
struct Waiting {
    auth: actix_zap::ThreadAuthenticator,
    server: Listening,
    gate: Gate,
    _client: zmq::Socket,
    _context: zmq::Context,
}

impl Waiting {
    fn start(before: impl FnOnce(&actix_zap::ThreadAuthenticator)) -> Waiting {
        let (context, auth) = started();
        let server_keys = Keys::generate();
        let gate = gate(|_| CurveVerdict::admit());
        auth.configure_curve_callback("*", gate.provider.clone())
            .unwrap();
        before(&auth);
        let server = Listening::new(&context, &Server::Curve(server_keys.clone()), Some("d"));
        let client = server.connect(
            &context,
            &Client::Curve(server_keys.public, Keys::generate()),
        );
        wait_for(&gate.asked);
        Waiting {
            auth,
            server,
            gate,
            _client: client,
            _context: context,
        }
    }

    /// Lets the provider's first answer ("admit") come, and reports the handshake.
    fn released(&self) -> Outcome {
        self.gate.release.notify_one();
        self.server.outcome()
    }
}

#[test]
fn a_key_revoked_while_its_provider_is_asked_is_refused() {
    let waiting = Waiting::start(|_| {});
    // Narrowed to a key set without this key; the call has returned...
    let other = Keys::generate();
    waiting
        .auth
        .configure_curve_keys("*", keys_of(&[&other]))
        .unwrap();
    // ...so the provider's late "admit" must not be what decides.
    waiting.released().assert_refused(400);
    waiting.auth.stop();
}

#[test]
fn a_provider_replaced_while_asked_gives_way_to_the_new_one() {
    let waiting = Waiting::start(|_| {});
    let refusing = Provider::from_fn(|_: &str, _: &CurvePublicKey| Ok(CurveVerdict::Refuse));
    waiting
        .auth
        .configure_curve_callback("*", refusing)
        .unwrap();
    waiting.released().assert_refused(400);
    waiting.auth.stop();
}

#[test]
fn an_address_denied_while_a_provider_is_asked_is_refused() {
    let waiting = Waiting::start(|_| {});
    waiting.auth.deny(["127.0.0.1"]).unwrap();
    waiting.released().assert_refused(400);
    waiting.auth.stop();
}

#[test]
fn a_user_id_mapping_replaced_while_a_provider_is_asked_names_the_client() {
    let waiting = Waiting::start(|auth| {
        auth.set_curve_user_id(|_| "old-mapping".to_string())
            .unwrap()
    });
    waiting
        .auth
        .set_curve_user_id(|_| "new-mapping".to_string())
        .unwrap();
    // Decided again under the new policy: the provider is asked again, then the new mapping.
    waiting.released().assert_admitted("new-mapping");
    assert_eq!(waiting.gate.asked.load(Ordering::SeqCst), 2);
    waiting.auth.stop();
}

#[test]
fn an_unrelated_change_while_a_provider_is_asked_keeps_its_answer() {
    let waiting = Waiting::start(|_| {});
    // Another domain changes: the request is decided again, asks the same provider the same
    // question, and so takes the answer in hand instead of asking again.
    waiting
        .auth
        .configure_plain("elsewhere", [("admin", "secret")])
        .unwrap();
    assert!(waiting.released().is_admitted());
    assert_eq!(waiting.gate.asked.load(Ordering::SeqCst), 1);
    waiting.auth.stop();
}

#[test]
fn many_changes_while_a_provider_is_asked_end_in_the_last_one() {
    let waiting = Waiting::start(|_| {});
    let client = Keys::generate();
    for _ in 0..50 {
        waiting
            .auth
            .configure_curve_keys("*", keys_of(&[&client]))
            .unwrap();
    }
    waiting
        .auth
        .configure_curve_keys("*", CertStore::new())
        .unwrap();
    waiting.released().assert_refused(400);
    waiting.auth.stop();
}

#[test]
fn unconfigure_hands_a_domain_back_to_the_wildcard_fallback() {
    let (ctx, auth) = started();
    let server_keys = Keys::generate();
    let (fallback_client, own_client) = (Keys::generate(), Keys::generate());
    auth.configure_curve_keys("*", keys_of(&[&fallback_client]))
        .unwrap();
    auth.configure_curve_keys("d", keys_of(&[&own_client]))
        .unwrap();
    let server = Listening::new(&ctx, &Server::Curve(server_keys.clone()), Some("d"));
    let as_fallback = Client::Curve(server_keys.public, fallback_client.clone());
    server.attempt(&ctx, &as_fallback).assert_refused(400);
    // The one documented widening: the domain's own setting goes, "*" decides again.
    assert!(auth.unconfigure("d", MechanismKind::Curve).unwrap());
    server
        .attempt(&ctx, &as_fallback)
        .assert_admitted(&fallback_client.public.to_z85());
    auth.stop();
}

#[test]
fn a_system_that_stops_without_stop_leaves_hardened_servers_refusing() {
    init_logging();
    let context = zmq::Context::new();
    let server_keys = Keys::generate();
    // An authenticator on a System of its own, which then stops without `stop()`.
    let auth_context = context.clone();
    std::thread::spawn(move || {
        let system = actix::System::new();
        system.block_on(async {
            let auth = actix_zap::Authenticator::start(&auth_context).unwrap();
            auth.configure_curve("*", actix_zap::CURVE_ALLOW_ANY)
                .await
                .unwrap();
            actix::System::current().stop();
        });
        system.run().unwrap();
    })
    .join()
    .unwrap();
    let socket = ServerSocket::curve("global", server_keys.secret.clone())
        .build(&context, zmq::PULL)
        .unwrap();
    socket.set_handshake_ivl(2_000).unwrap();
    let server = Listening::from_socket(&context, socket);
    let client = Client::Curve(server_keys.public, Keys::generate());
    let outcome = server.attempt(&context, &client);
    assert!(!outcome.is_admitted(), "{outcome:?}");
}

/// A CURVE server socket that connects out to clients that bind: its session, and with it
/// its ZAP pipe, survives reconnects.
#[test]
fn a_late_answer_for_a_session_that_reconnected_is_discarded() {
    let (ctx, auth) = started();
    let server_keys = Keys::generate();
    let (first, second) = (Keys::generate(), Keys::generate());
    let first_key = first.public;
    // The first client's key is admitted, but only after the session has moved on; the
    // second's is refused. Each answer waits for its own release.
    let (release_first, release_second) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let asked = Arc::new(AtomicUsize::new(0));
    let (gates, counter) = (
        (release_first.clone(), release_second.clone()),
        asked.clone(),
    );
    let provider = Provider::from_async_fn(move |_, key| {
        let (gates, counter) = (gates.clone(), counter.clone());
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            if key == first_key {
                gates.0.notified().await;
                Ok(CurveVerdict::admit())
            } else {
                gates.1.notified().await;
                Ok(CurveVerdict::Refuse)
            }
        }
    });
    auth.configure_curve_callback("*", provider).unwrap();

    let socket = server_socket(&ctx, &Server::Curve(server_keys.clone()), Some("d"));
    socket.set_reconnect_ivl(20).unwrap();
    // Fields drop in order: the socket, then its monitor (whose thread ends with it).
    let server = Connecting {
        monitor: Monitor::attach(&ctx, &socket),
        socket,
    };
    let client = client_socket(&ctx, &Client::Curve(server_keys.public, first));
    client.bind("tcp://127.0.0.1:0").unwrap();
    let endpoint = client.get_last_endpoint().unwrap().unwrap();
    server.socket.connect(&endpoint).unwrap();
    wait_until(&asked, 1);
    // The first client leaves mid-handshake; the second takes its address (libzmq closes a
    // listener asynchronously, so the address may stay taken for a moment).
    drop(client);
    let client = client_socket(&ctx, &Client::Curve(server_keys.public, second));
    let deadline = std::time::Instant::now() + PATIENCE;
    while let Err(error) = client.bind(&endpoint) {
        assert!(std::time::Instant::now() < deadline, "rebinding: {error}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    wait_until(&asked, 2);
    // The first request's answer (200) comes now: it must not decide the second handshake.
    release_first.notify_one();
    let deadline = std::time::Instant::now() + PATIENCE;
    while auth.stats().unwrap().in_flight > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first answer never came"
        );
        std::thread::yield_now();
    }
    assert_eq!(auth.stats().unwrap().superseded, 1);
    release_second.notify_one();
    let succeeded = zmq::SocketEvent::HANDSHAKE_SUCCEEDED as u16;
    let refused = zmq::SocketEvent::HANDSHAKE_FAILED_AUTH as u16;
    loop {
        let (event, value) = server
            .monitor
            .events
            .recv_timeout(PATIENCE)
            .expect("an outcome");
        if event == succeeded {
            panic!("the second client was admitted by the first client's late answer");
        }
        if event == refused {
            assert_eq!(value, 400);
            break;
        }
    }
    drop(server);
    auth.stop();
}

struct Connecting {
    socket: zmq::Socket,
    monitor: Monitor,
}
