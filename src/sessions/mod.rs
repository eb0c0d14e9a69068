//! Revocation that ends sessions: a revoked peer's established connection stops, too.
//!
//! Every ZAP authenticator decides only at the handshake: a client whose key is revoked keeps
//! its established connection for as long as it likes. Here, each `200` carries a *session
//! mark* ([`zap::mark`](crate::zap::mark)): a MAC-protected token of the admission that libzmq
//! attaches to every message of that session. A [`SessionSocket`] — built by
//! [`ServerSocket::build_sessions`](crate::ServerSocket::build_sessions) — delivers a message
//! only when its session carries a valid mark and was not ended. When the policy narrows (by a
//! message, a file watch, the store), the authenticator judges again the sessions the
//! narrowing covers, and before the change answers `Ok` it publishes the ones it no longer
//! admits to every session socket of its context and shuts their connections down.
//!
//! - **What ends a session**: what would refuse its handshake now — a removed or revoked key
//!   or user, a changed password or PHC string, a changed user id or metadata of a kept key, a
//!   denied address, a replaced or removed setting, a CURVE key's expiry (looked for every
//!   second) — judged without asking user code again: a
//!   session a provider admitted ends when the provider is replaced or removed, when a removal
//!   names its key, or by address rules.
//! - **What does not**: fail-closed states are not revocations. A stale store, an unreadable
//!   directory or a timed-out reload refuse new handshakes but end no session.
//! - **Sessions that have not spoken yet** are not held by the authenticator (memory grows with
//!   live connections, not admissions). One that shows its first message after a narrowing of
//!   its scope is judged then against the policy in force; if the board no longer remembers the
//!   narrowings since its admission ([`LOGGED_NARROWINGS`]), it is ended, to be safe. One
//!   whose first message is read after its connection went is bound to no descriptor and is
//!   forgotten a second later (at the next first sight), then judged again if more of it is
//!   read: clients that send and leave do not pile up (a ROUTER socket keeps them, so that
//!   its sends to them stay checked).
//! - **Descriptors**: a connection is shut down (`shutdown(2)`, never `close`: the descriptor
//!   is libzmq's) only while the kernel's `SO_COOKIE` of its descriptor is the one recorded
//!   when the session was bound, so a descriptor number reused by another connection is never
//!   touched.

mod board;
mod socket;

pub use board::{lived, EndReason, EndedSession, LOGGED_NARROWINGS};
pub(crate) use board::{next_serial, Board};
pub use socket::{InprocPeers, SessionError, SessionSocket};
