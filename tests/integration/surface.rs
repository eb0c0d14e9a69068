//! The public surface as a user meets it, end to end: the thread handle mirrors the async one
//! (and refuses to deadlock on its own thread), every CURVE source has a named way in, errors
//! say what happened, and actors subscribe with their recipient as it is.

use std::path::Path;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;

use crate::common::*;
use actix::prelude::*;
use actix_zap::certs::{CertStore, Certificate, Flavour};
use actix_zap::messages::{
    Allow, ConfigureCurve, ConfigurePlain, DecisionEvent, Inspect, TakeOver, Watch,
};
use actix_zap::policy::MechanismKind;
use actix_zap::zap::StatusCode;
use actix_zap::{ConfigError, ReloadError, ThreadAuthenticator, Unavailable};

fn null_server(context: &zmq::Context) -> Listening {
    Listening::new(context, &Server::Null, Some("global"))
}

#[test]
fn a_blocking_call_inside_an_on_decision_callback_is_an_error_not_a_deadlock() {
    let (context, auth) = started();
    let (answers, answered) = channel::<(Result<(), Unavailable>, Result<(), ConfigError>)>();
    let answers = Mutex::new(answers);
    let inner = auth.clone();
    auth.on_decision(move |_| {
        // Both would wait for this very thread; both must come back at once.
        let inspected = inner.inspect().map(|_| ());
        let allowed = inner.allow(["10.0.0.1"]);
        let _ = answers.lock().unwrap().send((inspected, allowed));
    })
    .unwrap();
    let server = null_server(&context);
    server
        .attempt(&context, &Client::Null)
        .assert_admitted("anonymous");
    let (inspected, allowed) = answered.recv_timeout(PATIENCE).expect("the callback ran");
    assert_eq!(inspected, Err(Unavailable::OwnThread));
    assert!(
        matches!(allowed, Err(ConfigError::OwnThread)),
        "{allowed:?}"
    );
    // Refused means nothing changed: no address rule, NULL clients still admitted, and the
    // authenticator still answers its other callers.
    assert!(auth.inspect().unwrap().addresses.is_open());
    server
        .attempt(&context, &Client::Null)
        .assert_admitted("anonymous");
    auth.stop();
}

#[test]
fn stop_from_a_callback_starts_the_shutdown_and_stop_is_idempotent_on_every_clone() {
    let (context, auth) = started();
    let (stopped, returned) = channel::<()>();
    let stopped = Mutex::new(stopped);
    let inner = auth.clone();
    auth.on_decision(move |_| {
        inner.stop(); // on its own thread: starts the shutdown, does not wait for itself
        let _ = stopped.lock().unwrap().send(());
    })
    .unwrap();
    null_server(&context)
        .attempt(&context, &Client::Null)
        .assert_admitted("anonymous");
    returned
        .recv_timeout(PATIENCE)
        .expect("stop() inside a callback returned");
    let clone = auth.clone();
    auth.stop(); // waits for the thread to end
    clone.stop(); // and again: returns at once
    assert!(!auth.is_running() && !clone.is_running());
    assert_eq!(auth.inspect().unwrap_err(), Unavailable::Stopped);
    assert!(matches!(
        auth.allow(["10.0.0.1"]),
        Err(ConfigError::Stopped)
    ));
    // The endpoint is free again.
    ThreadAuthenticator::start(&context).unwrap().stop();
}

