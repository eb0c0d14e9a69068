//! The two actors: [`ZapSocket`] (socket I/O) and [`PolicyActor`] (state and decisions).

mod configure;
mod live_reload;
pub mod messages;
mod observe;
mod policy_actor;
mod pool;
mod watch;
mod zap_socket;

pub use observe::{DecisionEvent, Stats, Subscriber, SubscriptionId};
pub use policy_actor::PolicyActor;
pub use watch::{ReloadCallback, Reloaded, Unwatch, Watch, WatchSource, Watches};
pub(crate) use zap_socket::bind;
pub use zap_socket::ZapSocket;
