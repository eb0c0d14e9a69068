//! Instruction-count driver for the actor path, for callgrind: N raw ZAP requests of one
//! scenario, one at a time, from a DEALER on `inproc://zeromq.zap.01` through a running
//! `ThreadAuthenticator` (its `ZapSocket` and `PolicyActor`), as `benches/actors.rs`'s
//! `roundtrip` does. Where the criterion bench swings with the machine's load, the count
//! does not (much): it is what the throttle's counting costs per reply on the actor path.
//!
//! ```text
//! cargo bench --no-run --bench actor_instructions   # prints the binary's path
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/deps/actor_instructions-HASH refused_curve_unknown_key 10000
//! ```
//!
//! Per request: (I(20000) − I(10000)) / 10000, over all threads (this one, the
//! authenticator's, libzmq's). Only the public API that existed before the throttle stopped
//! parsing frames again is used, so an identical copy builds in an older checkout.
//! Scenarios (`list` prints them):
//!
//! - `plain`: a PLAIN admission while the throttle's table holds a failure of this address
//!   (another username), so every admission is counted (it forgets its pair's failures);
//! - `plain_empty_table`: a PLAIN admission, nothing counted;
//! - `refused_plain_wrong_password`: a wrong password, counted every time (thresholds raised
//!   so that it is never throttled);
//! - `refused_curve_unknown_key`: an unknown CURVE key, counted for its address every time.

use actix_zap::certs::CertStore;
use actix_zap::keys::CurvePublicKey;
use actix_zap::zap::RequestBuilder;
use actix_zap::{Settings, ThreadAuthenticator};
use futures::executor::block_on;

const SCENARIOS: [&str; 4] = [
    "plain",
    "plain_empty_table",
    "refused_plain_wrong_password",
    "refused_curve_unknown_key",
];

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let scenario = args.first().map_or("list", String::as_str);
    if !SCENARIOS.contains(&scenario) {
        println!("{}", SCENARIOS.join("\n"));
        return;
    }
    let n: usize = args.get(1).map_or(10_000, |n| n.parse().expect("N"));

    let context = zmq::Context::new();
    // Never throttled: every refusal is counted.
    let settings = Settings::default()
        .with_throttle_pair_threshold(u32::MAX)
        .with_throttle_address_threshold(u32::MAX);
    let auth = ThreadAuthenticator::builder()
        .settings(settings)
        .start(&context)
        .expect("authenticator");
    auth.configure_plain("*", [("admin", "secret"), ("other", "pw")])
        .unwrap();
    let known = CurvePublicKey::from_bytes([7; 32]);
    let store: CertStore = [known].into_iter().collect();
    block_on(auth.handle().configure_curve_keys("certs", store)).unwrap();

    let dealer = context.socket(zmq::DEALER).unwrap();
    dealer.set_linger(0).unwrap();
    dealer.set_rcvtimeo(10_000).unwrap();
    dealer.connect("inproc://zeromq.zap.01").unwrap();
    let ask = |request: RequestBuilder, domain: &str, status: &[u8]| {
        dealer
            .send_multipart(request.domain(domain).frames_for_dealer(), 0)
            .unwrap();
        let reply = dealer.recv_multipart(0).expect("a reply within 10 s");
        assert_eq!(reply[3], status, "{scenario}");
    };
    if scenario == "plain" {
        // A failure of this address for another username: the table is not empty.
        ask(RequestBuilder::plain("other", "wrong"), "global", b"400");
    }
    let unknown = CurvePublicKey::from_bytes([9; 32]);
    for _ in 0..n {
        match scenario {
            "plain" | "plain_empty_table" => {
                ask(RequestBuilder::plain("admin", "secret"), "global", b"200")
            }
            "refused_plain_wrong_password" => {
                ask(RequestBuilder::plain("admin", "nope"), "global", b"400")
            }
            _ => ask(RequestBuilder::curve(unknown), "certs", b"400"),
        }
    }
    drop(dealer);
    auth.stop();
}
