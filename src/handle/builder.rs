//! [`AuthenticatorBuilder`] and [`ThreadAuthenticatorBuilder`]: the options an authenticator
//! starts with, in the current actix System or on a thread of its own. Each builder's `start`
//! gives its own handle, so neither can start the other by accident.

use actix::prelude::*;

use super::{Authenticator, ThreadAuthenticator};
use crate::actors::{bind, PolicyActor, ZapSocket};
use crate::messages::error::StartError;
use crate::settings::Settings;

/// The oldest libzmq without the pre-authentication overflow (CVE-2019-13132).
const SAFE_LIBZMQ: (i32, i32, i32) = (4, 3, 2);

/// Refuses a libzmq older than 4.3.2 unless the caller accepted it.
pub(crate) fn check_libzmq_version(
    version: (i32, i32, i32),
    accept_vulnerable: bool,
) -> Result<(), StartError> {
    if version < SAFE_LIBZMQ && !accept_vulnerable {
        let (major, minor, patch) = version;
        return Err(StartError::VulnerableLibzmq(major, minor, patch));
    }
    Ok(())
}

/// Options for starting an authenticator, then [`start`](Self::start) (inside an actix
/// System) or [`start_thread`](Self::start_thread) (anywhere).
///
/// ```no_run
/// use std::time::Duration;
/// use actix_zap::{Authenticator, Settings};
///
/// let context = zmq::Context::new();
/// let settings = Settings::default().with_provider_deadline(Duration::from_secs(2));
/// let auth = Authenticator::builder().settings(settings).start_thread(&context)?;
/// auth.stop();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct AuthenticatorBuilder {
    settings: Settings,
    accept_vulnerable_libzmq: bool,
}

impl AuthenticatorBuilder {
    /// Replaces the [`Settings`] (deadlines and bounds).
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// Starts even on a libzmq older than 4.3.2, for distributions that backported the fix
    /// for CVE-2019-13132.
    pub fn accept_vulnerable_libzmq(mut self) -> Self {
        self.accept_vulnerable_libzmq = true;
        self
    }

    /// Binds the ZAP endpoint on `context` and starts the actors in the current actix
    /// System. When this returns, every handshake on `context` is decided by this
    /// authenticator. Outside a running actix System this fails with
    /// [`StartError::NoSystem`]; use [`start_thread`](Self::start_thread) there.
    pub fn start(self, context: &zmq::Context) -> Result<Authenticator, StartError> {
        check_libzmq_version(zmq::version(), self.accept_vulnerable_libzmq)?;
        if tokio::runtime::Handle::try_current().is_err() || !System::is_registered() {
            return Err(StartError::NoSystem);
        }
        let socket = bind(context)?;
        let policy = (PolicyActor::new(self.settings.clone())?)
            .with_sessions_of(context)
            .start();
        let zap = ZapSocket::new(socket, policy.clone(), self.settings.max_in_flight)?.start();
        log::debug!(
            target: "actix_zap::AuthenticatorBuilder",
            "authenticator started on {}", crate::zap::ZAP_ENDPOINT
        );
        Ok(Authenticator { policy, zap })
    }

    /// Starts the authenticator on an actix System of its own thread, for applications that
    /// are not actix applications (or must not share their actix thread with it). The
    /// endpoint is bound when this returns. The same as
    /// [`ThreadAuthenticatorBuilder::start`].
    pub fn start_thread(self, context: &zmq::Context) -> Result<ThreadAuthenticator, StartError> {
        ThreadAuthenticator::spawn(self, context)
    }
}

/// Options for starting a [`ThreadAuthenticator`], then [`start`](Self::start): the
/// authenticator on an actix System of its own thread, from any thread (no actix needed).
///
/// [`ThreadAuthenticator::builder`] gives it; the options are [`AuthenticatorBuilder`]'s.
///
/// ```no_run
/// use std::time::Duration;
/// use actix_zap::{Settings, ThreadAuthenticator};
///
/// let context = zmq::Context::new();
/// let settings = Settings::default().with_provider_deadline(Duration::from_secs(2));
/// let auth = ThreadAuthenticator::builder().settings(settings).start(&context)?;
/// auth.stop();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ThreadAuthenticatorBuilder {
    options: AuthenticatorBuilder,
}

impl ThreadAuthenticatorBuilder {
    /// Replaces the [`Settings`] (deadlines and bounds).
    pub fn settings(self, settings: Settings) -> Self {
        let options = self.options.settings(settings);
        ThreadAuthenticatorBuilder { options }
    }

    /// Starts even on a libzmq older than 4.3.2, for distributions that backported the fix
    /// for CVE-2019-13132.
    pub fn accept_vulnerable_libzmq(self) -> Self {
        let options = self.options.accept_vulnerable_libzmq();
        ThreadAuthenticatorBuilder { options }
    }

    /// Starts the thread and the authenticator on it; the endpoint is bound when this
    /// returns. Works on any thread, inside an actix System or not.
    pub fn start(self, context: &zmq::Context) -> Result<ThreadAuthenticator, StartError> {
        ThreadAuthenticator::spawn(self.options, context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libzmq_before_4_3_2_is_refused_unless_accepted() {
        assert!(check_libzmq_version((4, 3, 4), false).is_ok());
        assert!(check_libzmq_version((4, 3, 2), false).is_ok());
        assert!(matches!(
            check_libzmq_version((4, 3, 1), false),
            Err(StartError::VulnerableLibzmq(4, 3, 1))
        ));
        assert!(check_libzmq_version((4, 2, 5), true).is_ok());
    }
}
