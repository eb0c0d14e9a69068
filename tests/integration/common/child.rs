//! Tests that change process-wide state (the global logger, environment variables, rlimits,
//! the current directory, signal handlers, namespaces) run in a child process of their own:
//! the integration tests share one process, so such a change would leak into every test
//! running beside it.
//!
//! ```ignore
//! #[test]
//! fn owns_the_logger() {
//!     child::isolated("secrets::owns_the_logger", &[("RUST_LOG", "trace")], || {
//!         log::set_logger(&CAPTURE).unwrap(); // only this process's logger
//!         // ...
//!     });
//! }
//! ```
//!
//! The parent re-executes this test binary (`std::env::current_exe()`) with `NAME --exact
//! --nocapture --test-threads=1 --include-ignored` and [`MARKER`] set to `NAME`; in the child the
//! marker makes [`isolated`] run the body, in the parent [`isolated`] waits for the child (at
//! most [`CHILD_PATIENCE`]), forwards its output and fails unless exactly that one test ran
//! and passed. Nothing may follow the `isolated` call in the test function: it would run in
//! both processes.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The environment variable that marks a child; its value is the full name of the test the
/// child runs.
pub const MARKER: &str = "ACTIX_ZAP_ISOLATED_TEST";

/// How long a child may run before it is killed and the test fails.
pub const CHILD_PATIENCE: Duration = Duration::from_secs(300);

/// Runs `body` in a child process of its own, with `env` added to its environment.
///
/// `test` is the test's full name as libtest knows it (`module::function`, as `cargo test`
/// lists it); the parent checks that it names the calling test. In the child (the marker
/// names `test`), runs `body`; in the parent, [`run_in_child`].
pub fn isolated(test: &str, env: &[(&str, &str)], body: impl FnOnce()) {
    if in_child(test) {
        body();
    } else {
        check_caller(test);
        run_in_child(test, env);
    }
}

/// Whether this process is the child started for `test`.
pub fn in_child(test: &str) -> bool {
    match std::env::var(MARKER) {
        Ok(name) if name == test => true,
        Ok(name) => panic!("a child started for {name:?} reached the isolated test {test:?}"),
        Err(_) => false,
    }
}

/// libtest runs each test on a thread named after it: a name that is not the caller's
/// would run another test (or none) in the child.
fn check_caller(test: &str) {
    let current = std::thread::current();
    if let Some(name) = current.name().filter(|name| *name != "main") {
        assert_eq!(
            name, test,
            "child::isolated must be given the calling test's full name"
        );
    }
}

/// Reads a child's pipe to its end on a thread of its own (so a full pipe never blocks it).
fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Runs the test `test` of this binary in a child process with `env` added to its
/// environment, and panics (with the child's output) unless it ran that test and passed.
pub fn run_in_child(test: &str, env: &[(&str, &str)]) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut command = Command::new(&exe);
    // SAFETY: prctl is async-signal-safe and touches no memory of this process. A child
    // killed for taking too long takes its own children with it (they would be orphans,
    // holding ports and waiting on a peer that is gone).
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = command
        .args([
            test,
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "--include-ignored",
        ])
        .env(MARKER, test)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let deadline = Instant::now() + CHILD_PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the child") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    // Shown with the parent's own output (on failure, or with --nocapture), marked so that
    // the child's libtest lines are not taken for the parent's.
    for line in stdout.lines() {
        println!("[child] {line}");
    }
    for line in stderr.lines() {
        eprintln!("[child] {line}");
    }
    let Some(status) = status else {
        panic!("the child running {test:?} did not finish within {CHILD_PATIENCE:?}");
    };
    assert!(
        status.success(),
        "the child running {test:?} failed ({status})"
    );
    assert!(
        stdout.contains("running 1 test") && stdout.contains("test result: ok. 1 passed"),
        "the child did not run exactly the test {test:?} (is it the test's full name?)"
    );
}
