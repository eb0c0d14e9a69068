//! A blocked actix thread stalls every handshake; the authenticator says so (a warning in the
//! log, `Stats::stalls`) instead of staying silent.

use std::time::{Duration, Instant};

use crate::common::*;
use actix_zap::zap::RequestBuilder;
use actix_zap::{Authenticator, Settings};

#[test]
fn blocking_the_actix_thread_while_a_request_waits_is_reported_as_a_stall() {
    init_logging();
    let context = zmq::Context::new();
    let system = actix::System::new();
    system.block_on(async {
        let settings = Settings::default().with_stall_warning(Some(Duration::from_millis(50)));
        let auth = Authenticator::builder()
            .settings(settings)
            .start(&context)
            .unwrap();
        // A request is waiting at the ZAP endpoint before the thread blocks (an inproc send
        // is complete when it returns).
        let rogue = context.socket(zmq::DEALER).unwrap();
        rogue.set_linger(0).unwrap();
        rogue.set_rcvtimeo(PATIENCE.as_millis() as i32).unwrap();
        rogue.connect("inproc://zeromq.zap.01").unwrap();
        let request = RequestBuilder::null().domain("global").request_id("7");
        rogue
            .send_multipart(request.frames_for_dealer(), 0)
            .unwrap();
        // The mistake this test is about: a blocking call on the actix thread, ten times
        // the threshold.
        std::thread::sleep(Duration::from_millis(500));
        // Given the thread back, the authenticator answers the request...
        let reply = tokio::task::spawn_blocking(move || rogue.recv_multipart(0))
            .await
            .unwrap()
            .expect("the waiting request is answered");
        assert_eq!(&reply[2..4], [&b"7"[..], b"200"]);
        // ...and reports the stall it waited through.
        let deadline = Instant::now() + PATIENCE;
        loop {
            let stats = auth.stats().await.unwrap();
            if stats.stalls >= 1 {
                break;
            }
            assert!(Instant::now() < deadline, "no stall reported: {stats:?}");
            actix::clock::sleep(Duration::from_millis(10)).await;
        }
        auth.stop().await;
    });
}
