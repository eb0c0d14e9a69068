//! [`ThreadAuthenticator`]: the authenticator on an actix System of its own thread, with
//! blocking methods, for applications that are not actix applications (pyzmq's
//! `ThreadAuthenticator`).

use std::future::Future;
use std::path::Path;
use std::sync::mpsc;
use std::thread::ThreadId;

use actix::prelude::*;
use futures::executor::block_on;
use tokio::sync::watch;

use super::{Authenticator, AuthenticatorBuilder};
use crate::actors::{PolicyActor, ZapSocket};
use crate::certs::CertStore;
use crate::error::{ConfigError, StartError, Unavailable};
use crate::keys::CurvePublicKey;
use crate::messages::*;
use crate::policy::{GssapiPolicy, IpcRule, PolicySnapshot};
use crate::provider::Provider;

/// An authenticator running on a thread of its own. It has every method of
/// [`Authenticator`], blocking until the policy actor has answered.
///
/// Clones are handles to the same authenticator. Dropping them does not stop authentication
/// (the thread runs on, detached); call [`stop`](Self::stop).
///
/// # Calling it from its own thread
/// Callbacks (`on_decision`, `on_reload`) run on the authenticator's thread. A blocking
/// method called there would wait for the thread it blocks, so it returns at once with
/// [`Unavailable::OwnThread`] (or [`ConfigError::OwnThread`]) and does nothing; `stop`
/// there starts the shutdown without waiting for it. From a callback, use the async
/// [`handle`](Self::handle) with `actix::spawn` instead, or hand the work to another thread.
///
/// ```no_run
/// use actix_zap::ThreadAuthenticator;
///
/// let context = zmq::Context::new();
/// let auth = ThreadAuthenticator::start(&context)?;
/// auth.configure_plain("*", [("admin", "secret")])?;
/// // ... PLAIN server sockets on `context` now check passwords ...
/// auth.stop();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ThreadAuthenticator {
    handle: Authenticator,
    system: System,
    thread: ThreadId,
    /// Turns true once the thread has ended (its System stopped and dropped).
    ended: watch::Receiver<bool>,
}

impl std::fmt::Debug for ThreadAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadAuthenticator")
            .field("running", &self.handle.is_running())
            .finish()
    }
}

impl ThreadAuthenticator {
    /// Starts with default settings; the endpoint is bound when this returns. See
    /// [`AuthenticatorBuilder::start_thread`] for options.
    pub fn start(context: &zmq::Context) -> Result<Self, StartError> {
        AuthenticatorBuilder::default().start_thread(context)
    }

    /// Options for starting.
    pub fn builder() -> AuthenticatorBuilder {
        AuthenticatorBuilder::default()
    }

    /// Starts the thread and the authenticator on it.
    pub(super) fn spawn(
        builder: AuthenticatorBuilder,
        context: &zmq::Context,
    ) -> Result<Self, StartError> {
        let context = context.clone();
        let (started_tx, started) = mpsc::channel();
        let (ended_tx, ended) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("zap-authenticator".into())
            .spawn(move || {
                let system = System::new();
                let handle = system.block_on(async { builder.start(&context) });
                let failed = handle.is_err();
                let _ = started_tx.send(handle.map(|h| (h, System::current())));
                if !failed {
                    let _ = system.run();
                }
                let _ = ended_tx.send(true);
            })?;
        match started.recv() {
            Ok(Ok((handle, system))) => Ok(ThreadAuthenticator {
                handle,
                system,
                thread: thread.thread().id(),
                ended,
            }),
            Ok(Err(error)) => {
                let _ = thread.join();
                Err(error)
            }
            Err(_) => Err(StartError::Io(std::io::Error::other(
                "the authenticator thread ended before it started",
            ))),
        }
    }

    /// The async handle, usable from any thread or runtime (also from the authenticator's
    /// own thread, inside callbacks, with `actix::spawn`).
    pub fn handle(&self) -> &Authenticator {
        &self.handle
    }

    /// Whether the caller runs on the authenticator's own thread.
    fn on_own_thread(&self) -> bool {
        std::thread::current().id() == self.thread
    }

    /// Waits for `future`, unless waiting would deadlock.
    fn block<T, E: From<Unavailable>>(
        &self,
        future: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        if self.on_own_thread() {
            log::warn!("a blocking ThreadAuthenticator method was called on its own thread");
            return Err(Unavailable::OwnThread.into());
        }
        block_on(future)
    }

    /// See [`Authenticator::policy`].
    pub fn policy(&self) -> &Addr<PolicyActor> {
        self.handle.policy()
    }

