//! A ZeroMQ authenticator (ZAP, RFC 27) built as actix actors on the `zmq` crate: what
//! pyzmq's `zmq.auth` and CZMQ's `zauth` do, reconfigurable at runtime by typed messages.
//!
//! # Module map
//! - [`zap`]: the wire format, sans-IO — parse requests, encode replies and metadata.
//! - [`policy`]: the decisions, sans-IO — [`Policy::handle`](policy::Policy::handle) is
//!   pyzmq's `handle_zap_message` without a socket.
//! - [`certs`]: CURVE certificate files (pyzmq and CZMQ flavours) and key sets.
//! - [`keys`]: CURVE keys and their Z85 text.
//! - [`provider`]: credential providers, synchronous and asynchronous.
//! - [`actors`]: [`ZapSocket`] owns the socket, [`PolicyActor`] owns the policy.
//! - [`sources`]: live reload of certificate directories and password files ([`Watch`]).
//! - [`messages`]: the typed messages that configure the policy.
//! - [`Authenticator`] and [`ThreadAuthenticator`]: the handles users hold.
//! - [`ServerSocket`]: server sockets that refuse every handshake when no handler answers.
//! - [`client`]: why a connection failed — [`HandshakeCheck`] reports how a client's
//!   handshake ended ([`HandshakeOutcome`]); the `zapctl probe` command runs it.
//!
//! # Quick start (actix)
//! ```no_run
//! use actix_zap::Authenticator;
//!
//! #[actix::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let context = zmq::Context::new();
//!     // Bound before `start` returns: no handshake on `context` escapes it.
//!     let auth = Authenticator::start(&context)?;
//!     auth.allow(["127.0.0.1"]).await?;
//!     auth.configure_plain("*", [("admin", "secret")]).await?;
//!
//!     let server = context.socket(zmq::REP)?;
//!     server.set_plain_server(true)?;
//!     server.set_zap_domain("global")?;
//!     server.bind("tcp://127.0.0.1:5555")?;
//!     // ... serve; clients with admin/secret get in, others are refused ...
//!     # drop(server);
//!     auth.stop().await;
//!     Ok(())
//! }
//! ```

// Every public item is documented, and the only `unsafe` code is in `ffi` (three libzmq
// calls and one reactor registration). `deny`, not `forbid`, for unsafe code: `forbid` cannot
// be lifted for that one module.
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod actors;
mod authenticator;
pub mod certs;
pub mod client;
mod error;
mod ffi;
pub mod keys;
pub mod policy;
pub mod provider;
mod server;
mod settings;
pub mod sources;
mod thread;
pub mod zap;

pub use actors::messages;
pub use actors::messages::*;
pub use actors::{
    DecisionEvent, EventMechanism, PolicyActor, ReloadCallback, Reloaded, Stats, Subscriber,
    SubscriptionId, Unwatch, Watch, WatchSource, Watches, ZapSocket,
};
pub use authenticator::{Authenticator, Builder, CURVE_ALLOW_ANY};
pub use client::{HandshakeCheck, HandshakeOutcome, HandshakeReport};
pub use error::{ConfigError, StartError};
pub use server::{
    HandshakeWatch, ServerHandshake, ServerMechanism, ServerSocket, ServerSocketError,
};
pub use settings::Settings;
pub use sources::WatchError;
pub use thread::ThreadAuthenticator;

/// Compiles the README's examples as doc tests, so they cannot drift from the API.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
