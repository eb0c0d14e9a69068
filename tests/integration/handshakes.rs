//! Every capability proved by real libzmq handshakes over tcp on 127.0.0.1, each test with
//! its own context and its own authenticator (one ZAP handler per context).

use crate::common::*;
use actix_zap::certs::{Certificate, Flavour};
use actix_zap::keys::CurvePublicKey;
use actix_zap::messages::EventMechanism;
use actix_zap::policy::GssapiPolicy;
use actix_zap::provider::{Admission, CurveVerdict, Provider};
use actix_zap::zap::{Metadata, RequestBuilder, StatusCode};
use actix_zap::{ConfigError, StartError, ThreadAuthenticator, CURVE_ALLOW_ANY};

#[test]
fn linked_libzmq_has_curve() {
    assert_eq!(zmq::has("curve"), Some(true));
}

#[test]
fn null_with_domain_follows_allow_list() {
    let (ctx, auth) = started();
    auth.allow(["127.0.0.1"]).unwrap();
    handshake(&ctx, &Server::Null, Some("global"), &Client::Null).assert_admitted("anonymous");
    auth.stop();

    let (ctx, auth) = started();
    auth.allow(["10.9.9.9"]).unwrap();
    handshake(&ctx, &Server::Null, Some("global"), &Client::Null).assert_refused(400);
    auth.stop();
}

#[test]
fn null_with_domain_follows_deny_list() {
    let (ctx, auth) = started();
    auth.deny(["127.0.0.0/8"]).unwrap();
    handshake(&ctx, &Server::Null, Some("global"), &Client::Null).assert_refused(400);
    assert!(matches!(
        auth.allow(["127.0.0.1"]),
        Err(ConfigError::Policy(_))
    ));
    auth.stop();
}

#[test]
fn plain_checks_passwords_users_and_domains() {
    let (ctx, auth) = started();
    auth.configure_plain("global", [("admin", "secret")])
        .unwrap();
    let server = Listening::new(&ctx, &Server::Plain, Some("global"));
    server
        .attempt(&ctx, &Client::Plain("admin", "secret"))
        .assert_admitted("admin");
    server
        .attempt(&ctx, &Client::Plain("admin", "wrong"))
        .assert_refused(400);
    server
        .attempt(&ctx, &Client::Plain("nobody", "secret"))
        .assert_refused(400);
    let other = Listening::new(&ctx, &Server::Plain, Some("other"));
    other
        .attempt(&ctx, &Client::Plain("admin", "secret"))
        .assert_refused(400);
    auth.stop();
}

#[test]
fn plain_star_covers_every_domain_without_its_own_table() {
    let (ctx, auth) = started();
    auth.configure_plain("*", [("guest", "guest")]).unwrap();
    auth.configure_plain("vip", [("boss", "1234")]).unwrap();
    for domain in [None, Some("global"), Some("anything")] {
        handshake(
            &ctx,
            &Server::Plain,
            domain,
            &Client::Plain("guest", "guest"),
        )
        .assert_admitted("guest");
    }
    handshake(
        &ctx,
        &Server::Plain,
        Some("vip"),
        &Client::Plain("boss", "1234"),
    )
    .assert_admitted("boss");
    handshake(
        &ctx,
        &Server::Plain,
        Some("vip"),
        &Client::Plain("guest", "guest"),
    )
    .assert_refused(400);
    auth.stop();
}

#[test]
fn curve_directory_admits_known_keys_and_a_reload_drops_removed_ones() {
    let (ctx, auth) = started();
    let dir = tempfile::tempdir().unwrap();
    let (server_keys, alice, bob) = (Keys::generate(), Keys::generate(), Keys::generate());
    write_public(dir.path(), "alice.key", &alice);
    write_public(dir.path(), "bob.key", &bob);
    let report = auth.configure_curve("*", dir.path()).unwrap();
    assert_eq!(report.keys, 2);

    let server = Listening::new(&ctx, &Server::Curve(server_keys.clone()), Some("global"));
    let as_alice = Client::Curve(server_keys.public, alice.clone());
    let as_bob = Client::Curve(server_keys.public, bob.clone());
    let stranger = Client::Curve(server_keys.public, Keys::generate());
    server
        .attempt(&ctx, &as_alice)
        .assert_admitted(&alice.public.to_z85());
    server
        .attempt(&ctx, &as_bob)
        .assert_admitted(&bob.public.to_z85());
    server.attempt(&ctx, &stranger).assert_refused(400);

    std::fs::remove_file(dir.path().join("bob.key")).unwrap();
    assert_eq!(auth.configure_curve("*", dir.path()).unwrap().keys, 1);
    server.attempt(&ctx, &as_bob).assert_refused(400);
    server
        .attempt(&ctx, &as_alice)
        .assert_admitted(&alice.public.to_z85());
    auth.stop();
}

