//! The errors a user of the authenticator can meet, one enum per kind of operation.

use crate::certs::CertError;
use crate::policy::{AddressError, PolicyError};
use crate::sources::WatchError;

/// What to do when the linked libzmq cannot do CURVE.
pub(crate) const NO_CURVE_SUPPORT: &str = "the linked libzmq has no CURVE support: install a \
    libzmq built with libsodium (Debian: libzmq3-dev) and link it as the README describes";

/// A configuration message was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The policy refused it (allow and deny together, an empty table, a long domain).
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// An address or range did not parse.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// A certificate directory could not be read at all. The domain now refuses every CURVE
    /// client until a later configuration succeeds (fail closed).
    #[error(transparent)]
    Certificates(#[from] CertError),
    /// Loading a certificate directory failed unexpectedly (the loading thread panicked or
    /// was cancelled). The domain refuses every CURVE client, as for an unreadable directory.
    #[error("loading certificates failed: {0}")]
    LoadFailed(String),
    /// A [`Watch`](crate::Watch) asked for something refused (an interval below the floor).
    #[error(transparent)]
    Watch(#[from] WatchError),
    /// The linked libzmq cannot do CURVE, so a CURVE policy would never be used.
    #[error("{}", NO_CURVE_SUPPORT)]
    NoCurveSupport,
    /// A credential source (e.g. the PostgreSQL store) refused the request; the text says
    /// what to do.
    #[error("credential source: {0}")]
    Source(String),
    /// The authenticator was stopped; start a new one.
    #[error("the authenticator is stopped")]
    Stopped,
}

/// The authenticator could not start. Nothing is bound and nothing runs.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Another ZAP handler already owns `inproc://zeromq.zap.01` on this context.
    #[error("another ZAP handler is already bound on this zmq::Context")]
    EndpointInUse,
    /// `start` was called outside a running actix System (use `ThreadAuthenticator` there).
    #[error(
        "Authenticator::start must run inside an actix System; use ThreadAuthenticator otherwise"
    )]
    NoSystem,
    /// The linked libzmq predates 4.3.2 (CVE-2019-13132) and the caller did not accept it.
    #[error(
        "libzmq {0}.{1}.{2} is older than 4.3.2 (pre-authentication overflow, CVE-2019-13132); \
         upgrade it, or call accept_vulnerable_libzmq() if your distribution backported the fix"
    )]
    VulnerableLibzmq(i32, i32, i32),
    /// A zmq call failed.
    #[error("zmq: {0}")]
    Zmq(#[from] zmq::Error),
    /// A thread could not be started.
    #[error("could not start a thread: {0}")]
    Io(#[from] std::io::Error),
}
