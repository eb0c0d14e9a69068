//! The one way in, end to end with real sockets: a removal by hand holds whoever owns the
//! domain (a directory load in progress, a watch reloading, a provider, allow-any, the `"*"`
//! fallback, a clear-text table), a widening change on a watched domain is refused unless it
//! takes over, and a taken-over watch no longer changes its domain.

use std::path::Path;
use std::sync::mpsc::channel;
use std::time::Instant;

use crate::common::*;
use actix_zap::certs::{Certificate, Flavour};
use actix_zap::keys::CurvePublicKey;
use actix_zap::messages::{
    ConfigureCurve, LiftRevocations, Reloaded, RemoveCurveKeys, RemovePlainUsers, TakeOver, Watch,
};
use actix_zap::policy::{MechanismKind, Owner, PolicyError};
use actix_zap::{ConfigError, ThreadAuthenticator};
use futures::executor::block_on;

/// Writes `count` public certificates of made-up keys (never used to connect) into `dir`.
fn filler(dir: &Path, count: usize) {
    for n in 0..count {
        let mut bytes = [0x5a; 32];
        bytes[..8].copy_from_slice(&(n as u64).to_le_bytes());
        let cert = Certificate {
            public_key: CurvePublicKey::from_bytes(bytes),
            secret_key: None,
            metadata: vec![],
        };
        let path = dir.join(format!("filler-{n}.key"));
        cert.save_public(path, Flavour::Pyzmq).unwrap();
    }
}

fn curve(server: &Keys, client: &Keys) -> Client {
    Client::Curve(server.public, client.clone())
}

fn remove_key(auth: &ThreadAuthenticator, domain: &str, key: &Keys) -> actix_zap::policy::Removed {
    auth.send(RemoveCurveKeys::new(domain, [key.public]))
        .unwrap()
}

#[test]
fn a_key_removed_while_its_directory_loads_stays_refused_after_the_load_installs() {
    let (context, auth) = started();
    let (server_keys, alice, bob) = (Keys::generate(), Keys::generate(), Keys::generate());
    let server = Listening::new(&context, &Server::Curve(server_keys.clone()), Some("d"));
    let dir = tempfile::tempdir().unwrap();
    write_public(dir.path(), "alice.key", &alice);
    write_public(dir.path(), "bob.key", &bob);
    // The race must happen: the load answers after the removal's Ok. A bigger directory
    // makes the load slower; if it still wins every time, the test fails.
    let mut files = 2_000;
    for attempt in 0.. {
        assert!(attempt < 4, "the load always finished before the removal");
        filler(dir.path(), files);
        let policy = auth.handle().policy().clone();
        let (answered, load_answer) = channel();
        let load = ConfigureCurve::directory("d", dir.path());
        let path = dir.path().to_owned();
        std::thread::spawn(move || {
            let answer = block_on(policy.send(load));
            let _ = answered.send((answer, Instant::now(), path));
        });
        // Sent after the load's message, so handled after its claim (one mailbox, in order).
        while auth.inspect().unwrap().owners.is_empty() {
            std::thread::yield_now();
        }
        let removed = remove_key(&auth, "d", &alice);
        let removed_at = Instant::now();
        let (answer, loaded_at, _) = load_answer.recv_timeout(PATIENCE).unwrap();
        let report = answer.unwrap().unwrap();
        if loaded_at <= removed_at {
            files *= 4; // the load won: again, slower
            continue;
        }
        assert_eq!((removed.installed, removed.revoked), (0, 1));
        assert!(report.keys >= files);
        server
            .attempt(&context, &curve(&server_keys, &alice))
            .assert_refused(400);
        server
            .attempt(&context, &curve(&server_keys, &bob))
            .assert_admitted(&bob.public.to_z85());
        // The revocation is listed, and lifting it is the explicit way back.
        let snapshot = auth.inspect().unwrap();
        assert_eq!(snapshot.revocations.len(), 1);
        assert_eq!(snapshot.revocations[0].names, [alice.public.to_z85()]);
        assert!(
            snapshot.owners.is_empty(),
            "the load handed the domain back"
        );
        let lifted = auth.send(LiftRevocations::curve_keys("d", [alice.public]));
        assert_eq!(lifted.unwrap(), 1);
        server
            .attempt(&context, &curve(&server_keys, &alice))
            .assert_admitted(&alice.public.to_z85());
        break;
    }
    auth.stop();
}

