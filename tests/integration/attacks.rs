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
