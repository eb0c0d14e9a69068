//! Trusting and revoking one key or one user at run time through the handle
//! (`add_curve_keys`, `remove_curve_keys`, `add_plain_users`, `remove_plain_users`): the
//! rest of the domain stays as it was, and once a removal has returned, the very next
//! handshake is decided by the narrower policy.

use crate::common::*;
use actix_zap::keys::CurvePublicKey;
use actix_zap::policy::{CurveEntry, CurveSummary, PolicyError, Removed};
use actix_zap::zap::Metadata;
use actix_zap::{ConfigError, CURVE_ALLOW_ANY};

fn removed(installed: usize, revoked: usize) -> Removed {
    Removed { installed, revoked }
}

#[test]
fn a_key_trusted_by_the_handle_is_admitted_and_refused_from_the_handshake_after_its_revocation() {
    let (context, auth) = started();
    let server_keys = Keys::generate();
    let (alice, bob) = (Keys::generate(), Keys::generate());
    let server = Listening::new(
        &context,
        &Server::Curve(server_keys.clone()),
        Some("global"),
    );
    let alice_client = Client::Curve(server_keys.public, alice.clone());
    let bob_client = Client::Curve(server_keys.public, bob.clone());

    assert_eq!(auth.add_curve_keys("global", [bob.public]).unwrap(), 1);
    server.attempt(&context, &alice_client).assert_refused(400);

    // One key more: alice gets in, bob's entry is untouched.
    assert_eq!(auth.add_curve_keys("global", [alice.public]).unwrap(), 1);
    server
        .attempt(&context, &alice_client)
        .assert_admitted(&alice.public.to_z85());
    server
        .attempt(&context, &bob_client)
        .assert_admitted(&bob.public.to_z85());

    // Revoked: the next handshake is refused, and bob is still admitted.
    let answer = auth.remove_curve_keys("global", [alice.public]).unwrap();
    assert_eq!(answer, removed(1, 0));
    server.attempt(&context, &alice_client).assert_refused(400);
    server
        .attempt(&context, &bob_client)
        .assert_admitted(&bob.public.to_z85());
    assert_eq!(
        auth.inspect().unwrap().curve["global"],
        CurveSummary::Keys(vec![bob.public.to_z85()])
    );
    auth.stop();
}

#[test]
fn a_trusted_entry_brings_its_user_id_and_metadata_into_the_reply() {
    let (context, auth) = started();
    let server_keys = Keys::generate();
    let alice = Keys::generate();
    let metadata = Metadata::from_pairs([("Role", "admin")]).unwrap();
    let entry = CurveEntry {
        user_id: Some("alice".into()),
        metadata,
        ..CurveEntry::new(alice.public)
    };
    assert_eq!(auth.add_curve_keys("global", [entry]).unwrap(), 1);
    let server = Listening::new(
        &context,
        &Server::Curve(server_keys.clone()),
        Some("global"),
    );
    let mut outcome = server
        .attempt(&context, &Client::Curve(server_keys.public, alice))
        .assert_admitted("alice");
    assert_eq!(outcome.property("Role").as_deref(), Some("admin"));
    auth.stop();
}

#[test]
fn a_key_revoked_in_an_allow_any_domain_is_refused_and_trusting_it_again_admits_it_alone() {
    let (context, auth) = started();
    let server_keys = Keys::generate();
    let (alice, bob) = (Keys::generate(), Keys::generate());
    auth.configure_curve("global", CURVE_ALLOW_ANY).unwrap();
    let server = Listening::new(
        &context,
        &Server::Curve(server_keys.clone()),
        Some("global"),
    );
    let alice_client = Client::Curve(server_keys.public, alice.clone());
    let bob_client = Client::Curve(server_keys.public, bob.clone());

    // Nothing installed to remove: the key is revoked, and every other key still gets in.
    let answer = auth.remove_curve_keys("global", [alice.public]).unwrap();
    assert_eq!(answer, removed(0, 1));
    server.attempt(&context, &alice_client).assert_refused(400);
    server
        .attempt(&context, &bob_client)
        .assert_admitted(&bob.public.to_z85());

    // Trusting it by hand lifts the revocation, and never widens: the domain now admits
    // exactly the keys it was given.
    assert_eq!(auth.add_curve_keys("global", [alice.public]).unwrap(), 1);
    server
        .attempt(&context, &alice_client)
        .assert_admitted(&alice.public.to_z85());
    server.attempt(&context, &bob_client).assert_refused(400);
    auth.stop();
}