#[test]
fn a_key_removed_from_a_watched_directory_stays_refused_while_the_watch_applies_the_rest() {
    let (context, auth) = started();
    let (server_keys, alice, bob, carol) = (
        Keys::generate(),
        Keys::generate(),
        Keys::generate(),
        Keys::generate(),
    );
    let server = Listening::new(&context, &Server::Curve(server_keys.clone()), Some("d"));
    let dir = tempfile::tempdir().unwrap();
    write_public(dir.path(), "alice.key", &alice);
    write_public(dir.path(), "bob.key", &bob);
    let (reloaded, reloads) = channel::<Reloaded>();
    let watch = Watch::curve("d", dir.path()).on_reload(move |r| {
        let _ = reloaded.send(r.clone());
    });
    assert_eq!(auth.watch(watch).unwrap().entries, 2);
    let _first = reloads.recv_timeout(PATIENCE).unwrap();
    server
        .attempt(&context, &curve(&server_keys, &alice))
        .assert_admitted(&alice.public.to_z85());

    let removed = remove_key(&auth, "d", &alice);
    assert_eq!((removed.installed, removed.revoked), (1, 1));
    server
        .attempt(&context, &curve(&server_keys, &alice))
        .assert_refused(400);
    // The watch goes on: a new file and a rewritten one are reloaded after the removal's Ok,
    // and the removed key stays refused over them.
    write_public(dir.path(), "carol.key", &carol);
    write_public(dir.path(), "alice.key", &alice);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let report = reloads.recv_timeout(PATIENCE).unwrap();
        if report.entries == 3 && report.error.is_none() {
            break;
        }
        assert!(Instant::now() < deadline, "no reload brought carol in");
    }
    server
        .attempt(&context, &curve(&server_keys, &carol))
        .assert_admitted(&carol.public.to_z85());
    server
        .attempt(&context, &curve(&server_keys, &bob))
        .assert_admitted(&bob.public.to_z85());
    server
        .attempt(&context, &curve(&server_keys, &alice))
        .assert_refused(400);
    assert_eq!(
        auth.watches().unwrap().len(),
        1,
        "the removal did not end the watch"
    );
    auth.stop();
}

#[test]
fn a_widening_change_on_a_watched_domain_is_refused_and_a_take_over_ends_the_watch() {
    let (context, auth) = started();
    let (server_keys, alice, bob) = (Keys::generate(), Keys::generate(), Keys::generate());
    let server = Listening::new(&context, &Server::Curve(server_keys.clone()), Some("d"));
    let dir = tempfile::tempdir().unwrap();
    write_public(dir.path(), "alice.key", &alice);
    let (reloaded, reloads) = channel::<Reloaded>();
    let watch = Watch::curve("d", dir.path()).on_reload(move |r| {
        let _ = reloaded.send(r.clone());
    });
    auth.watch(watch).unwrap();
    for refused in [
        auth.configure_curve("d", actix_zap::CURVE_ALLOW_ANY)
            .map(drop),
        auth.watch(Watch::curve("d", dir.path())).map(drop),
        auth.unconfigure("d", MechanismKind::Curve).map(drop),
    ] {
        match refused {
            Err(ConfigError::Policy(PolicyError::OwnedBy { domain, owner, .. })) => {
                assert_eq!(domain, "d");
                assert!(owner.contains(&*dir.path().to_string_lossy()), "{owner}");
            }
            other => panic!("{other:?}"),
        }
    }
    server
        .attempt(&context, &curve(&server_keys, &bob))
        .assert_refused(400);
    let owners = auth.inspect().unwrap().owners;
    assert!(matches!(owners[..], [ref o] if matches!(o.owner, Owner::Watch { .. })));

    // Taken over: the domain is the hand's, the watch has ended and applies nothing more.
    auth.send(ConfigureCurve::allow_any("d").take_over())
        .unwrap();
    assert!(auth.watches().unwrap().is_empty());
    let snapshot = auth.inspect().unwrap();
    assert!(snapshot.owners.is_empty());
    assert_eq!(snapshot.taken_over.len(), 1);
    while reloads.try_recv().is_ok() {}
    std::fs::remove_file(dir.path().join("alice.key")).unwrap();
    write_public(dir.path(), "bob.key", &bob);
    // Nothing is watching: no reload comes, and allow-any stays in force.
    assert!(reloads
        .recv_timeout(std::time::Duration::from_millis(600))
        .is_err());
    server
        .attempt(&context, &curve(&server_keys, &alice))
        .assert_admitted(&alice.public.to_z85());
    auth.stop();
}

