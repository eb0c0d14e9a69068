//! End-to-end handshakes over tcp on 127.0.0.1 (NULL with a domain, PLAIN, CURVE), with the
//! authenticator, with the minimal responder (the floor: a REP thread that answers `200` to
//! everything) and with no handler bound where libzmq then admits clients (NULL, CURVE).
//!
//! Each iteration is a batch of 200 handshakes with 64 pending at a time, on fresh contexts;
//! only the handshakes are timed. The harness is `benches/support/rate.rs`;
//! `benches/handshake_rate.rs` measures the ratios in alternating rounds (use it for the
//! ratio targets).
//!
//! Run: `cargo bench --bench handshakes -- --warm-up-time 1 --measurement-time 3`

#[path = "support/rate.rs"]
mod rate;

use std::time::Duration;

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use rate::{Keys, Scenario};

const BATCH: usize = 200;
const CLIENTS: usize = 64;

fn handshakes(c: &mut Criterion) {
    let keys = Keys::generate();
    let mut group = c.benchmark_group("handshakes");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(BATCH as u64));
    for scenario in [Scenario::NullDomain, Scenario::Plain, Scenario::CurveCerts] {
        for handler in scenario.handlers() {
            let id = BenchmarkId::new(scenario.name(), handler.name());
            group.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| {
                            let run = rate::run(scenario, handler, &keys, CLIENTS, BATCH)
                                .unwrap_or_else(|e| panic!("{e}"));
                            assert_eq!(run.unexpected, 0, "{scenario:?} {handler:?}");
                            run.elapsed
                        })
                        .sum()
                })
            });
        }
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = handshakes
}
criterion_main!(benches);
