//! A `metrics` recorder for tests (feature `metrics`): keeps every series it is given and
//! reads them back without changing them — counters as totals, gauges as their value now,
//! histograms as their samples. (`metrics-util`'s `DebuggingRecorder` swaps counters and
//! gauges to zero at each snapshot, so it cannot be read while waiting for a gauge that
//! another thread sets.) The crate never installs a recorder: a test installs this one, as
//! the process's global recorder, in a child process of its own (`child::isolated`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};

use super::PATIENCE;

/// A series: its name and its labels, sorted.
pub type Series = (String, Vec<(String, String)>);

#[derive(Default)]
struct Samples(Mutex<Vec<f64>>);

impl HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

#[derive(Default)]
struct Inner {
    counters: BTreeMap<Series, Arc<AtomicU64>>,
    gauges: BTreeMap<Series, Arc<AtomicU64>>,
    histograms: BTreeMap<Series, Arc<Samples>>,
}

/// The recorder; clones share what was recorded.
#[derive(Clone, Default)]
pub struct TestRecorder(Arc<Mutex<Inner>>);

fn series(key: &Key) -> Series {
    let mut labels: Vec<(String, String)> = key
        .labels()
        .map(|l| (l.key().to_owned(), l.value().to_owned()))
        .collect();
    labels.sort();
    (key.name().to_owned(), labels)
}

fn named(name: &str, labels: &[(&str, &str)]) -> Series {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    labels.sort();
    (name.to_owned(), labels)
}

impl TestRecorder {
    /// Installs a clone as the global recorder (once per process) and returns this one.
    pub fn install() -> TestRecorder {
        let recorder = TestRecorder::default();
        metrics::set_global_recorder(recorder.clone()).expect("no recorder installed yet");
        recorder
    }

    /// Every counter's total.
    pub fn counters(&self) -> BTreeMap<Series, u64> {
        let inner = self.0.lock().unwrap();
        let read = |(s, c): (&Series, &Arc<AtomicU64>)| (s.clone(), c.load(Ordering::SeqCst));
        inner.counters.iter().map(read).collect()
    }

    /// The counters named `name`, by their labels.
    pub fn counted(&self, name: &str) -> BTreeMap<Vec<(String, String)>, u64> {
        (self.counters().into_iter())
            .filter(|((n, _), _)| n == name)
            .map(|((_, labels), count)| (labels, count))
            .collect()
    }

    /// A gauge's value now; `None` if it was never set.
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let inner = self.0.lock().unwrap();
        let gauge = inner.gauges.get(&named(name, labels))?;
        Some(f64::from_bits(gauge.load(Ordering::SeqCst)))
    }

    /// How many samples a histogram holds.
    pub fn samples(&self, name: &str, labels: &[(&str, &str)]) -> usize {
        let inner = self.0.lock().unwrap();
        let histogram = inner.histograms.get(&named(name, labels));
        histogram.map_or(0, |h| h.0.lock().unwrap().len())
    }

    /// Every series' labels, of every kind.
    pub fn all_labels(&self) -> Vec<(String, String)> {
        let inner = self.0.lock().unwrap();
        let counters = inner.counters.keys();
        let gauges = inner.gauges.keys();
        let histograms = inner.histograms.keys();
        let all = counters.chain(gauges).chain(histograms);
        all.flat_map(|(_, labels)| labels.clone()).collect()
    }

    /// Waits until a gauge (set on another thread) reads `value`; fails after [`PATIENCE`].
    pub fn wait_for_gauge(&self, name: &str, labels: &[(&str, &str)], value: f64) {
        let deadline = Instant::now() + PATIENCE;
        while self.gauge(name, labels) != Some(value) {
            assert!(
                Instant::now() < deadline,
                "{name}{labels:?} never read {value}: {:?}",
                self.gauge(name, labels)
            );
            std::thread::yield_now();
        }
    }
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut inner = self.0.lock().unwrap();
        Counter::from_arc(inner.counters.entry(series(key)).or_default().clone())
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let mut inner = self.0.lock().unwrap();
        Gauge::from_arc(inner.gauges.entry(series(key)).or_default().clone())
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let mut inner = self.0.lock().unwrap();
        Histogram::from_arc(inner.histograms.entry(series(key)).or_default().clone())
    }
}