#[test]
fn a_removal_refuses_the_named_key_whatever_the_domain_setting() {
    let (context, auth) = started();
    let (server_keys, alice, bob) = (Keys::generate(), Keys::generate(), Keys::generate());
    let admit_all = actix_zap::provider::Provider::blocking(|_: &str, _: &CurvePublicKey| {
        Ok(actix_zap::provider::CurveVerdict::admit())
    });
    // Each domain decides CURVE by another kind of setting; "fallback" has none of its own.
    auth.configure_curve("any", actix_zap::CURVE_ALLOW_ANY)
        .unwrap();
    auth.configure_curve_callback("provided", admit_all.clone())
        .unwrap();
    auth.configure_curve_callback("*", admit_all).unwrap();
    for domain in ["any", "provided", "fallback"] {
        let server = Listening::new(&context, &Server::Curve(server_keys.clone()), Some(domain));
        server
            .attempt(&context, &curve(&server_keys, &alice))
            .assert_admitted(&alice.public.to_z85());
        let removed = remove_key(&auth, domain, &alice);
        assert_eq!((removed.installed, removed.revoked), (0, 1), "{domain}");
        server
            .attempt(&context, &curve(&server_keys, &alice))
            .assert_refused(400);
        server
            .attempt(&context, &curve(&server_keys, &bob))
            .assert_admitted(&bob.public.to_z85());
    }
    // A removal in "*" covers every domain falling back to it, not the others.
    let removed = remove_key(&auth, "*", &bob);
    assert_eq!(removed.revoked, 1);
    let fallback = Listening::new(&context, &Server::Curve(server_keys.clone()), Some("other"));
    fallback
        .attempt(&context, &curve(&server_keys, &bob))
        .assert_refused(400);
    let own = Listening::new(&context, &Server::Curve(server_keys.clone()), Some("any"));
    own.attempt(&context, &curve(&server_keys, &bob))
        .assert_admitted(&bob.public.to_z85());

    // PLAIN: a clear-text table, the domain's own and through the "*" fallback.
    auth.configure_plain("*", [("alice", "pw"), ("bob", "pw")])
        .unwrap();
    auth.configure_plain("own", [("alice", "pw"), ("bob", "pw")])
        .unwrap();
    for (domain, installed) in [("own", 1), ("elsewhere", 0)] {
        let server = Listening::new(&context, &Server::Plain, Some(domain));
        server
            .attempt(&context, &Client::Plain("alice", "pw"))
            .assert_admitted("alice");
        let removed = auth.send(RemovePlainUsers::new(domain, ["alice"])).unwrap();
        assert_eq!(removed.installed, installed, "{domain}");
        assert_eq!(removed.installed + removed.revoked, 1, "{removed}");
        server
            .attempt(&context, &Client::Plain("alice", "pw"))
            .assert_refused(400);
        server
            .attempt(&context, &Client::Plain("bob", "pw"))
            .assert_admitted("bob");
    }
    auth.stop();
}
