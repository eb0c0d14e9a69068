//! A socket's monitor events, read on a thread of their own with blocking receives.
//!
//! The reader lives in the crate ([`actix_zap::monitor`]), where the handshake check
//! and `ServerSocket`'s monitor helper use it too; the examples, the handshake-rate tool and
//! the tests include this file by path and keep calling `monitor::spawn`.
#![allow(unused_imports)]

pub use actix_zap::monitor::{spawn, spawn_queued, Events};
