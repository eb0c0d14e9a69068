//! The two actors: [`ZapSocket`] (socket I/O) and [`PolicyActor`] (state and decisions).

mod configure;
mod deltas;
pub mod messages;
mod observe;
mod policy_actor;
mod pool;
mod verify;
mod zap_socket;

pub use crate::sources::{ReloadCallback, Reloaded, Unwatch, Watch, WatchSource, Watches};
pub use observe::{DecisionEvent, Stats, Subscriber, SubscriptionId};
pub(crate) use policy_actor::require_curve;
pub use policy_actor::PolicyActor;
pub(crate) use zap_socket::bind;
pub use zap_socket::ZapSocket;
