//! Refuses to build against the CURVE-less libzmq that `zmq-sys` bundles.
//!
//! `.cargo/config.toml` overrides zmq-sys's build script so that the system libzmq (built with
//! libsodium) is linked, and adds the marker key `system = "1"`, which Cargo passes to the
//! build scripts of zmq-sys's direct dependents as `DEP_ZMQ_SYSTEM`. Cargo reads that file
//! from the directory it runs in and from each parent, never from a dependency's directory:
//! run from elsewhere, or with this crate as a dependency of a project without those lines,
//! it silently builds a libzmq where CURVE fails at run time. An authenticator that cannot do
//! CURVE must not build, so this script prints how to fix it and exits with an error (a panic
//! would bury the message under a backtrace). Documentation builds (docs.rs sets `DOCS_RS`)
//! link nothing and are let through.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_ZMQ_SYSTEM");
    println!("cargo:rerun-if-env-changed=DOCS_RS");
    if std::env::var_os("DOCS_RS").is_some() || std::env::var_os("DEP_ZMQ_SYSTEM").is_some() {
        return;
    }
    let target = std::env::var("TARGET").unwrap_or_else(|_| "<your target triple>".into());
    // Cargo shows a failed build script's standard error as it is.
    eprintln!(
        "\nactix-zap: zmq-sys is building its bundled libzmq, which has no CURVE support.\n\
         Link the system libzmq instead (Debian/Ubuntu: `apt-get install libzmq3-dev`) by\n\
         adding these lines to a `.cargo/config.toml` in the directory you run cargo from\n\
         or in one of its parents (e.g. your project's or workspace's root):\n\n\
         [target.{target}.zmq]\n\
         rustc-link-lib = [\"zmq\"]\n\
         system = \"1\"\n\n\
         Cargo reads that file from the current directory and its parents (never from a\n\
         dependency's directory), so run cargo from inside your project (not with\n\
         --manifest-path from elsewhere).\n"
    );
    std::process::exit(1);
}
