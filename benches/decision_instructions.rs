//! Instruction-count driver for the sans-IO decision (`Policy::handle`), for callgrind.
//!
//! Wall-clock criterion numbers (benches/decision.rs) swing ±30–40 % on a shared VM;
//! instruction counts do not. This builds the same policies as benches/decision.rs through
//! the public API that has existed since e91a798 (`Policy::default`, `allow`,
//! `configure_plain`, `configure_curve`, `Policy::handle` on hand-built frame arrays), so an
//! identical copy can be built in an older checkout (as `examples/decision_instructions.rs`
//! there), and runs one scenario N times:
//!
//! ```text
//! cargo bench --no-run --bench decision_instructions   # prints the executable's path
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/deps/decision_instructions-HASH plain 10000
//! ```
//!
//! Run it for N = 10,000 and N = 20,000: instructions per decision =
//! (I(20000) − I(10000)) / 10000, which cancels the setup. `list` prints the scenarios.

#[path = "support/xorshift.rs"]
mod xorshift;

use std::hint::black_box;
use std::sync::Arc;
use xorshift::XorShift;

use actix_zap::certs::CertStore;
use actix_zap::keys::CurvePublicKey;
use actix_zap::policy::{AddressPattern, CurvePolicy, Decision, PasswordTable, Policy};

const SCENARIOS: [&str; 15] = [
    "null_allow_list",
    "plain",
    "curve_certs",
    "curve_any",
    "refused_curve_unknown_key",
    "refused_plain_wrong_password",
    "refused_null_address",
    "curve_keys_hot_1",
    "curve_keys_hot_10000",
    "curve_keys_spread_10000",
    "curve_keys_spread_1000000",
    "plain_users_hot_1",
    "plain_users_hot_10000",
    "plain_users_spread_10000",
    "plain_users_spread_1000000",
];

/// Distinct known keys a `spread` scenario cycles through (as in benches/decision.rs).
const PROBES: usize = 4096;

/// A request as the policy actor sees it (after the routing envelope).
fn request(domain: &[u8], mechanism: &[u8], credentials: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut frames: Vec<Vec<u8>> = vec![
        b"1.0".to_vec(),
        b"1".to_vec(),
        domain.to_vec(),
        b"127.0.0.1".to_vec(),
        Vec::new(),
        mechanism.to_vec(),
    ];
    frames.extend(credentials.iter().map(|c| c.to_vec()));
    frames
}