    /// See [`Authenticator::zap_socket`].
    pub fn zap_socket(&self) -> &Addr<ZapSocket> {
        self.handle.zap_socket()
    }

    /// See [`Authenticator::send`].
    pub fn send<M, T>(&self, message: M) -> Result<T, ConfigError>
    where
        M: Message<Result = Result<T, ConfigError>> + Send + 'static,
        T: Send + 'static,
        PolicyActor: Handler<M>,
    {
        self.block(self.handle.send(message))
    }

    /// See [`Authenticator::allow`].
    pub fn allow<S: AsRef<str>>(
        &self,
        addresses: impl IntoIterator<Item = S>,
    ) -> Result<(), ConfigError> {
        self.block(self.handle.allow(addresses))
    }

    /// See [`Authenticator::deny`].
    pub fn deny<S: AsRef<str>>(
        &self,
        addresses: impl IntoIterator<Item = S>,
    ) -> Result<(), ConfigError> {
        self.block(self.handle.deny(addresses))
    }

    /// See [`Authenticator::allow_in`].
    pub fn allow_in<S: AsRef<str>>(
        &self,
        domain: &str,
        addresses: impl IntoIterator<Item = S>,
    ) -> Result<(), ConfigError> {
        self.block(self.handle.allow_in(domain, addresses))
    }

    /// See [`Authenticator::deny_in`].
    pub fn deny_in<S: AsRef<str>>(
        &self,
        domain: &str,
        addresses: impl IntoIterator<Item = S>,
    ) -> Result<(), ConfigError> {
        self.block(self.handle.deny_in(domain, addresses))
    }

    /// See [`Authenticator::remove_addresses`].
    pub fn remove_addresses<S: AsRef<str>>(
        &self,
        addresses: impl IntoIterator<Item = S>,
    ) -> Result<usize, ConfigError> {
        self.block(self.handle.remove_addresses(addresses))
    }

    /// See [`Authenticator::remove_addresses_in`].
    pub fn remove_addresses_in<S: AsRef<str>>(
        &self,
        domain: &str,
        addresses: impl IntoIterator<Item = S>,
    ) -> Result<usize, ConfigError> {
        self.block(self.handle.remove_addresses_in(domain, addresses))
    }

    /// See [`Authenticator::clear_addresses`].
    pub fn clear_addresses(&self) -> Result<(), ConfigError> {
        self.block(self.handle.clear_addresses())
    }

    /// See [`Authenticator::clear_addresses_in`].
    pub fn clear_addresses_in(&self, domain: &str) -> Result<(), ConfigError> {
        self.block(self.handle.clear_addresses_in(domain))
    }

    /// See [`Authenticator::allow_ipc`].
    pub fn allow_ipc(&self, rules: impl IntoIterator<Item = IpcRule>) -> Result<(), ConfigError> {
        self.block(self.handle.allow_ipc(rules))
    }

    /// See [`Authenticator::allow_ipc_in`].
    pub fn allow_ipc_in(
        &self,
        domain: &str,
        rules: impl IntoIterator<Item = IpcRule>,
    ) -> Result<(), ConfigError> {
        self.block(self.handle.allow_ipc_in(domain, rules))
    }

    /// See [`Authenticator::remove_ipc`].
    pub fn remove_ipc(
        &self,
        rules: impl IntoIterator<Item = IpcRule>,
    ) -> Result<usize, ConfigError> {
        self.block(self.handle.remove_ipc(rules))
    }

    /// See [`Authenticator::remove_ipc_in`].
    pub fn remove_ipc_in(
        &self,
        domain: &str,
        rules: impl IntoIterator<Item = IpcRule>,
    ) -> Result<usize, ConfigError> {
        self.block(self.handle.remove_ipc_in(domain, rules))
    }

    /// See [`Authenticator::clear_ipc`].
    pub fn clear_ipc(&self) -> Result<(), ConfigError> {
        self.block(self.handle.clear_ipc())
    }

    /// See [`Authenticator::clear_ipc_in`].
    pub fn clear_ipc_in(&self, domain: &str) -> Result<(), ConfigError> {
        self.block(self.handle.clear_ipc_in(domain))
    }

    /// See [`Authenticator::configure_plain`].
    pub fn configure_plain<U, P>(
        &self,
        domain: &str,
        passwords: impl IntoIterator<Item = (U, P)>,
    ) -> Result<(), ConfigError>
    where
        U: Into<Vec<u8>>,
        P: Into<Vec<u8>>,
    {
        self.block(self.handle.configure_plain(domain, passwords))
    }