#[test]
fn the_thread_handle_has_every_method_of_the_async_one() {
    let (context, auth) = started();
    let keys = Keys::generate();
    let client = Keys::generate();
    let mut store = CertStore::new();
    store.insert(client.public, actix_zap::zap::Metadata::empty());

    auth.send(Allow::new(["127.0.0.1", "10.0.0.0/8"]).unwrap())
        .unwrap();
    assert_eq!(auth.remove_addresses(["10.0.0.0/8"]).unwrap(), 1);
    assert_eq!(auth.configure_curve_keys("*", store).unwrap().keys, 1);
    auth.set_curve_user_id(|_| "mapped".to_owned()).unwrap();
    auth.reset_curve_user_id().unwrap();
    let server = Listening::new(&context, &Server::Curve(keys.clone()), Some("global"));
    let user = client.public.to_z85();
    server
        .attempt(&context, &Client::Curve(keys.public, client.clone()))
        .assert_admitted(&user);

    let (events, seen) = channel();
    let events = Mutex::new(events);
    let id = auth
        .on_decision(move |e: &DecisionEvent| {
            let _ = events.lock().unwrap().send(e.status);
        })
        .unwrap();
    server
        .attempt(&context, &Client::Curve(keys.public, Keys::generate()))
        .assert_refused(400);
    assert_eq!(seen.recv_timeout(PATIENCE).unwrap(), StatusCode::Denied);
    assert!(auth.unsubscribe(id).unwrap());
    assert!(!auth.unsubscribe(id).unwrap());

    let dir = tempfile::tempdir().unwrap();
    write_public(dir.path(), "client.key", &client);
    assert_eq!(
        auth.watch(Watch::curve("*", dir.path())).unwrap().entries,
        1
    );
    assert_eq!(auth.watches().unwrap().len(), 1);
    assert!(auth.unwatch("*", MechanismKind::Curve).unwrap());
    assert!(auth.watches().unwrap().is_empty());
    assert!(auth.stats().unwrap().count(StatusCode::Ok) >= 1);
    auth.stop();
}

/// Writes `keys`' public certificate in CZMQ's flavour as `path`.
fn write_czmq_public(path: &Path, keys: &Keys) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let cert = Certificate {
        public_key: keys.public,
        secret_key: None,
        metadata: vec![("team".into(), "ops".into())],
    };
    cert.save_public(path, Flavour::Czmq).unwrap();
}

#[test]
fn a_czmq_certificate_store_admits_keys_from_any_file_name_and_the_pyzmq_layout_says_why_not() {
    let (context, auth) = started();
    let server_keys = Keys::generate();
    let (alice, bob) = (Keys::generate(), Keys::generate());
    let store = tempfile::tempdir().unwrap();
    write_czmq_public(&store.path().join("alice.cert"), &alice);
    write_czmq_public(&store.path().join("team/bob.txt"), &bob);
    let server = Listening::new(
        &context,
        &Server::Curve(server_keys.clone()),
        Some("global"),
    );

    let report = auth.configure_curve_czmq("*", store.path()).unwrap();
    assert_eq!((report.keys, report.warning.as_deref()), (2, None));
    let mut admitted = server.attempt(&context, &Client::Curve(server_keys.public, bob.clone()));
    assert!(admitted.is_admitted());
    assert_eq!(admitted.property("team").as_deref(), Some("ops"));

    // Followed live, alike.
    let reloaded = auth.watch(Watch::czmq("*", store.path())).unwrap();
    assert_eq!((reloaded.entries, reloaded.error), (2, None));
    // The same directory read in pyzmq's layout (`*.key` only), taking over from the watch,
    // admits nobody, and says so.
    let report = auth
        .send(ConfigureCurve::directory("*", store.path()).take_over())
        .unwrap();
    assert_eq!(report.keys, 0);
    let warning = report
        .warning
        .expect("a warning for files without certificates");
    assert!(warning.contains("no public certificate"), "{warning}");
    assert!(warning.contains("CZMQ"), "{warning}");
    server
        .attempt(&context, &Client::Curve(server_keys.public, alice))
        .assert_refused(400);
    auth.stop();
}

#[test]
fn a_watch_replaced_before_its_first_load_is_superseded_not_stopped() {
    let (_context, auth) = started();
    let dir = tempfile::tempdir().unwrap();
    write_public(dir.path(), "client.key", &Keys::generate());
    // Reads wait until released, so the first load cannot finish before the unwatch.
    let (release, held) = channel::<()>();
    let held = Mutex::new(held);
    let watch = Watch::curve("*", dir.path()).read_through(move |path| {
        let _ = held.lock().unwrap().recv();
        std::fs::read(path)
    });
    let first = auth.policy().send(watch);
    assert!(auth.unwatch("*", MechanismKind::Curve).unwrap());
    let answer = futures::executor::block_on(first).expect("the actor answered");
    assert!(matches!(answer, Err(ConfigError::Superseded)), "{answer:?}");
    assert!(auth.is_running());
    let _ = release.send(());
    auth.stop();
}