/// One decision, as the bench does it: handle, then borrow the reply's frames.
#[inline(never)]
fn decide(policy: &Policy, frames: &[Vec<u8>]) -> usize {
    match policy.handle(black_box(frames)) {
        Decision::Reply(reply) => {
            let out = reply.frames();
            black_box(&out);
            out[2].len()
        }
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn status(policy: &Policy, frames: &[Vec<u8>]) -> Vec<u8> {
    match policy.handle(frames) {
        Decision::Reply(reply) => reply.frames()[2].to_vec(),
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn null_policy() -> Policy {
    let mut policy = Policy::default();
    let pattern: AddressPattern = "127.0.0.1".parse().unwrap();
    policy.allow([pattern]).unwrap();
    policy
}

fn plain_policy<I: IntoIterator<Item = (String, String)>>(users: I) -> Policy {
    let mut policy = Policy::default();
    policy
        .configure_plain("*", PasswordTable::new(users))
        .unwrap();
    policy
}

fn curve_policy(keys: &[[u8; 32]]) -> Policy {
    let store: CertStore = keys
        .iter()
        .map(|k| CurvePublicKey::from_bytes(*k))
        .collect();
    let mut policy = Policy::default();
    policy
        .configure_curve("*", CurvePolicy::Keys(Arc::new(store)))
        .unwrap();
    policy
}

/// The policy and the requests (cycled through) of a scenario, and the status expected.
fn scenario(name: &str) -> (Policy, Vec<Vec<Vec<u8>>>, &'static [u8]) {
    let mut rng = XorShift::new(0x9E37_79B9_7F4A_7C15);
    let admin = || vec![("admin".to_string(), "secret".to_string())];
    match name {
        "null_allow_list" => (
            null_policy(),
            vec![request(b"global", b"NULL", &[])],
            b"200",
        ),
        "refused_null_address" => {
            let mut frames = request(b"global", b"NULL", &[]);
            frames[3] = b"10.1.2.3".to_vec();
            (null_policy(), vec![frames], b"400")
        }
        "plain" => (
            plain_policy(admin()),
            vec![request(b"global", b"PLAIN", &[b"admin", b"secret"])],
            b"200",
        ),
        "refused_plain_wrong_password" => (
            plain_policy(admin()),
            vec![request(b"global", b"PLAIN", &[b"admin", b"wrong"])],
            b"400",
        ),
        "curve_certs" => {
            let key = rng.key();
            (
                curve_policy(&[key]),
                vec![request(b"global", b"CURVE", &[&key])],
                b"200",
            )
        }
        "refused_curve_unknown_key" => {
            let key = rng.key();
            let other = rng.key();
            (
                curve_policy(&[key]),
                vec![request(b"global", b"CURVE", &[&other])],
                b"400",
            )
        }
        "curve_any" => {
            let mut policy = Policy::default();
            policy.configure_curve("*", CurvePolicy::AllowAny).unwrap();
            (
                policy,
                vec![request(b"global", b"CURVE", &[&rng.key()])],
                b"200",
            )
        }
        _ => {
            let mut rng = XorShift::new(0xD1B5_4A32_D192_ED03);
            let (kind, rest) = if let Some(rest) = name.strip_prefix("curve_keys_") {
                ("curve", rest)
            } else if let Some(rest) = name.strip_prefix("plain_users_") {
                ("plain", rest)
            } else {
                panic!("unknown scenario {name:?}; try `list`")
            };
            let (probe, n) = rest.split_once('_').expect("<hot|spread>_<n>");
            let n: usize = n.parse().expect("a size");
            let count = if probe == "hot" { 1 } else { PROBES.min(n) };
            if kind == "curve" {
                let keys: Vec<[u8; 32]> = (0..n).map(|_| rng.key()).collect();
                let policy = curve_policy(&keys);
                let requests = if probe == "hot" {
                    vec![request(b"global", b"CURVE", &[&keys[n / 2]])]
                } else {
                    (0..count)
                        .map(|_| request(b"global", b"CURVE", &[&keys[rng.below(n)]]))
                        .collect()
                };
                (policy, requests, b"200")
            } else {
                let users: Vec<(String, String)> = (0..n)
                    .map(|i| (format!("user{i:07}"), format!("{:016x}", rng.next())))
                    .collect();
                let policy = plain_policy(users.iter().cloned());
                let ask = |(u, p): &(String, String)| {
                    request(b"global", b"PLAIN", &[u.as_bytes(), p.as_bytes()])
                };
                let requests = if probe == "hot" {
                    vec![ask(&users[n / 2])]
                } else {
                    (0..count).map(|_| ask(&users[rng.below(n)])).collect()
                };
                (policy, requests, b"200")
            }
        }
    }
}

fn main() {
    // `cargo bench --bench decision_instructions -- FLAGS` passes `--bench` too.
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let name = args.next().unwrap_or_else(|| "list".into());
    if name == "list" {
        for s in SCENARIOS {
            println!("{s}");
        }
        return;
    }
    let n: usize = args
        .next()
        .map_or(10_000, |n| n.parse().expect("N, a count"));
    let (policy, requests, expected) = scenario(&name);
    for frames in &requests {
        assert_eq!(status(&policy, frames), expected, "{name}");
    }
    let mut total = 0usize;
    let mut i = 0;
    for _ in 0..n {
        total += decide(&policy, &requests[i]);
        i = (i + 1) % requests.len();
    }
    println!("{name} x{n}: {total}");
}
