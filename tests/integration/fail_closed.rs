//! Fail-closed behaviour: what a server admits with no handler, after `stop()`, and when the
//! policy side is gone — hardened ([`ServerSocket`]) and not.

use crate::common::*;
use actix_zap::{ServerSocket, StartError, ThreadAuthenticator, CURVE_ALLOW_ANY};

const HANDSHAKE_FAILED_NO_DETAIL: u16 = zmq::SocketEvent::HANDSHAKE_FAILED_NO_DETAIL as u16;
const EFAULT: u32 = 14;

/// A hardened CURVE server bound on 127.0.0.1, with its monitor.
fn hardened_curve(context: &zmq::Context, keys: &Keys) -> Listening {
    let socket = ServerSocket::curve("global", keys.secret.clone())
        .build(context, zmq::PULL)
        .unwrap();
    Listening::from_socket(context, socket)
}

fn hardened_null(context: &zmq::Context) -> Listening {
    let socket = ServerSocket::null("global")
        .build(context, zmq::PULL)
        .unwrap();
    Listening::from_socket(context, socket)
}

fn assert_refused_without_handler(outcome: Outcome) {
    match outcome {
        Outcome::Failed(event, errno) => {
            assert_eq!((event, errno), (HANDSHAKE_FAILED_NO_DETAIL, EFAULT))
        }
        other => panic!("expected a refusal without handler, got {other:?}"),
    }
}

#[test]
fn without_a_handler_libzmq_admits_curve_and_null_but_hardened_sockets_refuse() {
    init_logging();
    let context = zmq::Context::new();
    let keys = Keys::generate();
    let client = Client::Curve(keys.public, Keys::generate());
    // libzmq's default: anyone gets in (this is what the hardening is for).
    let plain_curve = Listening::new(&context, &Server::Curve(keys.clone()), Some("global"));
    assert!(plain_curve.attempt(&context, &client).is_admitted());
    let plain_null = Listening::new(&context, &Server::Null, Some("global"));
    assert!(plain_null.attempt(&context, &Client::Null).is_admitted());
    // Hardened: refused.
    assert_refused_without_handler(hardened_curve(&context, &keys).attempt(&context, &client));
    assert_refused_without_handler(hardened_null(&context).attempt(&context, &Client::Null));
}

#[test]
fn after_stop_hardened_servers_refuse_and_others_fall_back_to_libzmq_defaults() {
    init_logging();
    let context = zmq::Context::new();
    let keys = Keys::generate();
    let client = Client::Curve(keys.public, Keys::generate());
    let auth = ThreadAuthenticator::start(&context).unwrap();
    auth.configure_curve("*", CURVE_ALLOW_ANY).unwrap();
    let hardened = hardened_curve(&context, &keys);
    let unhardened = Listening::new(&context, &Server::Curve(keys.clone()), Some("global"));
    assert!(hardened.attempt(&context, &client).is_admitted());
    assert!(unhardened.attempt(&context, &client).is_admitted());

    // A policy that refuses this client, then stop.
    auth.configure_curve("*", tempfile::tempdir().unwrap().path())
        .unwrap();
    hardened.attempt(&context, &client).assert_refused(400);
    unhardened.attempt(&context, &client).assert_refused(400);
    auth.stop();

    assert_refused_without_handler(hardened.attempt(&context, &client));
    // Documented libzmq behaviour: with no handler, CURVE admits anyone.
    assert!(unhardened.attempt(&context, &client).is_admitted());
}

#[test]
fn when_the_policy_actor_is_gone_requests_get_500_not_silence() {
    init_logging();
    let context = zmq::Context::new();
    let auth = ThreadAuthenticator::start(&context).unwrap();
    auth.configure_plain("*", [("u", "p")]).unwrap();
    futures::executor::block_on(auth.handle().stop_policy_actor_for_tests());
    let server = Listening::new(&context, &Server::Plain, Some("global"));
    server
        .attempt(&context, &Client::Plain("u", "p"))
        .assert_refused(500);
    let stats = auth.stats().unwrap();
    assert_eq!(stats.count(actix_zap::zap::StatusCode::InternalError), 1);
    auth.stop();
}

#[test]
fn hardened_plain_refuses_without_handler_instead_of_aborting() {
    let context = zmq::Context::new();
    let socket = ServerSocket::plain("global")
        .build(&context, zmq::PULL)
        .unwrap();
    let server = Listening::from_socket(&context, socket);
    assert_refused_without_handler(server.attempt(&context, &Client::Plain("u", "p")));
}

#[test]
fn start_refuses_when_another_handler_is_bound() {
    let context = zmq::Context::new();
    let squatter = context.socket(zmq::REP).unwrap();
    squatter.bind("inproc://zeromq.zap.01").unwrap();
    assert!(matches!(
        ThreadAuthenticator::start(&context),
        Err(StartError::EndpointInUse)
    ));
}
