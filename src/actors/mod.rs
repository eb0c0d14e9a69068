//! The two actors: [`ZapSocket`] (socket I/O) and [`PolicyActor`] (state and decisions).
//!
//! Most applications never name them: the handles hold their addresses
//! ([`Authenticator::policy`](crate::Authenticator::policy),
//! [`Authenticator::zap_socket`](crate::Authenticator::zap_socket)). The messages they
//! understand are in [`messages`](crate::messages).

mod configure;
mod control;
pub(crate) mod deltas;
mod log_limit;
pub(crate) mod observe;
mod policy_actor;
mod pool;
mod served;
mod sessions;
mod turns;
mod verify;
mod watch;
mod watchdog;
mod watched;
mod zap_socket;

pub(crate) use policy_actor::require_curve;
pub use policy_actor::PolicyActor;
pub(crate) use served::Served;
pub(crate) use zap_socket::bind;
pub use zap_socket::ZapSocket;