#[test]
fn a_missing_directory_is_an_error_and_the_domain_refuses_everyone() {
    let (ctx, auth) = started();
    let server_keys = Keys::generate();
    auth.configure_curve("global", CURVE_ALLOW_ANY).unwrap();
    let missing = std::env::temp_dir().join("actix-zap-no-such-directory");
    assert!(matches!(
        auth.configure_curve("global", &missing),
        Err(ConfigError::Certificates(_))
    ));
    let client = Client::Curve(server_keys.public, Keys::generate());
    handshake(&ctx, &Server::Curve(server_keys), Some("global"), &client).assert_refused(400);
    auth.stop();
}

#[test]
fn allow_any_in_one_domain_does_not_leak_to_another() {
    let (ctx, auth) = started();
    let server_keys = Keys::generate();
    let dir = tempfile::tempdir().unwrap();
    auth.configure_curve("open", CURVE_ALLOW_ANY).unwrap();
    auth.configure_curve("closed", dir.path()).unwrap();
    let client = Client::Curve(server_keys.public, Keys::generate());
    let server = Server::Curve(server_keys);
    assert!(handshake(&ctx, &server, Some("open"), &client).is_admitted());
    handshake(&ctx, &server, Some("closed"), &client).assert_refused(400);
    handshake(&ctx, &server, Some("unconfigured"), &client).assert_refused(400);
    auth.stop();
}

#[test]
fn synchronous_and_asynchronous_providers_admit_and_refuse() {
    let (ctx, auth) = started();
    let server_keys = Keys::generate();
    let (trusted, untrusted) = (Keys::generate(), Keys::generate());
    let good = trusted.public;
    auth.configure_curve_callback(
        "sync",
        Provider::from_fn(move |_: &str, key: &CurvePublicKey| Ok((*key == good).into())),
    )
    .unwrap();
    auth.configure_curve_callback(
        "async",
        Provider::from_async_fn(move |_domain, key| async move {
            tokio::task::yield_now().await;
            if key == good {
                Ok(CurveVerdict::Admit(Admission {
                    user_id: Some("trusted-user".into()),
                    metadata: Metadata::from_pairs([("Role", "admin")]).unwrap(),
                }))
            } else {
                Ok(CurveVerdict::Refuse)
            }
        }),
    )
    .unwrap();
    let server = Server::Curve(server_keys.clone());
    let as_trusted = Client::Curve(server_keys.public, trusted.clone());
    let as_untrusted = Client::Curve(server_keys.public, untrusted);

    handshake(&ctx, &server, Some("sync"), &as_trusted).assert_admitted(&good.to_z85());
    handshake(&ctx, &server, Some("sync"), &as_untrusted).assert_refused(400);
    let mut admitted = handshake(&ctx, &server, Some("async"), &as_trusted);
    assert_eq!(admitted.user_id(), "trusted-user");
    assert_eq!(admitted.property("Role").as_deref(), Some("admin"));
    handshake(&ctx, &server, Some("async"), &as_untrusted).assert_refused(400);
    auth.stop();
}

#[test]
fn providers_that_fail_or_panic_give_500_and_the_handler_keeps_serving() {
    let (ctx, auth) = started();
    let server_keys = Keys::generate();
    auth.configure_curve_callback(
        "error",
        Provider::from_fn(|_: &str, _: &CurvePublicKey| Err("database down".into())),
    )
    .unwrap();
    auth.configure_curve_callback(
        "panic",
        Provider::from_fn(|_: &str, _: &CurvePublicKey| panic!("provider bug")),
    )
    .unwrap();
    auth.configure_curve_callback(
        "async-panic",
        Provider::from_async_fn(|_, _| async { panic!("async provider bug") }),
    )
    .unwrap();
    auth.configure_curve("fine", CURVE_ALLOW_ANY).unwrap();
    let server = Server::Curve(server_keys.clone());
    let client = Client::Curve(server_keys.public, Keys::generate());
    for domain in ["error", "panic", "async-panic"] {
        handshake(&ctx, &server, Some(domain), &client).assert_refused(500);
    }
    assert!(handshake(&ctx, &server, Some("fine"), &client).is_admitted());
    auth.stop();
}

