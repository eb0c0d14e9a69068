//! What pyzmq and CZMQ users ask for, end to end: IPv6 and per-domain address rules,
//! decision events and counters, and inspecting and undoing the policy (live reload has its
//! own file, `live_reload.rs`).

use std::sync::{Arc, Mutex};

use crate::common::*;
use actix_zap::messages::{DecisionEvent, EventMechanism};
use actix_zap::policy::MechanismKind;
use actix_zap::policy::{AddressRules, CurveSummary};
use actix_zap::zap::StatusCode;
use actix_zap::CURVE_ALLOW_ANY;

#[test]
fn ipv6_peers_and_ipv4_mapped_peers_match_their_rules() {
    let (ctx, auth) = started();
    auth.allow(["::1", "127.0.0.0/8"]).unwrap();
    // An IPv6 client over ::1.
    let socket = server_socket(&ctx, &Server::Null, Some("v6"));
    socket.set_ipv6(true).unwrap();
    let monitor = Monitor::attach(&ctx, &socket);
    socket.bind("tcp://[::1]:0").unwrap();
    let endpoint = socket.get_last_endpoint().unwrap().unwrap();
    let v6 = Listening {
        socket,
        monitor,
        endpoint,
    };
    let client = client_socket(&ctx, &Client::Null);
    client.set_ipv6(true).unwrap();
    client.connect(&v6.endpoint).unwrap();
    client.send("hi", 0).unwrap();
    v6.outcome().assert_admitted("anonymous");

    // A dual-stack listener reports an IPv4 client as ::ffff:127.0.0.1.
    let socket = server_socket(&ctx, &Server::Null, Some("mapped"));
    socket.set_ipv6(true).unwrap();
    let monitor = Monitor::attach(&ctx, &socket);
    socket.bind("tcp://*:0").unwrap();
    let port = socket
        .get_last_endpoint()
        .unwrap()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let mapped = Listening {
        socket,
        monitor,
        endpoint: format!("tcp://127.0.0.1:{port}"),
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    auth.on_decision(move |e| sink.lock().unwrap().push(e.address.clone()))
        .unwrap();
    mapped
        .attempt(&ctx, &Client::Null)
        .assert_admitted("anonymous");
    assert_eq!(seen.lock().unwrap().as_slice(), ["::ffff:127.0.0.1"]);
    auth.stop();
}

#[test]
fn per_domain_rules_refuse_in_their_domain_only_and_can_be_removed() {
    let (ctx, auth) = started();
    auth.deny_in("guarded", ["127.0.0.1"]).unwrap();
    handshake(&ctx, &Server::Null, Some("guarded"), &Client::Null).assert_refused(400);
    handshake(&ctx, &Server::Null, Some("open"), &Client::Null).assert_admitted("anonymous");
    let removed = futures::executor::block_on(
        auth.handle().send(
            actix_zap::messages::RemoveAddresses::new(["127.0.0.1"])
                .unwrap()
                .in_domain("guarded"),
        ),
    )
    .unwrap();
    assert_eq!(removed, 1);
    handshake(&ctx, &Server::Null, Some("guarded"), &Client::Null).assert_admitted("anonymous");
    auth.stop();
}

#[test]
fn decision_events_and_counters_describe_every_decision_without_secrets() {
    let (ctx, auth) = started();
    auth.configure_plain("*", [("admin", "s3cr3t-pw")]).unwrap();
    let events: Arc<Mutex<Vec<DecisionEvent>>> = Arc::default();
    let sink = Arc::clone(&events);
    let id = auth
        .on_decision(move |e| sink.lock().unwrap().push(e.clone()))
        .unwrap();
    let server = Listening::new(&ctx, &Server::Plain, Some("global"));
    server
        .attempt(&ctx, &Client::Plain("admin", "s3cr3t-pw"))
        .assert_admitted("admin");
    server
        .attempt(&ctx, &Client::Plain("admin", "wrong-pw"))
        .assert_refused(400);

    let stats = auth.stats().unwrap();
    assert_eq!(stats.replies[&(EventMechanism::Plain, StatusCode::Ok)], 1);
    assert_eq!(
        stats.replies[&(EventMechanism::Plain, StatusCode::Denied)],
        1
    );
    assert_eq!(stats.in_flight, 0);
    {
        let events = events.lock().unwrap();
        assert_eq!(events.len(), 2);
        let (ok, no) = (&events[0], &events[1]);
        assert_eq!(
            (
                ok.domain.as_str(),
                ok.address.as_str(),
                ok.mechanism.as_str()
            ),
            ("global", "127.0.0.1", "PLAIN")
        );
        assert_eq!((ok.status, ok.user_id.as_str()), (StatusCode::Ok, "admin"));
        assert_eq!(
            (no.status, no.reason.as_str()),
            (StatusCode::Denied, "Invalid password")
        );
        assert_eq!(no.user_id, "");
        let shown = format!("{events:?}");
        assert!(!shown.contains("s3cr3t-pw") && !shown.contains("wrong-pw"));
    }
    assert!(futures::executor::block_on(auth.handle().unsubscribe(id)).unwrap());
    server
        .attempt(&ctx, &Client::Plain("admin", "s3cr3t-pw"))
        .assert_admitted("admin");
    assert_eq!(
        events.lock().unwrap().len(),
        2,
        "no events after unsubscribing"
    );
    auth.stop();
}

#[test]
fn the_policy_can_be_inspected_and_undone() {
    let (ctx, auth) = started();
    let server_keys = Keys::generate();
    auth.allow(["127.0.0.1"]).unwrap();
    auth.configure_plain("*", [("admin", "hunter2")]).unwrap();
    auth.configure_curve("open", CURVE_ALLOW_ANY).unwrap();
    let snapshot = auth.inspect().unwrap();
    assert!(matches!(snapshot.addresses, AddressRules::Allow(_)));
    assert_eq!(snapshot.plain["*"], ["admin"]);
    assert_eq!(snapshot.curve["open"], CurveSummary::AllowAny);
    assert!(!format!("{snapshot:?}").contains("hunter2"));

    let client = Client::Curve(server_keys.public, Keys::generate());
    let server = Server::Curve(server_keys);
    assert!(handshake(&ctx, &server, Some("open"), &client).is_admitted());
    assert!(auth.unconfigure("open", MechanismKind::Curve).unwrap());
    handshake(&ctx, &server, Some("open"), &client).assert_refused(400);
    assert!(auth.inspect().unwrap().curve.is_empty());
    auth.stop();
}