#[test]
fn messages_sent_to_the_actor_take_two_question_marks_and_queries_one() {
    let (_context, auth) = started();
    let handle = auth.handle().clone();
    let applied: Result<(), ConfigError> = futures::executor::block_on(async move {
        handle
            .policy()
            .send(ConfigurePlain::new("global", [("admin", "secret")]))
            .await??;
        handle
            .policy()
            .send(ConfigureCurve::allow_any("global"))
            .await??;
        let snapshot = handle.policy().send(Inspect).await?;
        assert_eq!(snapshot.plain.len(), 1);
        Ok(())
    });
    applied.unwrap();
    auth.stop();
    let stopped = futures::executor::block_on(auth.handle().policy().send(Inspect));
    assert!(matches!(
        stopped.map_err(ConfigError::from),
        Err(ConfigError::Stopped)
    ));
}

/// Forwards every decision event it receives.
struct Collector(Sender<DecisionEvent>);

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<DecisionEvent> for Collector {
    type Result = ();

    fn handle(&mut self, event: DecisionEvent, _: &mut Self::Context) {
        let _ = self.0.send(event);
    }
}

/// Runs a `Collector` in an actix System of its own thread.
fn collector() -> (Recipient<DecisionEvent>, Receiver<DecisionEvent>, System) {
    let (events, received) = channel();
    let (started, ready) = channel();
    std::thread::spawn(move || {
        let system = System::new();
        system.block_on(async {
            let recipient = Collector(events).start().recipient();
            started.send((recipient, System::current())).unwrap();
        });
        system.run().unwrap();
    });
    let (recipient, system) = ready.recv_timeout(PATIENCE).unwrap();
    (recipient, received, system)
}

#[test]
fn an_actor_subscribes_with_its_recipient_as_it_is() {
    let (context, auth) = started();
    let (recipient, events, system) = collector();
    auth.subscribe(recipient).unwrap();
    null_server(&context)
        .attempt(&context, &Client::Null)
        .assert_admitted("anonymous");
    let event = events
        .recv_timeout(PATIENCE)
        .expect("the actor got the event");
    assert_eq!(
        (event.status, event.domain.as_str()),
        (StatusCode::Ok, "global")
    );
    auth.stop();
    system.stop();
}

#[test]
fn both_handles_can_be_cloned_and_shared_across_threads() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<ThreadAuthenticator>();
    shareable::<actix_zap::Authenticator>();
}

#[test]
fn reload_reports_carry_typed_errors_that_name_the_path() {
    let (_context, auth) = started();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let first = auth.watch(Watch::curve("a", &missing)).unwrap();
    assert!(
        matches!(&first.error, Some(ReloadError::Unreadable { path, .. }) if *path == missing),
        "{first:?}"
    );
    let first = auth.watch(Watch::curve("b", dir.path())).unwrap();
    assert!(
        matches!(&first.error, Some(ReloadError::NoEntries { path }) if path == dir.path()),
        "{first:?}"
    );
    let broken = dir.path().join("broken.key");
    std::fs::write(&broken, "not a certificate").unwrap();
    write_public(dir.path(), "ok.key", &Keys::generate());
    let first = auth.watch(Watch::curve("c", dir.path())).unwrap();
    assert_eq!((first.entries, &first.error), (1, &None));
    assert!(
        matches!(&first.rejected[..], [ReloadError::InvalidFile { path, .. }] if *path == broken),
        "{first:?}"
    );
    auth.stop();
}

