//! The handles users hold: [`Authenticator`] for actix applications, [`ThreadAuthenticator`]
//! for everyone else, and their builders ([`AuthenticatorBuilder`],
//! [`ThreadAuthenticatorBuilder`]) to start them with options.

mod authenticator;
mod builder;
#[cfg(test)]
mod signatures;
mod thread;

pub use authenticator::{Authenticator, CURVE_ALLOW_ANY};
pub use builder::{AuthenticatorBuilder, ThreadAuthenticatorBuilder};
pub use thread::ThreadAuthenticator;
