//! How long `load_directory` takes for many public certificate files, and how much resident
//! memory each loaded key costs.
//!
//! ```text
//! cargo bench --bench load_certs -- [--count 100000] [--dir PATH] [--loads 3]
//! ```
//!
//! Writes `--count` pyzmq-style public certificates (`clientNNNNNN.key`, random keys, no
//! metadata) into `--dir` (created if needed; default a temporary directory, removed at the
//! end), loads the directory once to warm the page cache, then `--loads` more times, timed.
//! The store of the last load is kept alive while resident memory is read from
//! `/proc/self/status` (VmRSS), before and after that load; freed heap is handed back to the
//! OS first (`malloc_trim`) so the difference is what the store holds.
//!
//! Prints ONE line: `count=... load_s=... (median of the warm loads) ... bytes_per_key=...`.

#[path = "support/xorshift.rs"]
mod xorshift;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use xorshift::XorShift;

use actix_zap::certs::{load_directory, Certificate, DirectoryLoad, Flavour, Layout};
use actix_zap::keys::CurvePublicKey;

extern "C" {
    /// glibc: returns free heap memory (all arenas) to the OS.
    fn malloc_trim(pad: usize) -> i32;
}

fn trim() {
    // SAFETY: malloc_trim has no preconditions; it only releases unused heap pages.
    unsafe {
        malloc_trim(0);
    }
}

/// Resident set size in bytes, from /proc/self/status.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmRSS value");
    kib * 1024
}

/// Writes `count` public certificate files (plain writes, no fsync: a benchmark fixture).
fn create(dir: &Path, count: usize) {
    let mut rng = XorShift::new(0x9E37_79B9_7F4A_7C15);
    for i in 0..count {
        let cert = Certificate {
            public_key: CurvePublicKey::from_bytes(rng.key()),
            secret_key: None,
            metadata: Vec::new(),
        };
        let text = cert.to_public_text(Flavour::Pyzmq).expect("render");
        std::fs::write(dir.join(format!("client{i:06}.key")), text).expect("write");
    }
}

fn timed_load(dir: &Path) -> (DirectoryLoad, Duration) {
    let start = Instant::now();
    let load = load_directory(dir, Layout::Pyzmq).expect("load_directory");
    (load, start.elapsed())
}

fn main() {
    let mut count = 100_000usize;
    let mut dir: Option<PathBuf> = None;
    let mut loads = 3usize;
    // `cargo bench --bench load_certs -- FLAGS` passes `--bench` too.
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next().unwrap_or_else(|| {
                eprintln!("{arg} needs a value");
                std::process::exit(2)
            })
        };
        match arg.as_str() {
            "--count" => count = value().parse().expect("--count: a number"),
            "--dir" => dir = Some(PathBuf::from(value())),
            "--loads" => loads = value().parse().expect("--loads: a number"),
            other => {
                eprintln!("usage: load_certs [--count N] [--dir PATH] [--loads K] ({other}?)");
                std::process::exit(2);
            }
        }
    }
    let loads = loads.max(1);

    let temp;
    let dir = match dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir).expect("create --dir");
            dir
        }
        None => {
            temp = tempfile::tempdir().expect("temporary directory");
            temp.path().to_path_buf()
        }
    };
    let start = Instant::now();
    create(&dir, count);
    let create_s = start.elapsed().as_secs_f64();

    // Warm the page cache and the allocator.
    let (first, first_time) = timed_load(&dir);
    let present = first.store.len();
    drop(first);

    let mut times = Vec::with_capacity(loads);
    let mut kept: Option<DirectoryLoad> = None;
    let mut rss = (0, 0);
    for i in 0..loads {
        drop(kept.take()); // the previous store goes before the next measurement
        trim();
        let before = rss_bytes();
        let (load, time) = timed_load(&dir);
        times.push(time.as_secs_f64());
        if i + 1 == loads {
            trim();
            rss = (before, rss_bytes());
        }
        kept = Some(load);
    }
    let load = kept.expect("at least one load");
    assert_eq!(load.store.len(), present);
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = times[times.len() / 2];
    let (before, after) = rss;
    let keys = load.store.len();
    let bytes_per_key = after.saturating_sub(before) as f64 / keys.max(1) as f64;
    println!(
        "count={count} keys={keys} rejected={} create_s={create_s:.2} first_load_s={:.3} \
         load_s={median:.3} load_range_s={:.3}..{:.3} loads={loads} target_load_s=2 \
         rss_before_kib={} rss_after_kib={} bytes_per_key={bytes_per_key:.1} \
         target_bytes_per_key=200 threads={}",
        load.rejected.len(),
        first_time.as_secs_f64(),
        times[0],
        times[times.len() - 1],
        before / 1024,
        after / 1024,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
}