#[test]
fn a_watched_domain_refuses_a_key_trusted_by_hand_but_takes_its_revocation() {
    let (context, auth) = started();
    let server_keys = Keys::generate();
    let (alice, bob) = (Keys::generate(), Keys::generate());
    let dir = tempfile::tempdir().unwrap();
    write_public(dir.path(), "alice.key", &alice);
    auth.watch(actix_zap::messages::Watch::curve("global", dir.path()))
        .unwrap();

    let refused = auth.add_curve_keys("global", [bob.public]).unwrap_err();
    assert!(
        matches!(refused, ConfigError::Policy(PolicyError::OwnedBy { .. })),
        "{refused:?}"
    );
    let server = Listening::new(
        &context,
        &Server::Curve(server_keys.clone()),
        Some("global"),
    );
    server
        .attempt(&context, &Client::Curve(server_keys.public, bob))
        .assert_refused(400);

    // A removal is never refused: alice's file is still there, and she is refused.
    let alice_client = Client::Curve(server_keys.public, alice.clone());
    server
        .attempt(&context, &alice_client)
        .assert_admitted(&alice.public.to_z85());
    let answer = auth.remove_curve_keys("global", [alice.public]).unwrap();
    assert_eq!(answer, removed(1, 1));
    server.attempt(&context, &alice_client).assert_refused(400);
    auth.stop();
}

#[test]
fn a_plain_user_added_by_the_handle_logs_in_with_its_password_until_removed() {
    let (context, auth) = started();
    auth.configure_plain("global", [("carol", "pw")]).unwrap();
    let server = Listening::new(&context, &Server::Plain, Some("global"));

    assert_eq!(
        auth.add_plain_users(
            "global",
            [
                ("alice", cheap_hash("alice-pw")),
                ("bob", cheap_hash("bob-pw"))
            ]
        )
        .unwrap(),
        2
    );
    server
        .attempt(&context, &Client::Plain("alice", "alice-pw"))
        .assert_admitted("alice");
    server
        .attempt(&context, &Client::Plain("alice", "bob-pw"))
        .assert_refused(400);
    // A clear-text table is replaced by the hashed one: the domain holds exactly its users.
    server
        .attempt(&context, &Client::Plain("carol", "pw"))
        .assert_refused(400);

    let answer = auth.remove_plain_users("global", ["alice"]).unwrap();
    assert_eq!(answer, removed(1, 0));
    server
        .attempt(&context, &Client::Plain("alice", "alice-pw"))
        .assert_refused(400);
    server
        .attempt(&context, &Client::Plain("bob", "bob-pw"))
        .assert_admitted("bob");
    auth.stop();
}

#[test]
fn a_clear_text_user_is_removed_by_the_handle_too() {
    let (context, auth) = started();
    auth.configure_plain("global", [("admin", "secret"), ("guest", "guest")])
        .unwrap();
    let server = Listening::new(&context, &Server::Plain, Some("global"));
    server
        .attempt(&context, &Client::Plain("guest", "guest"))
        .assert_admitted("guest");
    let answer = auth.remove_plain_users("global", ["guest"]).unwrap();
    assert_eq!(answer, removed(1, 0));
    server
        .attempt(&context, &Client::Plain("guest", "guest"))
        .assert_refused(400);
    server
        .attempt(&context, &Client::Plain("admin", "secret"))
        .assert_admitted("admin");
    auth.stop();
}

/// The async handle: the same methods, awaited inside an actix System (the authenticator
/// runs on its thread, so the blocking socket work goes to the blocking pool).
#[test]
fn the_async_handle_trusts_and_revokes_inside_actix() {
    init_logging();
    let system = actix::System::new();
    system.block_on(async {
        let context = zmq::Context::new();
        let auth = actix_zap::Authenticator::start(&context).unwrap();
        let server_keys = Keys::generate();
        let alice = Keys::generate();
        let server = Listening::new(
            &context,
            &Server::Curve(server_keys.clone()),
            Some("global"),
        );
        let server = std::sync::Arc::new(std::sync::Mutex::new(server));
        let client = Client::Curve(server_keys.public, alice.clone());
        let attempt = || {
            let (server, context, client) = (server.clone(), context.clone(), client.clone());
            tokio::task::spawn_blocking(move || server.lock().unwrap().attempt(&context, &client))
        };

        let key: CurvePublicKey = alice.public;
        assert_eq!(auth.add_curve_keys("global", [key]).await.unwrap(), 1);
        attempt().await.unwrap().assert_admitted(&key.to_z85());
        let answer = auth.remove_curve_keys("global", [key]).await.unwrap();
        assert_eq!(answer, removed(1, 0));
        attempt().await.unwrap().assert_refused(400);
        // Closing a server socket can wait for its ZAP pipes, which the authenticator on this
        // very thread ends: close it off the actix thread too.
        tokio::task::spawn_blocking(move || drop(server))
            .await
            .unwrap();
        auth.stop().await;
    });
}