/// The build script, run as Cargo runs it for a project without the `.cargo/config.toml`
/// lines: it prints the lines to add and exits with an error — no panic, no backtrace. (The
/// newest compiled script in this target directory is this build.rs.)
#[test]
fn the_build_script_without_the_system_libzmq_says_what_to_add_and_fails_without_a_panic() {
    let exe = std::env::current_exe().unwrap();
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let script = std::fs::read_dir(profile.join("build"))
        .unwrap()
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with("actix-zap-")
        })
        .map(|entry| entry.path().join("build-script-build"))
        .filter_map(|path| Some((std::fs::metadata(&path).ok()?.modified().ok()?, path)))
        .max()
        .map(|(_, path)| path)
        .expect("the compiled build script");
    let run = |system: Option<&str>| {
        let mut command = std::process::Command::new(&script);
        command
            .env_remove("DEP_ZMQ_SYSTEM")
            .env_remove("DOCS_RS")
            .env("TARGET", "x86_64-unknown-linux-gnu")
            .env("RUST_BACKTRACE", "1");
        if let Some(system) = system {
            command.env("DEP_ZMQ_SYSTEM", system);
        }
        command.output().unwrap()
    };
    let refused = run(None);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    for line in [
        "has no CURVE support",
        "[target.x86_64-unknown-linux-gnu.zmq]",
        "rustc-link-lib = [\"zmq\"]",
        "system = \"1\"",
    ] {
        assert!(stderr.contains(line), "{line} missing from: {stderr}");
    }
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    assert_eq!(run(Some("1")).status.code(), Some(0));
}

/// `ThreadAuthenticator::builder()` gives a builder whose `start` gives the thread handle, on
/// a thread with no actix System, and its settings apply: with a pair threshold of 1, one
/// wrong password is enough to refuse the right one from the same address.
#[test]
fn the_thread_builder_starts_a_thread_handle_outside_actix_with_its_settings() {
    init_logging();
    assert!(
        actix::System::try_current().is_none(),
        "a test thread has no System"
    );
    let context = zmq::Context::new();
    let settings = actix_zap::Settings::default().with_throttle_pair_threshold(1);
    let auth: ThreadAuthenticator = ThreadAuthenticator::builder()
        .settings(settings)
        .start(&context)
        .unwrap();
    auth.configure_plain("global", [("alice", "right")])
        .unwrap();
    let server = Listening::new(&context, &Server::Plain, Some("global"));
    server
        .attempt(&context, &Client::Plain("alice", "wrong"))
        .assert_refused(400);
    server
        .attempt(&context, &Client::Plain("alice", "right"))
        .assert_refused(400);
    assert_eq!(auth.stats().unwrap().count(StatusCode::Ok), 0);
    auth.stop();

    // The default settings admit the right password after one wrong one.
    let auth = ThreadAuthenticator::builder().start(&context).unwrap();
    auth.configure_plain("global", [("alice", "right")])
        .unwrap();
    server
        .attempt(&context, &Client::Plain("alice", "wrong"))
        .assert_refused(400);
    server
        .attempt(&context, &Client::Plain("alice", "right"))
        .assert_admitted("alice");
    auth.stop();
}

/// No item has two public paths: a `pub use` of an item that sits directly in a public module
/// of the root (`crate::policy::Item`) would give it a second one.
#[test]
fn no_item_is_re_exported_from_another_public_module() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let public: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';'))
        .collect();
    assert!(
        public.contains(&"policy") && public.contains(&"messages"),
        "{public:?}"
    );
    let mut second_paths = Vec::new();
    for entry in walkdir::WalkDir::new(&src) {
        let path = entry.unwrap().into_path();
        if path.extension().is_none_or(|e| e != "rs") || path.starts_with(src.join("bin")) {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        for statement in source.split(';') {
            let Some(at) = statement.find("pub use ") else {
                continue;
            };
            let used = statement[at + "pub use ".len()..].trim();
            // Outside lib.rs a relative path names a submodule of that file's own module.
            let used = match used.strip_prefix("crate::") {
                Some(absolute) => absolute,
                None if path.ends_with("src/lib.rs") => used,
                None => continue,
            };
            for module in &public {
                let Some(rest) = used.strip_prefix(&format!("{module}::")) else {
                    continue;
                };
                // A private submodule's item has its one public path here; an item of the
                // public module itself (or a group of them) already has one there.
                if rest.starts_with(|c: char| c == '{' || c.is_ascii_uppercase()) {
                    second_paths.push(format!("{}: pub use {used}", path.display()));
                }
            }
        }
    }
    assert!(second_paths.is_empty(), "{second_paths:#?}");
}
