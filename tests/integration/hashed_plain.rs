//! PLAIN users with argon2id hashes, by hand (the same deltas a credential store sends):
//! verified off the actix thread, and a removal wins over a verification under way.

use std::time::Instant;

use crate::common::*;
use actix_zap::messages::{AddPlainUsers, RemovePlainUsers};
use actix_zap::policy::HashedPassword;
use futures::executor::block_on;

/// An argon2id hash costly enough (in a debug build) that a handshake is still being verified
/// when the test acts.
fn hash(password: &str, memory_kib: u32, passes: u32) -> HashedPassword {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let params = argon2::Params::new(memory_kib, passes, 1, None).unwrap();
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let phc = argon
        .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
    HashedPassword::parse(&phc, &Default::default()).unwrap()
}

#[test]
fn hashed_users_are_admitted_with_their_password_only() {
    let (context, auth) = started();
    let users = vec![("alice".to_owned(), hash("pw", 64, 1))];
    let added = block_on(auth.handle().send(AddPlainUsers {
        domain: "hashed".into(),
        users,
    }));
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
    let users = vec![("alice".to_owned(), hash("pw", 16 * 1024, 4))];
    block_on(auth.handle().send(AddPlainUsers {
        domain: "hashed".into(),
        users,
    }))
    .unwrap();
    let server = Listening::new(&context, &Server::Plain, Some("hashed"));
    let _client = server.connect(&context, &Client::Plain("alice", "pw"));
    let deadline = Instant::now() + PATIENCE;
    while auth.stats().unwrap().in_flight == 0 {
        assert!(Instant::now() < deadline, "the request never arrived");
        std::thread::yield_now();
    }
    let removed = block_on(auth.handle().send(RemovePlainUsers {
        domain: "hashed".into(),
        users: vec!["alice".into()],
    }));
    assert_eq!(removed.unwrap(), 1);
    // Whether argon2 was still running or not, the answer comes from the narrower policy.
    server.outcome().assert_refused(400);
    auth.stop();
}
