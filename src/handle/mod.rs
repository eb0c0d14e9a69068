//! The handles users hold: [`Authenticator`] for actix applications, [`ThreadAuthenticator`]
//! for everyone else, and [`AuthenticatorBuilder`] to start either with options.

mod authenticator;
mod builder;
mod thread;

pub use authenticator::{Authenticator, CURVE_ALLOW_ANY};
pub use builder::AuthenticatorBuilder;
pub use thread::ThreadAuthenticator;
