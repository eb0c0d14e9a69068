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

use super::{Authenticator, AuthenticatorBuilder, ThreadAuthenticatorBuilder};
use crate::actors::{PolicyActor, ZapSocket};
use crate::certs::CertStore;
use crate::keys::CurvePublicKey;
use crate::messages::error::{ConfigError, StartError, Unavailable};
use crate::messages::*;
use crate::policy::{
    CurveEntry, GssapiPolicy, HashedPassword, IpcRule, MechanismKind, PolicySnapshot, Removed,
};
use crate::provider::Provider;

/// Emits, for each entry, the blocking form of the [`Authenticator`] method of the same name:
/// same signature (written once, as in the list, `pub` and the body added), a body that waits
/// for the async method through [`ThreadAuthenticator::block`] (so the own-thread check is
/// never forgotten), and rustdoc pointing at the async method and naming the `OwnThread`
/// variant of its error type.
///
/// An entry is `fn name<G: Path, ..>(&self, arg: Type, ..) -> Result<T, E>;`, where `E` is
/// [`ConfigError`] or [`Unavailable`]; bounds that are not a single path (several bounds, `Fn`
/// bounds) go in a braced `where { .. }` before the `;`. Attributes (`///` text, `#[cfg]`)
/// before an entry are kept, and come first in its rustdoc.
macro_rules! blocking_methods {
    ($(
        $(#[$attr:meta])*
        fn $name:ident $(<$($generic:ident $(: $bound:path)?),+ $(,)?>)?
            (&self $(, $arg:ident: $arg_ty:ty)* $(,)?) -> Result<$ok:ty, $err:ident>
            $(where { $($predicate:tt)* })?;
    )*) => {
        $(
            $(#[$attr])*
            #[doc = concat!(
                "Blocking [`Authenticator::", stringify!($name), "`]: the same call, waiting for ",
                "its answer (the types it takes and answers are linked there).\n\n",
                "On the authenticator's own thread (in a callback) it does nothing and returns [`",
                stringify!($err), "::OwnThread`] at once; see ",
                "[Calling it from its own thread](Self#calling-it-from-its-own-thread).",
            )]
            pub fn $name $(<$($generic $(: $bound)?),+>)?
                (&self $(, $arg: $arg_ty)*) -> Result<$ok, $err>
                $(where $($predicate)*)?
            {
                self.block(self.handle.$name($($arg),*))
            }
        )*

        /// The names of the methods generated from the list, for the parity test.
        #[cfg(test)]
        const BLOCKING_METHODS: &'static [&'static str] = &[$(stringify!($name)),*];
    };
}

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
    /// [`builder`](Self::builder) for options.
    pub fn start(context: &zmq::Context) -> Result<Self, StartError> {
        ThreadAuthenticatorBuilder::default().start(context)
    }

    /// Options for starting; its [`start`](ThreadAuthenticatorBuilder::start) gives a
    /// `ThreadAuthenticator`, from any thread.
    pub fn builder() -> ThreadAuthenticatorBuilder {
        ThreadAuthenticatorBuilder::default()
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
            log::warn!(
                target: "actix_zap::ThreadAuthenticator",
                "a blocking ThreadAuthenticator method was called on its own thread"
            );
            return Err(Unavailable::OwnThread.into());
        }
        block_on(future)
    }

    /// The [`PolicyActor`](crate::actors::PolicyActor); see [`Authenticator::policy`].
    pub fn policy(&self) -> &Addr<PolicyActor> {
        self.handle.policy()
    }

    /// The [`ZapSocket`](crate::actors::ZapSocket); see [`Authenticator::zap_socket`].
    pub fn zap_socket(&self) -> &Addr<ZapSocket> {
        self.handle.zap_socket()
    }

    blocking_methods! {
        fn send<M, T>(&self, message: M) -> Result<T, ConfigError>
        where {
            M: Message<Result = Result<T, ConfigError>> + Send + 'static,
            T: Send + 'static,
            PolicyActor: Handler<M>,
        };

        // Address rules.
        fn allow<S: AsRef<str>>(&self, addresses: impl IntoIterator<Item = S>) -> Result<(), ConfigError>;
        fn deny<S: AsRef<str>>(&self, addresses: impl IntoIterator<Item = S>) -> Result<(), ConfigError>;
        fn allow_in<S: AsRef<str>>(&self, domain: &str, addresses: impl IntoIterator<Item = S>) -> Result<(), ConfigError>;
        fn deny_in<S: AsRef<str>>(&self, domain: &str, addresses: impl IntoIterator<Item = S>) -> Result<(), ConfigError>;
        fn remove_addresses<S: AsRef<str>>(&self, addresses: impl IntoIterator<Item = S>) -> Result<usize, ConfigError>;
        fn remove_addresses_in<S: AsRef<str>>(&self, domain: &str, addresses: impl IntoIterator<Item = S>) -> Result<usize, ConfigError>;
        fn clear_addresses(&self) -> Result<(), ConfigError>;
        fn clear_addresses_in(&self, domain: &str) -> Result<(), ConfigError>;
        fn allow_ipc(&self, rules: impl IntoIterator<Item = IpcRule>) -> Result<(), ConfigError>;
        fn allow_ipc_in(&self, domain: &str, rules: impl IntoIterator<Item = IpcRule>) -> Result<(), ConfigError>;
        fn remove_ipc(&self, rules: impl IntoIterator<Item = IpcRule>) -> Result<usize, ConfigError>;
        fn remove_ipc_in(&self, domain: &str, rules: impl IntoIterator<Item = IpcRule>) -> Result<usize, ConfigError>;
        fn clear_ipc(&self) -> Result<(), ConfigError>;
        fn clear_ipc_in(&self, domain: &str) -> Result<(), ConfigError>;

        // Mechanisms.
        fn configure_plain<U, P>(&self, domain: &str, passwords: impl IntoIterator<Item = (U, P)>) -> Result<(), ConfigError>
        where { U: Into<Vec<u8>>, P: Into<Vec<u8>> };
        fn configure_curve(&self, domain: &str, location: impl AsRef<Path>) -> Result<CurveReport, ConfigError>;
        fn configure_curve_czmq(&self, domain: &str, directory: impl AsRef<Path>) -> Result<CurveReport, ConfigError>;
        fn configure_curve_keys(&self, domain: &str, keys: CertStore) -> Result<CurveReport, ConfigError>;
        fn add_curve_keys<K: Into<CurveEntry>>(&self, domain: &str, keys: impl IntoIterator<Item = K>) -> Result<usize, ConfigError>;
        fn remove_curve_keys(&self, domain: &str, keys: impl IntoIterator<Item = CurvePublicKey>) -> Result<Removed, ConfigError>;
        fn add_plain_users<U: Into<String>>(&self, domain: &str, users: impl IntoIterator<Item = (U, HashedPassword)>) -> Result<usize, ConfigError>;
        fn remove_plain_users<U: Into<String>>(&self, domain: &str, users: impl IntoIterator<Item = U>) -> Result<Removed, ConfigError>;
        fn configure_curve_callback(&self, domain: &str, provider: Provider) -> Result<(), ConfigError>;
        fn configure_gssapi(&self, domain: &str, policy: GssapiPolicy) -> Result<(), ConfigError>;
        fn unconfigure(&self, domain: &str, mechanism: MechanismKind) -> Result<bool, ConfigError>;
        fn set_curve_user_id<F>(&self, mapper: F) -> Result<(), ConfigError>
        where { F: Fn(&CurvePublicKey) -> String + Send + Sync + 'static };
        fn reset_curve_user_id(&self) -> Result<(), ConfigError>;

        // Credential stores and live reload.
        #[cfg(feature = "postgres")]
        fn serve(&self, source: crate::sources::postgres::PostgresSource) -> Result<crate::sources::postgres::SourceHandle, ConfigError>;
        fn watch(&self, watch: Watch) -> Result<Reloaded, ConfigError>;
        fn unwatch(&self, domain: &str, mechanism: MechanismKind) -> Result<bool, ConfigError>;
        fn watches(&self) -> Result<Vec<Reloaded>, Unavailable>;

        // Queries and decision events.
        fn inspect(&self) -> Result<PolicySnapshot, Unavailable>;
        fn stats(&self) -> Result<Stats, Unavailable>;
        fn subscribe(&self, subscriber: impl Into<Subscriber>) -> Result<SubscriptionId, Unavailable>;
        fn on_decision<F>(&self, callback: F) -> Result<SubscriptionId, Unavailable>
        where { F: Fn(&DecisionEvent) + Send + Sync + 'static };
        fn unsubscribe(&self, id: SubscriptionId) -> Result<bool, Unavailable>;
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::ThreadAuthenticator;

    /// The public methods declared in `source`, async ones apart, without `#[doc(hidden)]` ones.
    fn public_methods(source: &str) -> (BTreeSet<&str>, BTreeSet<&str>) {
        let (mut asynchronous, mut blocking) = (BTreeSet::new(), BTreeSet::new());
        let mut hidden = false;
        for line in source.lines().map(str::trim) {
            if line == "#[doc(hidden)]" {
                hidden = true;
            }
            let (set, rest) = if let Some(rest) = line.strip_prefix("pub async fn ") {
                (&mut asynchronous, rest)
            } else if let Some(rest) = line.strip_prefix("pub fn ") {
                (&mut blocking, rest)
            } else {
                continue;
            };
            let name = rest.split(['<', '(']).next().unwrap();
            if !std::mem::take(&mut hidden) {
                set.insert(name);
            }
        }
        (asynchronous, blocking)
    }

    /// Every async method of the handle has its blocking form in the list (`stop`, which
    /// must also end the thread, is written by hand), and the list has nothing else; every
    /// other public method exists on the thread handle too.
    #[test]
    fn the_list_has_every_async_method_of_the_handle() {
        let (asynchronous, other) = public_methods(include_str!("authenticator.rs"));
        let listed: BTreeSet<&str> = ThreadAuthenticator::BLOCKING_METHODS
            .iter()
            .copied()
            .collect();
        assert_eq!(
            listed.len(),
            ThreadAuthenticator::BLOCKING_METHODS.len(),
            "a method is listed twice"
        );
        let expected: BTreeSet<&str> = asynchronous.difference(&["stop"].into()).copied().collect();
        assert!(expected.len() > 30, "the parser found {expected:?}");
        assert_eq!(listed, expected);

        let (none, here) = public_methods(include_str!("thread.rs"));
        assert!(none.is_empty());
        for name in other.iter().chain(&["stop"]) {
            assert!(here.contains(name), "ThreadAuthenticator has no `{name}`");
        }
    }
}
