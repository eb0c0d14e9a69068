//! `ThreadAuthenticator`: the authenticator on an actix System of its own thread, with
//! blocking methods, for applications that are not actix applications (pyzmq's
//! `ThreadAuthenticator`).

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

use actix::System;
use futures::executor::block_on;

use crate::actors::messages::{CurveReport, MechanismKind};
use crate::actors::{DecisionEvent, Reloaded, Stats, SubscriptionId, Watch};
use crate::authenticator::{Authenticator, Builder};
use crate::error::{ConfigError, StartError};
use crate::keys::CurvePublicKey;
use crate::policy::{GssapiPolicy, IpcRule, PolicySnapshot};
use crate::provider::Provider;

/// An authenticator running on its own thread. Its methods block until the policy actor
/// has applied the change.
///
/// Dropping it does not stop authentication (the thread runs on, detached); call
/// [`stop`](Self::stop).
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
pub struct ThreadAuthenticator {
    handle: Authenticator,
    system: System,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ThreadAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadAuthenticator")
            .field("running", &self.handle.is_running())
            .finish()
    }
}

impl ThreadAuthenticator {
    /// Starts with default settings; the endpoint is bound when this returns.
    pub fn start(context: &zmq::Context) -> Result<Self, StartError> {
        Self::start_with(Builder::default(), context)
    }