#[test]
fn user_id_is_the_z85_key_by_default_and_can_be_mapped() {
    let (ctx, auth) = started();
    let server_keys = Keys::generate();
    let client_keys = Keys::generate();
    auth.configure_curve("*", CURVE_ALLOW_ANY).unwrap();
    let server = Listening::new(&ctx, &Server::Curve(server_keys.clone()), Some("global"));
    let client = Client::Curve(server_keys.public, client_keys.clone());
    server
        .attempt(&ctx, &client)
        .assert_admitted(&client_keys.public.to_z85());
    auth.set_curve_user_id(|_key| "custom".to_string()).unwrap();
    server.attempt(&ctx, &client).assert_admitted("custom");
    auth.stop();
}

#[test]
fn certificate_metadata_reaches_the_server_application() {
    let (ctx, auth) = started();
    let server_keys = Keys::generate();
    let client_keys = Keys::generate();
    let dir = tempfile::tempdir().unwrap();
    let cert = Certificate {
        public_key: client_keys.public,
        secret_key: None,
        metadata: vec![("Hello".into(), "World!".into())],
    };
    cert.save_public(dir.path().join("client.key"), Flavour::Czmq)
        .unwrap();
    auth.configure_curve("*", dir.path()).unwrap();
    let client = Client::Curve(server_keys.public, client_keys);
    let mut outcome = handshake(&ctx, &Server::Curve(server_keys), Some("global"), &client);
    assert_eq!(outcome.property("Hello").as_deref(), Some("World!"));
    auth.stop();
}

#[test]
fn gssapi_is_decided_per_domain_through_the_policy() {
    // No Kerberos here: the policy's decisions are covered in src/policy/tests.rs; this
    // checks the message reaches the actor and is validated.
    let (_ctx, auth) = started();
    auth.configure_gssapi("*", GssapiPolicy::AnyPrincipal)
        .unwrap();
    let long = "d".repeat(300);
    assert!(matches!(
        auth.configure_gssapi(&long, GssapiPolicy::AnyPrincipal),
        Err(ConfigError::Policy(_))
    ));
    auth.stop();
}

#[test]
fn malformed_requests_on_the_zap_endpoint_are_answered_or_dropped_and_serving_goes_on() {
    let (ctx, auth) = started();
    let rogue = ctx.socket(zmq::DEALER).unwrap();
    rogue.set_linger(0).unwrap();
    rogue.set_rcvtimeo(PATIENCE.as_millis() as i32).unwrap();
    rogue.connect("inproc://zeromq.zap.01").unwrap();
    // No delimiter, no request id, garbage: dropped without a reply.
    rogue.send("garbage", 0).unwrap();
    rogue.send_multipart(["", "1.0"], 0).unwrap();
    // Answerable but malformed: 400, echoing the request id.
    rogue.send_multipart(["", "1.0", "id-7", "x"], 0).unwrap();
    let reply = rogue.recv_multipart(0).unwrap();
    assert_eq!(reply[0], b"");
    assert_eq!(&reply[1..4], [&b"1.0"[..], b"id-7", b"400"]);
    assert_eq!(reply[4], b"Not enough frames");
    // A well-formed request from the rogue is decided like any other.
    let request = RequestBuilder::null().domain("d").request_id("id-8");
    rogue
        .send_multipart(request.frames_for_dealer(), 0)
        .unwrap();
    let reply = rogue.recv_multipart(0).unwrap();
    assert_eq!(&reply[2..4], [&b"id-8"[..], b"200"]);
    // Requests are taken in order: both drops were counted before these replies were sent.
    let stats = auth.stats().unwrap();
    assert_eq!(stats.dropped, 2);
    let malformed = (EventMechanism::Malformed, StatusCode::Denied);
    assert_eq!(stats.replies[&malformed], 1);
    assert_eq!(stats.replies[&(EventMechanism::Null, StatusCode::Ok)], 1);

    handshake(&ctx, &Server::Null, Some("global"), &Client::Null).assert_admitted("anonymous");
    auth.stop();
}

#[test]
fn a_second_handler_on_the_same_context_is_refused_with_a_typed_error() {
    let (ctx, auth) = started();
    assert!(matches!(
        ThreadAuthenticator::start(&ctx),
        Err(StartError::EndpointInUse)
    ));
    // The first one is untouched.
    handshake(&ctx, &Server::Null, Some("global"), &Client::Null).assert_admitted("anonymous");
    auth.stop();
}

