//! The integration tests: one test binary (one link instead of one per file), each file a
//! module. A test's name is `file::test`, so `cargo test --test integration handshakes::`
//! runs one file's tests.
//!
//! The tests share one process. A test that changes process-wide state (the global logger,
//! environment variables, rlimits, the current directory, signal handlers) or measures it
//! (open descriptors, resident memory) runs its body in a child process of its own with
//! `common::child::isolated`.

mod common;

mod address_rules;
mod attacks;
mod backpressure;
mod bad_config;
mod beyond;
mod control;
mod diagnostics;
mod examples;
mod fail_closed;
mod faults;
#[cfg(feature = "postgres")]
mod fleet;
mod gssapi;
mod handshakes;
mod hashed_plain;
mod isolation;
mod lifecycle;
mod live_reload;
mod load;
#[cfg(feature = "metrics")]
mod observing;
mod properties;
mod revocation;
mod secrets;
mod session_sockets;
mod sessions;
mod stalls;
#[cfg(feature = "postgres")]
mod store_attacks;
mod surface;
mod tools;
mod trust;
#[cfg(feature = "cli")]
mod zapctl;
