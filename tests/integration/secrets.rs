//! No password and no secret key ever reaches a log line, at any level, through a full PLAIN
//! and CURVE run (admitted and refused). A process of its own: it owns the global logger.

use std::sync::Mutex;

use crate::common::*;
use actix_zap::certs::{create_certificates, load_certificate, Flavour};
use actix_zap::ThreadAuthenticator;

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {} {}", record.level(), record.target(), record.args());
        LINES.lock().unwrap().push(line);
    }

    fn flush(&self) {}
}

/// The log targets the README lists: public paths (or named topics), never a private module.
const PUBLIC_TARGETS: [&str; 12] = [
    "actix_zap::decision",
    "actix_zap::control",
    "actix_zap::provider",
    "actix_zap::actors::PolicyActor",
    "actix_zap::actors::ZapSocket",
    "actix_zap::messages::Watch",
    "actix_zap::certs",
    "actix_zap::postgres",
    "actix_zap::HandshakeWatch",
    "actix_zap::ThreadAuthenticator",
    "actix_zap::AuthenticatorBuilder",
    "actix_zap::Settings",
];

/// Every line of this crate was logged under one of [`PUBLIC_TARGETS`].
fn assert_public_targets(lines: &[String]) {
    for line in lines {
        let target = line.split(' ').nth(1).unwrap_or_default();
        assert!(
            !target.starts_with("actix_zap") || PUBLIC_TARGETS.contains(&target),
            "a private log target: {line}"
        );
    }
}

/// The logger is process-wide: the test runs in a child process of its own, where it is the
/// only one to install a logger.
#[test]
fn passwords_and_secret_keys_never_appear_in_logs() {
    child::isolated(
        "secrets::passwords_and_secret_keys_never_appear_in_logs",
        &[],
        logged_runs,
    );
}

/// PLAIN and CURVE runs, admitted and refused, with every log line captured.
fn logged_runs() {
    log::set_logger(&Capture).unwrap();
    log::set_max_level(log::LevelFilter::Trace);

    const PASSWORD: &str = "correct-horse-battery-staple";
    const WRONG_PASSWORD: &str = "tr0ub4dor-and-3";
    let ctx = zmq::Context::new();
    let auth = ThreadAuthenticator::start(&ctx).unwrap();
    auth.configure_plain("*", [("admin", PASSWORD)]).unwrap();
    handshake(
        &ctx,
        &Server::Plain,
        Some("d"),
        &Client::Plain("admin", PASSWORD),
    )
    .assert_admitted("admin");
    handshake(
        &ctx,
        &Server::Plain,
        Some("d"),
        &Client::Plain("admin", WRONG_PASSWORD),
    )
    .assert_refused(400);

    let dir = tempfile::tempdir().unwrap();
    let (client_public, client_secret) =
        create_certificates(dir.path(), "client", &[], Flavour::Pyzmq).unwrap();
    let client_cert = load_certificate(&client_secret).unwrap();
    std::fs::remove_file(&client_secret).unwrap(); // only public keys in the trusted dir
    let server_keys = Keys::generate();
    auth.configure_curve("*", dir.path()).unwrap();
    let client_keys = Keys {
        public: client_cert.public_key,
        secret: client_cert.secret_key.clone().unwrap(),
    };
    let client = Client::Curve(server_keys.public, client_keys);
    handshake(
        &ctx,
        &Server::Curve(server_keys.clone()),
        Some("d"),
        &client,
    )
    .assert_admitted(&client_cert.public_key.to_z85());
    let stranger = Client::Curve(server_keys.public, Keys::generate());
    handshake(
        &ctx,
        &Server::Curve(server_keys.clone()),
        Some("d"),
        &stranger,
    )
    .assert_refused(400);
    auth.stop();
    assert!(client_public.exists());

    let lines = LINES.lock().unwrap();
    assert!(
        lines.iter().any(|l| l.contains("actix_zap")),
        "the capture saw the authenticator's logs"
    );
    assert_public_targets(&lines);
    let secrets = [
        PASSWORD.to_string(),
        WRONG_PASSWORD.to_string(),
        client_cert.secret_key.unwrap().to_z85(),
        server_keys.secret.to_z85(),
    ];
    for line in lines.iter() {
        for secret in &secrets {
            assert!(
                !line.contains(secret.as_str()),
                "secret in log line: {line}"
            );
        }
    }
}

/// The key an operator needs to trust a refused CURVE client, and the username a refused PLAIN
/// client gave, are in its decision event and in the decision log line (as pyzmq logs
/// `DENIED (CURVE) domain=… client_key=…`); the password is in neither. A process of its own:
/// it owns the global logger.
#[test]
fn a_refused_client_is_named_by_its_key_or_username_in_its_event_and_the_log() {
    child::isolated(
        "secrets::a_refused_client_is_named_by_its_key_or_username_in_its_event_and_the_log",
        &[],
        named_refusals,
    );
}

fn named_refusals() {
    log::set_logger(&Capture).unwrap();
    log::set_max_level(log::LevelFilter::Debug);
    const WRONG_PASSWORD: &str = "not-the-password-42";
    let ctx = zmq::Context::new();
    let auth = ThreadAuthenticator::start(&ctx).unwrap();
    let (events, received) = std::sync::mpsc::channel();
    let events = Mutex::new(events);
    auth.on_decision(move |event| {
        let _ = events.lock().unwrap().send(event.clone());
    })
    .unwrap();
    let next = || received.recv_timeout(PATIENCE).expect("a decision event");

    let trusted = tempfile::tempdir().unwrap();
    auth.configure_curve("*", trusted.path()).unwrap();
    let server_keys = Keys::generate();
    let stranger = Keys::generate();
    let stranger_z85 = stranger.public.to_z85();
    handshake(
        &ctx,
        &Server::Curve(server_keys.clone()),
        Some("d"),
        &Client::Curve(server_keys.public, stranger.clone()),
    )
    .assert_refused(400);
    let event = next();
    assert_eq!(event.client_key, Some(stranger.public), "{event:?}");
    assert_eq!(
        (event.username.as_deref(), event.user_id.as_str()),
        (None, "")
    );

    auth.configure_plain("*", [("admin", "the-password")])
        .unwrap();
    handshake(
        &ctx,
        &Server::Plain,
        Some("d"),
        &Client::Plain("mallory\"", WRONG_PASSWORD),
    )
    .assert_refused(400);
    let event = next();
    assert_eq!(event.username.as_deref(), Some("mallory\""), "{event:?}");
    assert_eq!(event.client_key, None);
    auth.stop();

    let lines = LINES.lock().unwrap();
    let decision = |needle: &str| {
        lines
            .iter()
            .find(|l| l.starts_with("DEBUG actix_zap::decision 400") && l.contains(needle))
            .unwrap_or_else(|| panic!("no refusal line with {needle}: {lines:#?}"))
            .clone()
    };
    let curve = decision(&format!("client_key={stranger_z85}"));
    assert!(curve.contains("mechanism=CURVE"), "{curve}");
    // Escaped: the username is the peer's text.
    let plain = decision(r#"username="mallory\"""#);
    assert!(plain.contains("mechanism=PLAIN"), "{plain}");
    assert!(
        lines.iter().all(|l| !l.contains(WRONG_PASSWORD)),
        "{lines:#?}"
    );
    assert_public_targets(&lines);
}
