//! What an operator scrapes (feature `metrics`): the test installs a recorder (the crate never
//! does), makes known decisions over real sockets — PLAIN clear and hashed, CURVE keys, a
//! provider held while requests queue, a session ended by a revocation — and reads exact
//! counts back, with no label naming an address, a user or a key.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use actix_zap::messages::{AddPlainUsers, RemovePlainUsers};
use actix_zap::metrics::{DECISIONS, DECISION_SECONDS, IN_FLIGHT, QUEUE_DEPTH, SESSIONS_ENDED};
use actix_zap::provider::{CurveVerdict, Provider};
use actix_zap::{ServerSocket, Settings};

use crate::common::recorder::TestRecorder;
use crate::common::*;

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut labels: Vec<(String, String)> = (pairs.iter())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    labels.sort();
    labels
}

fn decision(domain: &str, mechanism: &str, status: &str) -> Vec<(String, String)> {
    labels(&[
        ("domain", domain),
        ("mechanism", mechanism),
        ("status", status),
    ])
}

#[test]
fn decisions_latency_in_flight_queues_and_ended_sessions_are_counted_exactly() {
    child::isolated(
        "observing::decisions_latency_in_flight_queues_and_ended_sessions_are_counted_exactly",
        &[],
        || {
            let recorder = TestRecorder::install();
            init_logging();
            let context = zmq::Context::new();
            // One provider worker, so that held requests queue; a deadline that never fires.
            let settings = Settings::default()
                .with_provider_threads(1)
                .with_provider_queue(4)
                .with_provider_deadline(PATIENCE);
            let auth = actix_zap::Authenticator::builder()
                .settings(settings)
                .start_thread(&context)
                .unwrap();

            // PLAIN: clear-text and hashed.
            auth.configure_plain("plain", [("alice", "pw"), ("bob", "pw")])
                .unwrap();
            let hashed = AddPlainUsers::new("hashed", [("carol", cheap_hash("pw"))]);
            auth.send(hashed).unwrap();
            let plain = Listening::new(&context, &Server::Plain, Some("plain"));
            plain
                .attempt(&context, &Client::Plain("alice", "pw"))
                .assert_admitted("alice");
            plain
                .attempt(&context, &Client::Plain("alice", "wrong"))
                .assert_refused(400);
            let argon = Listening::new(&context, &Server::Plain, Some("hashed"));
            argon
                .attempt(&context, &Client::Plain("carol", "pw"))
                .assert_admitted("carol");

            // CURVE: a known key and an unknown one.
            let (server, known, unknown) = (Keys::generate(), Keys::generate(), Keys::generate());
            let keys = [known.public].into_iter().collect();
            auth.configure_curve_keys("curve", keys).unwrap();
            let curve = Listening::new(&context, &Server::Curve(server.clone()), Some("curve"));
            curve
                .attempt(&context, &Client::Curve(server.public, known.clone()))
                .assert_admitted(&known.public.to_z85());
            curve
                .attempt(&context, &Client::Curve(server.public, unknown.clone()))
                .assert_refused(400);

            // A session of bob's, open (its first message received), ended by his removal.
            let mut sessions = ServerSocket::plain("plain")
                .build_sessions(&context, zmq::PULL)
                .unwrap();
            let raw = sessions.raw();
            raw.set_rcvtimeo(PATIENCE.as_millis() as i32).unwrap();
            raw.set_linger(0).unwrap();
            sessions.bind("tcp://127.0.0.1:*").unwrap();
            let endpoint = sessions.raw().get_last_endpoint().unwrap().unwrap();
            let bob = client_socket(&context, &Client::Plain("bob", "pw"));
            // No reconnection after the session ends: its refusal would be one more decision.
            bob.set_reconnect_ivl(-1).unwrap();
            bob.connect(&endpoint).unwrap();
            send_after_connect(&bob, "hello");
            sessions.recv_msg(0).expect("bob's first message");
            let removal = RemovePlainUsers {
                domain: "plain".into(),
                users: vec!["bob".into()],
            };
            auth.send(removal).unwrap();

            // A blocking provider held until released: one request runs, two wait in its queue.
            let (release, held) = mpsc::channel::<()>();
            let held = Arc::new(Mutex::new(held));
            let asked = Arc::new(AtomicUsize::new(0));
            let counter = Arc::clone(&asked);
            let provider = Provider::from_fn(move |_, _| {
                counter.fetch_add(1, Ordering::SeqCst);
                held.lock().unwrap().recv().unwrap();
                Ok(CurveVerdict::admit())
            });
            auth.configure_curve_callback("held", provider).unwrap();
            let waiting = Listening::new(&context, &Server::Curve(server.clone()), Some("held"));
            let clients: Vec<zmq::Socket> = (0..3)
                .map(|_| waiting.connect(&context, &Client::Curve(server.public, Keys::generate())))
                .collect();
            wait_for(&asked);
            // The worker holds the first; the gauge only rises until both others are queued.
            recorder.wait_for_gauge(QUEUE_DEPTH, &[("queue", "provider")], 2.0);
            assert_eq!(recorder.gauge(IN_FLIGHT, &[]), Some(3.0));
            for _ in 0..3 {
                release.send(()).unwrap();
            }
            for _ in 0..3 {
                assert!(waiting.outcome().is_admitted());
            }
            drop(clients);

            let expected = [
                (decision("plain", "PLAIN", "200"), 2),
                (decision("plain", "PLAIN", "400"), 1),
                (decision("hashed", "PLAIN", "200"), 1),
                (decision("curve", "CURVE", "200"), 1),
                (decision("curve", "CURVE", "400"), 1),
                (decision("held", "CURVE", "200"), 3),
            ];
            assert_eq!(recorder.counted(DECISIONS), expected.into_iter().collect());
            let ended = [(labels(&[("domain", "plain")]), 1)];
            assert_eq!(
                recorder.counted(SESSIONS_ENDED),
                ended.into_iter().collect()
            );
            let stats = auth.stats().unwrap();
            assert_eq!(stats.sessions_ended, 1);
            assert_eq!(
                recorder.samples(DECISION_SECONDS, &[("mechanism", "PLAIN")]),
                4
            );
            assert_eq!(
                recorder.samples(DECISION_SECONDS, &[("mechanism", "CURVE")]),
                5
            );
            assert_eq!(recorder.gauge(IN_FLIGHT, &[]), Some(0.0));
            let provider_queue = recorder.gauge(QUEUE_DEPTH, &[("queue", "provider")]);
            assert_eq!(provider_queue, Some(0.0));
            let argon2_queue = recorder.gauge(QUEUE_DEPTH, &[("queue", "argon2")]);
            assert_eq!(
                argon2_queue,
                Some(0.0),
                "carol's verification went through it"
            );

            // Never a label by address, user or key.
            let who = [
                "127.0.0.1".to_owned(),
                "alice".into(),
                "bob".into(),
                "carol".into(),
                known.public.to_z85(),
                unknown.public.to_z85(),
            ];
            for (key, value) in recorder.all_labels() {
                let allowed = ["domain", "mechanism", "status", "queue", "source"];
                assert!(allowed.contains(&key.as_str()), "label {key}={value}");
                assert!(!who.contains(&value), "label {key}={value}");
            }
            auth.stop();
        },
    );
}
