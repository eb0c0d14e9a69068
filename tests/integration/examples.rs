//! Runs every example and checks its exit status and what it reports; and that each stands
//! alone, so it can be copied as it is. (The measurement tools are in `benches/`: `tools.rs`.)
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

#[cfg(all(feature = "serde", feature = "metrics"))]
mod admin_api;

/// A cargo command run from the manifest directory, so that .cargo/config.toml (the system
/// libzmq with CURVE) applies, and without the variables `cargo test` gave this process about
/// the crate (`CARGO_PKG_NAME`, `OUT_DIR`, ...): ring's build script watches some
/// of them, and a nested build that saw them would rebuild ring and all that depends on it,
/// twice per run (here, and again in the next `cargo` command run from a shell). The user's
/// own settings (`CARGO_HOME`, `CARGO_TARGET_DIR`, ...) stay.
pub(crate) fn cargo(args: &[&str]) -> Command {
    const SET_BY_CARGO_TEST: &[&str] = &[
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
        "CARGO_CRATE_",
        "CARGO_BIN_",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "OUT_DIR",
    ];
    let mut command = Command::new(env!("CARGO"));
    command.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if SET_BY_CARGO_TEST.iter().any(|p| text.starts_with(p)) {
            command.env_remove(&name);
        }
    }
    command
}

/// `target/<profile>/examples`, after building the examples once.
pub(crate) fn examples_dir() -> &'static Path {
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

#[cfg(feature = "postgres")]
#[test]
fn fleet_admits_on_three_servers_then_one_change_refuses_on_all() {
    let out = check(
        "fleet",
        &["server-3: admitted", "zapctl db key disable", "Fleet OK"],
    );
    assert_eq!(out.matches("refused (ZAP status 400)").count(), 3, "{out}");
}

/// An example is what a user copies: no module shared with other examples, nothing included
/// by path, no measurement tool among them.
#[test]
fn every_example_stands_alone() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut examples = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        assert!(
            path.is_file(),
            "{} is not a single-file example",
            path.display()
        );
        let source = std::fs::read_to_string(&path).unwrap();
        let name = path.display();
        assert!(!source.contains("#[path"), "{name} includes a file by path");
        assert!(
            !source.contains("mod support"),
            "{name} uses a shared support module"
        );
        examples += 1;
    }
    assert!(examples >= 9, "{examples} examples in {}", dir.display());
    for tool in crate::tools::TOOLS {
        assert!(
            !dir.join(format!("{tool}.rs")).exists(),
            "{tool} is a measurement tool"
        );
    }
}
