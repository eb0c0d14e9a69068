//! Runs a tiny measurement with each tool of `benches/` (the harness-less bench targets that
//! `cargo bench --bench NAME -- FLAGS` runs) and checks what it reports, so the tools keep
//! working; the numbers themselves belong in BENCHMARKS.md, never in a test.
//!
//! The tools are built once, in this test's profile, with `cargo build --bench NAME ...`;
//! Cargo's JSON messages name each executable (bench executables stay in `deps/`, under a
//! hashed name). Each is run with `--bench` last, as `cargo bench` passes it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Every measurement tool (`bench = false` targets in Cargo.toml).
pub(crate) const TOOLS: &[&str] = &[
    "handshake_rate",
    "load_certs",
    "revocation_latency",
    "reconnect_storm",
    "guessing",
    "decision_instructions",
    "actor_instructions",
    #[cfg(feature = "postgres")]
    "fleet_bench",
    #[cfg(feature = "postgres")]
    "staleness",
];

/// The text of `line` between `start` and the next `end`.
fn between<'a>(line: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = line.find(start)? + start.len();
    let len = line[from..].find(end)?;
    Some(&line[from..from + len])
}

/// Builds every tool once; their executables by name.
fn tools() -> &'static HashMap<String, PathBuf> {
    static TOOLS_BUILT: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    TOOLS_BUILT.get_or_init(|| {
        // This test runs as target/<profile>/deps/integration-<hash>.
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe.parent().and_then(Path::parent).expect("target dir");
        let mut build =
            crate::examples::cargo(&["build", "--all-features", "--message-format=json"]);
        for tool in TOOLS {
            build.args(["--bench", tool]);
        }
        if profile_dir.ends_with("release") {
            build.arg("--release");
        }
        let output = build.output().expect("cargo runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "cargo build --bench failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // The first "name" of a compiler-artifact message is its target's.
        stdout
            .lines()
            .filter(|line| line.contains(r#""reason":"compiler-artifact""#))
            .filter(|line| line.contains(r#""kind":["bench"]"#))
            .filter_map(|line| {
                let name = between(line, r#""name":""#, "\"")?;
                let executable = between(line, r#""executable":""#, "\"")?;
                Some((name.to_owned(), PathBuf::from(executable)))
            })
            .collect()
    })
}

/// Runs `name` with `args`, then `--bench` as `cargo bench` adds it.
fn run_tool(name: &str, args: &[&str]) -> Output {
    let executable = tools()
        .get(name)
        .unwrap_or_else(|| panic!("{name} was not built: {:?}", tools().keys()));
    Command::new(executable)
        .args(args)
        .arg("--bench")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"))
}

#[test]
fn every_tool_is_built() {
    for tool in TOOLS {
        assert!(tools().contains_key(*tool), "{tool}: {:?}", tools().keys());
    }
}

/// A tiny run of a tool that must succeed; its standard output.
fn measurement_line(name: &str, args: &[&str]) -> String {
    let output = run_tool(name, args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{name} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn handshake_rate_measures_ours_the_minimal_responder_and_no_handler() {
    let line = measurement_line(
        "handshake_rate",
        &[
            "--scenario",
            "null-domain",
            "--clients",
            "8",
            "--handshakes",
            "100",
            "--rounds",
            "1",
        ],
    );
    for field in [
        "scenario=null-domain",
        "handshakes_per_s=",
        "minimal_per_s=",
        "ratio=",
        "unexpected=0",
    ] {
        assert!(line.contains(field), "{field} missing from: {line}");
    }
}

/// A small storm against a tiny in-flight bound: the bound holds requests back, and every
/// client is still admitted with no `300`.
#[test]
fn reconnect_storm_admits_every_client_with_no_300() {
    let line = measurement_line(
        "reconnect_storm",
        &[
            "--clients",
            "60",
            "--addresses",
            "3",
            "--per-context",
            "25",
            "--max-in-flight",
            "4",
            "--delay-ms",
            "200",
            "--down-ms",
            "200",
            "--wait-s",
            "20",
        ],
    );
    for field in [
        "clients=60 ",
        "per_address=20 ",
        "contexts=3 ",
        "admitted=60 ",
        "status_300=0 ",
        "replies_300=0 ",
        "replies_200=60 ",
        "peak_in_flight=",
    ] {
        assert!(line.contains(field), "{field} missing from: {line}");
    }
    assert!(
        !line.contains("held_back=0 "),
        "the bound never held back: {line}"
    );
}

#[test]
fn load_certs_reports_time_and_memory_per_key() {
    let line = measurement_line("load_certs", &["--count", "200", "--loads", "1"]);
    for field in ["count=200", "load_s=", "bytes_per_key="] {
        assert!(line.contains(field), "{field} missing from: {line}");
    }
}

#[test]
fn revocation_latency_reports_every_case_and_nothing_admitted_after_a_message() {
    let text = measurement_line(
        "revocation_latency",
        &["--trials", "3", "--files", "20", "--case", "all"],
    );
    for case in ["message", "unlink", "unlink-polling", "rewrite"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("case={case} ")))
            .unwrap_or_else(|| panic!("no line for {case}: {text}"));
        assert!(
            line.contains("trials=3") && line.contains("p99_ms="),
            "{line}"
        );
        if case == "message" {
            assert!(line.ends_with("admitted_after=0"), "{line}");
        }
    }
}

#[cfg(feature = "postgres")]
#[test]
fn fleet_bench_measures_load_fanout_rate_and_plain() {
    let out = measurement_line(
        "fleet_bench",
        &[
            "--keys",
            "2000",
            "--trials",
            "5",
            "--handshakes",
            "20",
            "--rounds",
            "1",
            "--plain-users",
            "2",
            "--hash-memory-kib",
            "64",
        ],
    );
    for field in [
        "load keys=2000",
        "bytes_per_key=",
        "fanout trials=5 samples=15",
        "p99_ms=",
        "store_per_s=",
        "directory_per_s=",
        "cold_per_s=",
        "cached_per_s=",
        "entropy keys=2001",
        "entropy_ms=",
        "forced keys=2001 forced_s=",
    ] {
        assert!(out.contains(field), "{field} missing from: {out}");
    }
}

#[cfg(feature = "postgres")]
#[test]
fn staleness_measures_every_case_and_never_refuses_before_the_deadline() {
    let out = measurement_line(
        "staleness",
        &[
            "--trials",
            "1",
            "--max-staleness-ms",
            "1000",
            "--heartbeat-ms",
            "200",
        ],
    );
    for case in ["partition", "locked", "partition-hung"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("case={case} ")))
            .unwrap_or_else(|| panic!("no line for {case}: {out}"));
        assert!(
            line.contains("trials=1") && line.contains("p50_probe_ms="),
            "{line}"
        );
        // The refusal comes at the deadline or after it, never before (a fact, not a timing).
        let min_over: f64 = line
            .split_whitespace()
            .find_map(|field| field.strip_prefix("min_over_ms="))
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no min_over_ms in {line}"));
        assert!(min_over >= 0.0, "refused before the deadline: {line}");
    }
}

#[test]
fn decision_instructions_runs_a_scenario_n_times() {
    let out = measurement_line("decision_instructions", &["plain", "100"]);
    assert!(out.starts_with("plain x100: "), "{out}");
    let list = measurement_line("decision_instructions", &["list"]);
    assert!(list.lines().any(|l| l == "plain"), "{list}");
}

#[test]
fn actor_instructions_runs_a_scenario_n_times() {
    let list = measurement_line("actor_instructions", &["list"]);
    assert!(list.lines().any(|l| l == "plain"), "{list}");
    measurement_line("actor_instructions", &["plain", "10"]);
}

#[test]
fn guessing_measures_the_throttles_sans_io_cost_in_every_table() {
    let out = measurement_line(
        "guessing",
        &[
            "cost",
            "--rounds",
            "1",
            "--decisions",
            "1000",
            "--e2e-rounds",
            "0",
        ],
    );
    assert!(out.starts_with("cost sans-IO"), "{out}");
    for table in ["empty table", "10,000 other addresses", "this address"] {
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(table))
            .unwrap_or_else(|| panic!("no line for {table}: {out}"));
        assert!(
            line.contains("median without=") && line.contains("with="),
            "{line}"
        );
    }
    // The callgrind driver: N admitted decisions, or a failed assertion.
    measurement_line("guessing", &["instructions", "check-decide", "100"]);
}
