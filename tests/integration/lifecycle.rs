//! Lifecycle: 100 start/stop cycles on one context leak no descriptor and never hang;
//! configuration after `stop` is a typed error. In a process of its own (a child, see
//! `common::child`), because it counts the process's open descriptors.

use std::time::Instant;

use crate::common::*;
use actix_zap::{Authenticator, ConfigError, ThreadAuthenticator};

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// libzmq's reaper closes a socket's descriptors shortly after `close`: wait (bounded) for
/// the count to settle back to `baseline` (or below: the baseline may still include the
/// warm-up's sockets). A leak of one descriptor per cycle would leave 20 to 100 more.
fn assert_settles_to(baseline: usize) {
    let deadline = Instant::now() + PATIENCE;
    let mut now = open_descriptors();
    while now > baseline && Instant::now() < deadline {
        std::thread::yield_now();
        now = open_descriptors();
    }
    assert!(
        now <= baseline,
        "descriptors leaked: {now} open, {baseline} before"
    );
}

/// One test in a child process, so nothing else in its process opens descriptors while they
/// are counted.
#[test]
fn start_stop_cycles_leak_nothing_and_never_hang() {
    child::isolated(
        "lifecycle::start_stop_cycles_leak_nothing_and_never_hang",
        &[],
        || {
            a_hundred_actix_cycles_each_one_authenticating();
            thread_authenticator_cycles();
        },
    );
}

fn a_hundred_actix_cycles_each_one_authenticating() {
    init_logging();
    let context = zmq::Context::new();
    let server_ctx = context.clone();
    // Warm-up: libzmq's I/O thread and reaper, the actix runtime.
    let system = actix::System::new();
    system.block_on(async {
        Authenticator::start(&context).unwrap().stop().await;
    });
    let baseline = open_descriptors();

    system.block_on(async move {
        for cycle in 0..100 {
            let auth = Authenticator::start(&context).unwrap();
            auth.configure_plain("*", [("u", format!("p{cycle}"))])
                .await
                .unwrap();
            if cycle % 20 == 0 {
                // A real handshake, off the actix thread.
                let c = server_ctx.clone();
                let password: &'static str = Box::leak(format!("p{cycle}").into_boxed_str());
                let mut outcome = tokio::task::spawn_blocking(move || {
                    handshake(&c, &Server::Plain, Some("d"), &Client::Plain("u", password))
                })
                .await
                .unwrap();
                assert_eq!(outcome.user_id(), "u");
            }
            auth.stop().await;
            assert!(matches!(
                auth.allow(["127.0.0.1"]).await,
                Err(ConfigError::Stopped)
            ));
        }
    });
    assert_settles_to(baseline);
}

fn thread_authenticator_cycles() {
    let context = zmq::Context::new();
    ThreadAuthenticator::start(&context).unwrap().stop();
    let baseline = open_descriptors();
    for _ in 0..20 {
        let auth = ThreadAuthenticator::start(&context).unwrap();
        auth.configure_plain("*", [("a", "b")]).unwrap();
        auth.stop();
    }
    assert_settles_to(baseline);
    // Context teardown does not hang: returning from this drop is the proof.
    drop(context);
}
