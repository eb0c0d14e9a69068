//! Runs every example and checks its exit status and what it reports.
//!
//! The examples are brought up to date once with `cargo build --examples` (a no-op after a
//! plain `cargo test`, which builds them; `cargo test --test integration` alone does not),
//! then run from the target directory next to this test's own binary. If a binary is still
//! not there (an unusual target layout), the test falls back to `cargo run --example`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use actix_zap::certs::load_certificate;

/// A cargo command run from the manifest directory, so that .cargo/config.toml (the system
/// libzmq with CURVE) applies.
fn cargo(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO"));
    command.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

/// `target/<profile>/examples`, after building the examples once.
fn examples_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // This test runs as target/<profile>/deps/integration-<hash>.
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe.parent().and_then(Path::parent).expect("target dir");
        // Every feature, so that examples needing one (fleet: postgres) are built too.
        let mut build = cargo(&["build", "--quiet", "--examples", "--all-features"]);
        if profile_dir.ends_with("release") {
            build.arg("--release");
        }
        let output = build.output().expect("cargo runs");
        assert!(
            output.status.success(),
            "cargo build --examples failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        profile_dir.join("examples")
    })
}

fn run_example(name: &str, args: &[&str]) -> Output {
    let binary = examples_dir().join(name);
    let mut command = if binary.is_file() {
        Command::new(binary)
    } else {
        cargo(&["run", "--quiet", "--all-features", "--example", name, "--"])
    };
    command
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run example {name}: {e}"))
}

/// Runs an example that must succeed and print each of `expected`; returns its stdout.
fn check(name: &str, expected: &[&str]) -> String {
    let output = run_example(name, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{name} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    for text in expected {
        assert!(
            stdout.contains(text),
            "{name} did not print {text:?}:\n{stdout}"
        );
    }
    stdout
}

#[test]
fn grasslands_serves_anyone_and_only_a_mechanism_mismatch_fails() {
    check(
        "grasslands",
        &[
            "admitted:",
            "failed:",
            "not an authenticator",
            "Grasslands OK",
        ],
    );
}

#[test]
fn strawhouse_follows_the_allow_list_then_the_deny_list() {
    check(
        "strawhouse",
        &["admitted:", "refused:", "ZAP status 400", "Strawhouse OK"],
    );
}

#[test]
fn woodhouse_checks_the_password() {
    let out = check(
        "woodhouse",
        &["admitted:", "refused:", "ZAP status 400", "Woodhouse OK"],
    );
    assert!(
        out.contains("\"World, admin\""),
        "User-Id not shown:\n{out}"
    );
}

#[test]
fn stonehouse_admits_any_key_and_only_a_wrong_server_key_fails() {
    check(
        "stonehouse",
        &[
            "admitted:",
            "failed:",
            "not the authenticator",
            "Stonehouse OK",
        ],
    );
}

#[test]
fn ironhouse_admits_the_trusted_client_and_refuses_the_stranger() {
    check(
        "ironhouse",
        &["admitted:", "refused:", "ZAP status 400", "Ironhouse OK"],
    );
}

#[test]
fn reconfigure_admits_refuses_and_revokes_at_runtime() {
    let out = check(
        "reconfigure",
        &[
            "admitted:",
            "refused:",
            "new handshakes only",
            "Reconfigure OK",
        ],
    );
    assert_eq!(out.matches("admitted:").count(), 2, "{out}");
    assert_eq!(out.matches("refused:").count(), 2, "{out}");
    assert!(
        out.contains("still up and gets \"World, newcomer\""),
        "{out}"
    );
    assert!(out.contains("removed 1 installed entry"), "{out}");
}

#[cfg(feature = "postgres")]
#[test]
fn credentials_db_follows_the_table() {
    let out = check(
        "credentials_db",
        &[
            "admitted:",
            "refused:",
            "User-Id=alice Role=admin",
            "Credentials database OK",
        ],
    );
    assert_eq!(out.matches("refused:").count(), 2, "{out}");
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn generate_certificates_writes_loadable_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("keys");
    let output = run_example("generate_certificates", &[base.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for name in ["server", "client"] {
        let public = base.join("public_keys").join(format!("{name}.key"));
        let secret = base.join("private_keys").join(format!("{name}.key_secret"));
        let public_cert = load_certificate(&public).unwrap();
        let secret_cert = load_certificate(&secret).unwrap();
        assert!(
            public_cert.secret_key.is_none(),
            "{name}.key holds a secret"
        );
        assert!(secret_cert.secret_key.is_some());
        assert_eq!(public_cert.public_key, secret_cert.public_key);
        assert_eq!(mode(&secret), 0o600, "{name}.key_secret mode");
    }
    assert!(
        !base.join("certificates").exists(),
        "temporary directory left"
    );
}

#[test]
fn generate_certificates_without_a_directory_is_a_usage_error() {
    let output = run_example("generate_certificates", &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("usage:"));
}

/// The measurement tools must keep working too: a tiny run of each, judged by its one line.
fn measurement_line(name: &str, args: &[&str]) -> String {
    let output = run_example(name, args);
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
fn fleet_admits_on_three_servers_then_one_change_refuses_on_all() {
    let out = check(
        "fleet",
        &["server-3: admitted", "zapctl db key disable", "Fleet OK"],
    );
    assert_eq!(out.matches("refused (ZAP status 400)").count(), 3, "{out}");
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