#[test]
fn start_stop_start_on_one_context() {
    let (ctx, auth) = started();
    auth.configure_plain("*", [("a", "b")]).unwrap();
    let handle = auth.handle().clone();
    auth.stop();
    assert!(!handle.is_running());
    let configured = futures::executor::block_on(handle.configure_plain("*", [("a", "b")]));
    assert!(matches!(configured, Err(ConfigError::Stopped)));

    let auth = ThreadAuthenticator::start(&ctx).expect("restart on the same context");
    auth.configure_plain("*", [("c", "d")]).unwrap();
    handshake(&ctx, &Server::Plain, None, &Client::Plain("c", "d")).assert_admitted("c");
    handshake(&ctx, &Server::Plain, None, &Client::Plain("a", "b")).assert_refused(400);
    auth.stop();
}

#[test]
fn dropping_the_handle_does_not_stop_authentication() {
    let (ctx, auth) = started();
    let handle = auth.handle().clone();
    futures::executor::block_on(handle.configure_plain("*", [("u", "p")])).unwrap();
    drop(auth);
    handshake(&ctx, &Server::Plain, None, &Client::Plain("u", "p")).assert_admitted("u");
    handshake(&ctx, &Server::Plain, None, &Client::Plain("u", "x")).assert_refused(400);
    futures::executor::block_on(handle.stop());
}

#[test]
fn a_slow_provider_does_not_stall_other_handshakes() {
    let (ctx, auth) = started();
    let server_keys = Keys::generate();
    let (provider, release, asked) = held_provider();
    auth.configure_curve_callback("slow", provider).unwrap();
    auth.configure_curve("fast", CURVE_ALLOW_ANY).unwrap();

    let client = Client::Curve(server_keys.public, Keys::generate());
    let slow = Listening::new(&ctx, &Server::Curve(server_keys.clone()), Some("slow"));
    let fast = Listening::new(&ctx, &Server::Curve(server_keys), Some("fast"));
    let waiting = slow.connect(&ctx, &client);
    // The slow client's request is in flight, held by the provider...
    wait_for(&asked);
    // ...and another domain's client gets in meanwhile.
    assert!(fast.attempt(&ctx, &client).is_admitted());
    release.notify_one();
    assert!(slow.outcome().is_admitted());
    drop(waiting);
    auth.stop();
}

#[actix::test]
async fn the_actix_handle_configures_and_serves_from_inside_a_system() {
    init_logging();
    let ctx = zmq::Context::new();
    let auth = actix_zap::Authenticator::start(&ctx).unwrap();
    auth.allow(["127.0.0.1"]).await.unwrap();
    auth.configure_plain("*", [("admin", "secret")])
        .await
        .unwrap();
    // Blocking zmq calls must not run on the actix thread, which serves the ZAP socket.
    let c = ctx.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        handshake(
            &c,
            &Server::Plain,
            Some("global"),
            &Client::Plain("admin", "secret"),
        )
        .user_id()
    })
    .await
    .unwrap();
    assert_eq!(outcome, "admin");
    auth.stop().await;
    assert!(!auth.is_running());
    // Restart right away on the same context.
    let again = actix_zap::Authenticator::start(&ctx).unwrap();
    again.stop().await;
}

#[test]
fn start_outside_a_system_is_a_typed_error() {
    let ctx = zmq::Context::new();
    assert!(matches!(
        actix_zap::Authenticator::start(&ctx),
        Err(StartError::NoSystem)
    ));
    // Nothing was bound: a handler can still start.
    ThreadAuthenticator::start(&ctx).unwrap().stop();
}

#[test]
fn stop_answers_requests_in_flight_before_it_returns() {
    let (ctx, auth) = started();
    let server_keys = Keys::generate();
    let (provider, release, asked) = held_provider();
    auth.configure_curve_callback("*", provider).unwrap();
    let server = Listening::new(&ctx, &Server::Curve(server_keys.clone()), Some("d"));
    let _client = server.connect(&ctx, &Client::Curve(server_keys.public, Keys::generate()));
    wait_for(&asked);
    let handle = auth.handle().clone();
    let stopping = std::thread::spawn(move || futures::executor::block_on(handle.stop()));
    // Stop has begun once the endpoint is free (it unbinds first)...
    let probe = ctx.socket(zmq::REP).unwrap();
    probe.set_linger(0).unwrap();
    let deadline = std::time::Instant::now() + PATIENCE;
    while probe.bind("inproc://zeromq.zap.01").is_err() {
        assert!(std::time::Instant::now() < deadline, "stop never unbound");
        std::thread::yield_now();
    }
    probe.unbind("inproc://zeromq.zap.01").unwrap();
    drop(probe);
    assert!(
        !stopping.is_finished(),
        "stop waits for the request in flight"
    );
    // ...and the request in flight is still answered (not dropped) once its provider is.
    release.notify_one();
    assert!(server.outcome().is_admitted());
    stopping.join().unwrap();
    assert!(!auth.handle().is_running());
    auth.stop();
}
