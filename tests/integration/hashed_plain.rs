//! PLAIN users with argon2id hashes, by hand (the same deltas a credential store sends):
//! verified off the actix thread, and a removal wins over a verification under way.

use std::time::Instant;

use crate::common::*;
use actix_zap::messages::{AddPlainUsers, RemovePlainUsers};
use actix_zap::zap::StatusCode;
use actix_zap::{Settings, ThreadAuthenticator};
use futures::executor::block_on;

#[test]
fn hashed_users_are_admitted_with_their_password_only() {
    let (context, auth) = started();
    let users = vec![("alice".to_owned(), hash_with("pw", 64, 1))];
    let added = block_on(auth.handle().send(AddPlainUsers::new("hashed", users)));
    assert_eq!(added.unwrap(), 1);
    let server = Listening::new(&context, &Server::Plain, Some("hashed"));
    server
        .attempt(&context, &Client::Plain("alice", "pw"))
        .assert_admitted("alice");
    server
        .attempt(&context, &Client::Plain("alice", "nope"))
        .assert_refused(400);
    server
        .attempt(&context, &Client::Plain("alice", "pw"))
        .assert_admitted("alice"); // remembered this time
    server
        .attempt(&context, &Client::Plain("bob", "pw"))
        .assert_refused(400);
    auth.stop();
}

#[test]
fn a_user_removed_while_its_password_is_being_verified_is_refused() {
    let (context, auth) = started();
    let users = vec![("alice".to_owned(), hash_with("pw", 16 * 1024, 4))];
    block_on(auth.handle().send(AddPlainUsers::new("hashed", users))).unwrap();
    let server = Listening::new(&context, &Server::Plain, Some("hashed"));
    let _client = server.connect(&context, &Client::Plain("alice", "pw"));
    let deadline = Instant::now() + PATIENCE;
    while auth.stats().unwrap().in_flight == 0 {
        assert!(Instant::now() < deadline, "the request never arrived");
        std::thread::yield_now();
    }
    let removed = block_on(
        auth.handle()
            .send(RemovePlainUsers::new("hashed", ["alice"])),
    );
    assert_eq!(removed.unwrap().installed, 1);
    // Whether argon2 was still running or not, the answer comes from the narrower policy.
    server.outcome().assert_refused(400);
    auth.stop();
}

#[test]
fn the_argon2_workers_and_their_queue_are_the_settings_ones() {
    init_logging();
    let context = zmq::Context::new();
    // One worker and room for one more: while it verifies a password, a third gets `300`
    // (the defaults, a worker per core and 32 waiting per worker, would take all three; the
    // cap of 2 verifications per address is raised, or the third would get its `400`).
    let settings = Settings::default()
        .with_hash_threads(1)
        .with_hash_queue(1)
        .with_verifications_per_address(3)
        .with_provider_deadline(PATIENCE);
    let auth = ThreadAuthenticator::builder()
        .settings(settings)
        .start(&context)
        .unwrap();
    let users = vec![("alice".to_owned(), hash_with("pw", 64 * 1024, 8))];
    block_on(auth.handle().send(AddPlainUsers::new("hashed", users))).unwrap();
    let server = Listening::new(&context, &Server::Plain, Some("hashed"));
    let _first = server.connect(&context, &Client::Plain("alice", "pw"));
    let deadline = Instant::now() + PATIENCE;
    while auth.stats().unwrap().in_flight == 0 {
        assert!(Instant::now() < deadline, "the request never arrived");
        std::thread::yield_now();
    }
    let _others = [(); 2].map(|()| server.connect(&context, &Client::Plain("alice", "pw")));
    while auth.stats().unwrap().count(StatusCode::TryLater) == 0 {
        assert!(Instant::now() < deadline, "no verification was refused");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    auth.stop();
}
