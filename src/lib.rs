//! A ZeroMQ authenticator (ZAP, RFC 27) built as actix actors on the `zmq` crate: what
//! pyzmq's `zmq.auth` and CZMQ's `zauth` do, reconfigurable at runtime by typed messages.
//!
//! Start an [`Authenticator`] on your `zmq::Context` and every handshake on that context
//! (NULL, PLAIN, CURVE, GSSAPI) is decided by the policy you give it: address allow- and
//! deny-lists, passwords, CURVE keys (from certificate directories, kept up to date if you
//! [`watch`](Authenticator::watch) them), or your own credential
//! [`Provider`](provider::Provider). Changes apply while it runs, and narrowing is
//! fail-closed: once a call that removes access has returned `Ok`, no handshake decided
//! afterwards is admitted under the older, wider policy.
//!
//! # Linking a libzmq with CURVE
//! The `zmq` crate builds its own libzmq without CURVE unless told otherwise. Link the system
//! libzmq (Debian/Ubuntu: `apt install libzmq3-dev`, built with libsodium) by putting this in
//! `.cargo/config.toml` of your project (use your target triple):
//!
//! ```toml
//! [target.x86_64-unknown-linux-gnu.zmq]
//! rustc-link-lib = ["zmq"]
//! system = "1"
//! ```
//!
//! Cargo reads `.cargo/config.toml` from the directory it runs in and from each of its
//! parent directories (and `$CARGO_HOME/config.toml`), so a workspace member is covered by
//! the workspace root's file; it does not read the file of a dependency. Without the
//! override the build fails with an error that says so, rather than producing an
//! authenticator without CURVE.
//!
//! # Quick start (actix)
//! ```toml
//! [dependencies]
//! actix-zap = "0.1"
//! actix = "0.13"  # or use actix_zap::actix
//! zmq = "0.10"    # or use actix_zap::zmq: the same version the authenticator links
//! ```
//!
//! ```no_run
//! use actix_zap::{Authenticator, ServerSocket};
//!
//! #[actix::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let context = zmq::Context::new();
//!     // Bound before `start` returns: no handshake on `context` escapes it.
//!     let auth = Authenticator::start(&context)?;
//!     auth.allow(["127.0.0.1"]).await?;
//!     auth.configure_plain("*", [("admin", "secret")]).await?;
//!
//!     // A server socket that refuses every handshake when no authenticator answers.
//!     let server = ServerSocket::plain("global").build(&context, zmq::REP)?;
//!     server.bind("tcp://127.0.0.1:5555")?;
//!     // ... serve; clients with admin/secret get in, others are refused. Never block
//!     // this thread: the authenticator runs on it (see `Authenticator`) ...
//!     # drop(server);
//!     auth.stop().await;
//!     Ok(())
//! }
//! ```
//!
//! Not an actix application? [`ThreadAuthenticator`] runs the same authenticator on a thread
//! of its own, with blocking methods of the same names.
//!
//! # Where things are
//! At the root: the handles ([`Authenticator`], [`ThreadAuthenticator`]), their builders
//! ([`AuthenticatorBuilder`], [`ThreadAuthenticatorBuilder`]) and [`Settings`], [`ServerSocket`] with its companions, the
//! error types, and [`CURVE_ALLOW_ANY`]. Everything else lives in one module each:
//!
//! - [`messages`]: the typed messages every handle method sends, for applications that
//!   talk to the actors directly; decision events ([`DecisionEvent`](messages::DecisionEvent))
//!   and live reload ([`Watch`](messages::Watch)) are there too.
//! - [`actors`]: [`PolicyActor`](actors::PolicyActor) owns the policy,
//!   [`ZapSocket`](actors::ZapSocket) the ZAP socket.
//! - [`policy`]: the decisions, sans-IO — [`Policy::handle`](policy::Policy::handle) is
//!   pyzmq's `handle_zap_message` without a socket, and time is an input like the frames
//!   ([`Policy::handle_at`](policy::Policy::handle_at) with a [`Now`](policy::Now)) — and
//!   their vocabulary (address patterns, password tables, snapshots).
//! - [`certs`]: CURVE certificate files (pyzmq and CZMQ flavours) and key sets.
//! - [`keys`]: CURVE keys and their Z85 text.
//! - [`provider`]: credential providers, synchronous and asynchronous.
//! - [`zap`]: the wire format, sans-IO — parse requests, encode replies and metadata.
//! - [`sessions`]: revocation that ends established sessions ([`sessions::SessionSocket`]).
//! - [`monitor`]: libzmq socket monitors drained on a thread of their own, which the client's
//!   handshake check and the server's handshake watch both use.
//! - [`client`]: why a client's connection failed — [`HandshakeCheck`](client::HandshakeCheck)
//!   reports how its handshake ended; the `zapctl probe` command runs it.
//!
//! [`zmq`] and [`actix`] are re-exported, so an application can use exactly the versions
//! this crate was built with.
//!
//! # Features
//! - `cli` (default): the `zapctl` command.
//! - `postgres`: the fleet-wide credential store (module `postgres`, the README's "Many
//!   servers").
//! - `serde`: `Serialize` for stats, decision events, `inspect()`, source states, reload and
//!   handshake reports in one JSON form, and `Deserialize` for keys and address patterns (the
//!   README's "Observing it").
//! - `metrics`: decisions, latency, requests in flight, queue depths, sessions ended and each
//!   credential source's position and last proof, through the `metrics` facade (see
//!   `actix_zap::metrics` for the names and labels; the application installs the recorder).

// Every public item is documented, and the only `unsafe` code is in `ffi` (three libzmq
// calls and one reactor registration). `deny`, not `forbid`, for unsafe code: `forbid` cannot
// be lifted for that one module.
#![deny(missing_docs)]
#![deny(unsafe_code)]
#![warn(unreachable_pub)]

pub mod actors;
pub mod certs;
pub mod client;
mod ffi;
mod handle;
pub mod keys;
pub mod messages;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod monitor;
pub mod policy;
pub mod provider;
#[cfg(feature = "serde")]
mod serialize;
mod server;
pub mod sessions;
mod settings;
pub(crate) mod sources;
pub mod zap;

pub use actix;
pub use zmq;

pub use handle::{
    Authenticator, AuthenticatorBuilder, ThreadAuthenticator, ThreadAuthenticatorBuilder,
    CURVE_ALLOW_ANY,
};
pub use messages::error::{ConfigError, NoCurveSupport, StartError, Unavailable};
pub use server::{
    HandshakeTally, HandshakeWatch, ServerHandshake, ServerMechanism, ServerSocket,
    ServerSocketError,
};
pub use settings::Settings;

pub use messages::error::{ReloadError, WatchError};
/// The fleet-wide credential store on PostgreSQL (feature `postgres`): see the README's
/// "Many servers" section.
#[cfg(feature = "postgres")]
pub use sources::postgres;

/// Compiles the README's examples as doc tests, so they cannot drift from the API.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