    /// Starts with the given options; the endpoint is bound when this returns.
    pub fn start_with(builder: Builder, context: &zmq::Context) -> Result<Self, StartError> {
        let context = context.clone();
        let (started_tx, started) = mpsc::channel();
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
            })?;
        match started.recv() {
            Ok(Ok((handle, system))) => Ok(ThreadAuthenticator {
                handle,
                system,
                thread: Some(thread),
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

    /// The async handle, usable from any thread or runtime.
    pub fn handle(&self) -> &Authenticator {
        &self.handle
    }

    /// See [`Authenticator::allow`].
    pub fn allow<S: AsRef<str>>(
        &self,
        addresses: impl IntoIterator<Item = S>,
    ) -> Result<(), ConfigError> {
        block_on(self.handle.allow(addresses))
    }

    /// See [`Authenticator::deny`].
    pub fn deny<S: AsRef<str>>(
        &self,
        addresses: impl IntoIterator<Item = S>,
    ) -> Result<(), ConfigError> {
        block_on(self.handle.deny(addresses))
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
        block_on(self.handle.configure_plain(domain, passwords))
    }

    /// See [`Authenticator::configure_curve`].
    pub fn configure_curve(
        &self,
        domain: &str,
        location: impl AsRef<Path>,
    ) -> Result<CurveReport, ConfigError> {
        block_on(self.handle.configure_curve(domain, location))
    }

    /// See [`Authenticator::configure_curve_callback`].
    pub fn configure_curve_callback(
        &self,
        domain: &str,
        provider: Provider,
    ) -> Result<(), ConfigError> {
        block_on(self.handle.configure_curve_callback(domain, provider))
    }

    /// See [`Authenticator::configure_gssapi`].
    pub fn configure_gssapi(&self, domain: &str, policy: GssapiPolicy) -> Result<(), ConfigError> {
        block_on(self.handle.configure_gssapi(domain, policy))
    }

    /// See [`Authenticator::unconfigure`].
    pub fn unconfigure(&self, domain: &str, mechanism: MechanismKind) -> Result<bool, ConfigError> {
        block_on(self.handle.unconfigure(domain, mechanism))
    }

    /// See [`Authenticator::set_curve_user_id`].
    pub fn set_curve_user_id<F>(&self, mapper: F) -> Result<(), ConfigError>
    where
        F: Fn(&CurvePublicKey) -> String + Send + Sync + 'static,
    {
        block_on(self.handle.set_curve_user_id(mapper))
    }

    /// See [`Authenticator::watch`].
    pub fn watch(&self, watch: Watch) -> Result<Reloaded, ConfigError> {
        block_on(self.handle.watch(watch))
    }

    /// See [`Authenticator::allow_in`].
    pub fn allow_in<S: AsRef<str>>(
        &self,
        domain: &str,
        addresses: impl IntoIterator<Item = S>,
    ) -> Result<(), ConfigError> {
        block_on(self.handle.allow_in(domain, addresses))
    }

    /// See [`Authenticator::deny_in`].
    pub fn deny_in<S: AsRef<str>>(
        &self,
        domain: &str,
        addresses: impl IntoIterator<Item = S>,
    ) -> Result<(), ConfigError> {
        block_on(self.handle.deny_in(domain, addresses))
    }

    /// See [`Authenticator::remove_addresses`].
    pub fn remove_addresses<S: AsRef<str>>(
        &self,
        addresses: impl IntoIterator<Item = S>,
    ) -> Result<usize, ConfigError> {
        block_on(self.handle.remove_addresses(addresses))
    }

    /// See [`Authenticator::remove_addresses_in`].
    pub fn remove_addresses_in<S: AsRef<str>>(
        &self,
        domain: &str,
        addresses: impl IntoIterator<Item = S>,
    ) -> Result<usize, ConfigError> {
        block_on(self.handle.remove_addresses_in(domain, addresses))
    }

    /// See [`Authenticator::clear_addresses`].
    pub fn clear_addresses(&self) -> Result<(), ConfigError> {
        block_on(self.handle.clear_addresses())
    }

    /// See [`Authenticator::clear_addresses_in`].
    pub fn clear_addresses_in(&self, domain: &str) -> Result<(), ConfigError> {
        block_on(self.handle.clear_addresses_in(domain))
    }

    /// See [`Authenticator::allow_ipc`].
    pub fn allow_ipc(&self, rules: impl IntoIterator<Item = IpcRule>) -> Result<(), ConfigError> {
        block_on(self.handle.allow_ipc(rules))
    }

    /// See [`Authenticator::allow_ipc_in`].
    pub fn allow_ipc_in(
        &self,
        domain: &str,
        rules: impl IntoIterator<Item = IpcRule>,
    ) -> Result<(), ConfigError> {
        block_on(self.handle.allow_ipc_in(domain, rules))
    }

    /// See [`Authenticator::remove_ipc`].
    pub fn remove_ipc(
        &self,
        rules: impl IntoIterator<Item = IpcRule>,
    ) -> Result<usize, ConfigError> {
        block_on(self.handle.remove_ipc(rules))
    }

    /// See [`Authenticator::remove_ipc_in`].
    pub fn remove_ipc_in(
        &self,
        domain: &str,
        rules: impl IntoIterator<Item = IpcRule>,
    ) -> Result<usize, ConfigError> {
        block_on(self.handle.remove_ipc_in(domain, rules))
    }

    /// See [`Authenticator::clear_ipc`].
    pub fn clear_ipc(&self) -> Result<(), ConfigError> {
        block_on(self.handle.clear_ipc())
    }

    /// See [`Authenticator::clear_ipc_in`].
    pub fn clear_ipc_in(&self, domain: &str) -> Result<(), ConfigError> {
        block_on(self.handle.clear_ipc_in(domain))
    }

    /// See [`Authenticator::inspect`].
    pub fn inspect(&self) -> Result<PolicySnapshot, ConfigError> {
        block_on(self.handle.inspect())
    }

    /// See [`Authenticator::stats`].
    pub fn stats(&self) -> Result<Stats, ConfigError> {
        block_on(self.handle.stats())
    }

    /// See [`Authenticator::on_decision`].
    pub fn on_decision<F>(&self, callback: F) -> Result<SubscriptionId, ConfigError>
    where
        F: Fn(&DecisionEvent) + Send + Sync + 'static,
    {
        block_on(self.handle.on_decision(callback))
    }

    /// Stops the authenticator (see [`Authenticator::stop`]) and its thread; returns when
    /// both are gone.
    pub fn stop(mut self) {
        block_on(self.handle.stop());
        self.system.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
