//! The sans-IO decision: raw ZAP request frames in, reply frames out, on one core.
//!
//! `Policy::handle(&frames)` followed by `reply.frames()`, for NULL with an allow-list,
//! PLAIN, CURVE with a certificate set, CURVE allow-any and refused requests; PLAIN and CURVE
//! with 1, 10,000 and 1,000,000 known users / keys. Large sets are probed two ways:
//! `hot` asks for the same known key every time (the entry stays in cache), `spread` cycles
//! through 4,096 known keys picked at random (cache misses, like real traffic).
//!
//! Run: `cargo bench --bench decision -- --warm-up-time 1 --measurement-time 3`

#[path = "support/xorshift.rs"]
mod xorshift;

use std::hint::black_box;
use std::time::Duration;
use xorshift::XorShift;

use actix_zap::certs::CertStore;
use actix_zap::keys::CurvePublicKey;
use actix_zap::policy::{AddressPattern, CurvePolicy, Decision, PasswordTable, Policy};
use actix_zap::zap::RequestBuilder;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::sync::Arc;

/// Key / user counts of the scaling benchmarks.
const SIZES: [usize; 3] = [1, 10_000, 1_000_000];
/// Distinct known keys a `spread` benchmark cycles through.
const PROBES: usize = 4096;

/// A request of a loopback client in domain `global`, as the policy actor sees it (after the
/// routing envelope).
fn global(request: RequestBuilder) -> Vec<Vec<u8>> {
    request.domain("global").frames()
}

/// A CURVE request from the client with this public key.
fn curve_client(key: [u8; 32]) -> RequestBuilder {
    RequestBuilder::curve(CurvePublicKey::from_bytes(key))
}

/// One decision, as the actor does it: handle, then borrow the reply's frames.
#[inline(never)] // a stable symbol for profilers (callgrind --toggle-collect=*decision::decide*)
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

fn expect_status(policy: &Policy, frames: &[Vec<u8>], status: &[u8]) {
    match policy.handle(frames) {
        Decision::Reply(reply) => assert_eq!(reply.frames()[2], status, "{:?}", reply.text),
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn allow_localhost(policy: &mut Policy) {
    let pattern: AddressPattern = "127.0.0.1".parse().unwrap();
    policy.allow([pattern]).unwrap();
}

fn mechanisms(c: &mut Criterion) {
    let mut group = c.benchmark_group("decision");
    group.throughput(Throughput::Elements(1));

    // NULL with an allow-list (the domain makes libzmq ask).
    let mut null = Policy::default();
    allow_localhost(&mut null);
    let frames = global(RequestBuilder::null());
    expect_status(&null, &frames, b"200");
    group.bench_function("null_allow_list", |b| b.iter(|| decide(&null, &frames)));

    // PLAIN, one user.
    let mut plain = Policy::default();
    plain
        .configure_plain("*", PasswordTable::new([("admin", "secret")]))
        .unwrap();
    let frames = global(RequestBuilder::plain("admin", "secret"));
    expect_status(&plain, &frames, b"200");
    group.bench_function("plain", |b| b.iter(|| decide(&plain, &frames)));

    // CURVE with a certificate set of one key.
    let mut rng = XorShift::new(0x9E37_79B9_7F4A_7C15);
    let key = rng.key();
    let mut curve = Policy::default();
    let store: CertStore = [CurvePublicKey::from_bytes(key)].into_iter().collect();
    curve
        .configure_curve("*", CurvePolicy::Keys(Arc::new(store)))
        .unwrap();
    let frames = global(curve_client(key));
    expect_status(&curve, &frames, b"200");
    group.bench_function("curve_certs", |b| b.iter(|| decide(&curve, &frames)));

    // CURVE allow-any.
    let mut any = Policy::default();
    any.configure_curve("*", CurvePolicy::AllowAny).unwrap();
    let frames = global(curve_client(rng.key()));
    expect_status(&any, &frames, b"200");
    group.bench_function("curve_any", |b| b.iter(|| decide(&any, &frames)));

    // Refusals: unknown CURVE key, wrong PLAIN password, address not on the allow-list.
    let frames = global(curve_client(rng.key()));
    expect_status(&curve, &frames, b"400");
    group.bench_function("refused_curve_unknown_key", |b| {
        b.iter(|| decide(&curve, &frames))
    });
    let frames = global(RequestBuilder::plain("admin", "wrong"));
    expect_status(&plain, &frames, b"400");
    group.bench_function("refused_plain_wrong_password", |b| {
        b.iter(|| decide(&plain, &frames))
    });
    let frames = global(RequestBuilder::null().address("10.1.2.3"));
    expect_status(&null, &frames, b"400");
    group.bench_function("refused_null_address", |b| {
        b.iter(|| decide(&null, &frames))
    });
    group.finish();
}

/// Cycles through `requests`, one decision per iteration.
fn cycle<'a>(policy: &'a Policy, requests: &'a [Vec<Vec<u8>>]) -> impl FnMut() -> usize + 'a {
    let mut i = 0;
    move || {
        i = (i + 1) % requests.len();
        decide(policy, &requests[i])
    }
}

fn scaling(c: &mut Criterion) {
    let mut rng = XorShift::new(0xD1B5_4A32_D192_ED03);

    let mut group = c.benchmark_group("curve_keys");
    group.throughput(Throughput::Elements(1));
    for &n in &SIZES {
        let keys: Vec<[u8; 32]> = (0..n).map(|_| rng.key()).collect();
        let store: CertStore = keys
            .iter()
            .map(|k| CurvePublicKey::from_bytes(*k))
            .collect();
        let mut policy = Policy::default();
        policy
            .configure_curve("*", CurvePolicy::Keys(Arc::new(store)))
            .unwrap();
        let hot = global(curve_client(keys[n / 2]));
        expect_status(&policy, &hot, b"200");
        let spread: Vec<_> = (0..PROBES.min(n))
            .map(|_| global(curve_client(keys[rng.below(n)])))
            .collect();
        group.bench_function(BenchmarkId::new("hot", n), |b| {
            b.iter(|| decide(&policy, &hot))
        });
        group.bench_function(BenchmarkId::new("spread", n), |b| {
            b.iter(cycle(&policy, &spread))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("plain_users");
    group.throughput(Throughput::Elements(1));
    for &n in &SIZES {
        let users: Vec<(String, String)> = (0..n)
            .map(|i| (format!("user{i:07}"), format!("{:016x}", rng.next())))
            .collect();
        let mut policy = Policy::default();
        policy
            .configure_plain("*", PasswordTable::new(users.iter().cloned()))
            .unwrap();
        let ask = |(u, p): &(String, String)| global(RequestBuilder::plain(u, p));
        let hot = ask(&users[n / 2]);
        expect_status(&policy, &hot, b"200");
        let spread: Vec<_> = (0..PROBES.min(n))
            .map(|_| ask(&users[rng.below(n)]))
            .collect();
        group.bench_function(BenchmarkId::new("hot", n), |b| {
            b.iter(|| decide(&policy, &hot))
        });
        group.bench_function(BenchmarkId::new("spread", n), |b| {
            b.iter(cycle(&policy, &spread))
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = mechanisms, scaling
}
criterion_main!(benches);