    /// See [`Authenticator::configure_curve`].
    pub fn configure_curve(
        &self,
        domain: &str,
        location: impl AsRef<Path>,
    ) -> Result<CurveReport, ConfigError> {
        self.block(self.handle.configure_curve(domain, location))
    }

    /// See [`Authenticator::configure_curve_czmq`].
    pub fn configure_curve_czmq(
        &self,
        domain: &str,
        directory: impl AsRef<Path>,
    ) -> Result<CurveReport, ConfigError> {
        self.block(self.handle.configure_curve_czmq(domain, directory))
    }

    /// See [`Authenticator::configure_curve_keys`].
    pub fn configure_curve_keys(
        &self,
        domain: &str,
        keys: CertStore,
    ) -> Result<CurveReport, ConfigError> {
        self.block(self.handle.configure_curve_keys(domain, keys))
    }

    /// See [`Authenticator::configure_curve_callback`].
    pub fn configure_curve_callback(
        &self,
        domain: &str,
        provider: Provider,
    ) -> Result<(), ConfigError> {
        self.block(self.handle.configure_curve_callback(domain, provider))
    }

    /// See [`Authenticator::configure_gssapi`].
    pub fn configure_gssapi(&self, domain: &str, policy: GssapiPolicy) -> Result<(), ConfigError> {
        self.block(self.handle.configure_gssapi(domain, policy))
    }

    /// See [`Authenticator::unconfigure`].
    pub fn unconfigure(&self, domain: &str, mechanism: MechanismKind) -> Result<bool, ConfigError> {
        self.block(self.handle.unconfigure(domain, mechanism))
    }

    /// See [`Authenticator::set_curve_user_id`].
    pub fn set_curve_user_id<F>(&self, mapper: F) -> Result<(), ConfigError>
    where
        F: Fn(&CurvePublicKey) -> String + Send + Sync + 'static,
    {
        self.block(self.handle.set_curve_user_id(mapper))
    }

    /// See [`Authenticator::reset_curve_user_id`].
    pub fn reset_curve_user_id(&self) -> Result<(), ConfigError> {
        self.block(self.handle.reset_curve_user_id())
    }

    /// See [`Authenticator::watch`].
    pub fn watch(&self, watch: Watch) -> Result<Reloaded, ConfigError> {
        self.block(self.handle.watch(watch))
    }

    /// See [`Authenticator::unwatch`].
    pub fn unwatch(&self, domain: &str, mechanism: MechanismKind) -> Result<bool, ConfigError> {
        self.block(self.handle.unwatch(domain, mechanism))
    }

    /// See [`Authenticator::watches`].
    pub fn watches(&self) -> Result<Vec<Reloaded>, Unavailable> {
        self.block(self.handle.watches())
    }

    /// See [`Authenticator::inspect`].
    pub fn inspect(&self) -> Result<PolicySnapshot, Unavailable> {
        self.block(self.handle.inspect())
    }

    /// See [`Authenticator::stats`].
    pub fn stats(&self) -> Result<Stats, Unavailable> {
        self.block(self.handle.stats())
    }

    /// See [`Authenticator::subscribe`].
    pub fn subscribe(
        &self,
        subscriber: impl Into<Subscriber>,
    ) -> Result<SubscriptionId, Unavailable> {
        self.block(self.handle.subscribe(subscriber))
    }

    /// See [`Authenticator::on_decision`].
    pub fn on_decision<F>(&self, callback: F) -> Result<SubscriptionId, Unavailable>
    where
        F: Fn(&DecisionEvent) + Send + Sync + 'static,
    {
        self.block(self.handle.on_decision(callback))
    }

    /// See [`Authenticator::unsubscribe`].
    pub fn unsubscribe(&self, id: SubscriptionId) -> Result<bool, Unavailable> {
        self.block(self.handle.unsubscribe(id))
    }

    /// Stops the authenticator (see [`Authenticator::stop`]) and its thread; returns when
    /// both are gone. Calling it again, from any clone, returns at once. Called on the
    /// authenticator's own thread (in a callback), it starts the same shutdown and returns
    /// without waiting for it.
    pub fn stop(&self) {
        let handle = self.handle.clone();
        // On the authenticator's thread: the actors first, then the System, which ends the
        // thread. Refused (false) when the System is gone already.
        let _ = self.system.arbiter().spawn(async move {
            handle.stop().await;
            System::current().stop();
        });
        if self.on_own_thread() {
            return;
        }
        let mut ended = self.ended.clone();
        // An error means the thread is gone (its sender dropped): ended as well.
        let _ = block_on(ended.wait_for(|ended| *ended));
    }

    /// See [`Authenticator::is_running`].
    pub fn is_running(&self) -> bool {
        self.handle.is_running()
    }
}
