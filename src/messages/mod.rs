//! The typed messages that configure and query the authenticator, and what they carry.
//!
//! Every change to the policy is one of these, sent to the
//! [`PolicyActor`](crate::actors::PolicyActor)'s address, so the policy needs no lock. Every
//! method of [`Authenticator`](crate::Authenticator) except `stop` and `stats` sends one of
//! them to the policy actor (`stats` sends [`GetStats`] to the
//! [`ZapSocket`](crate::actors::ZapSocket), which adds the requests in flight; `stop` is the
//! handle's alone). Configuration messages answer `Result<_, ConfigError>`, and a rejected
//! message changes nothing; queries ([`Inspect`], [`GetStats`], [`Subscribe`],
//! [`Unsubscribe`], [`Watches`]) cannot fail and answer their value directly.
//!
//! ```no_run
//! # async fn demo(auth: actix_zap::Authenticator) -> Result<(), actix_zap::ConfigError> {
//! use actix_zap::messages::{Allow, ConfigureCurve, Inspect};
//! // Through the handle: one `?`, the error is a `ConfigError`.
//! auth.send(Allow::new(["127.0.0.1", "10.0.0.0/8"])?).await?;
//! // Or to the actor's address: the outer `?` is the mailbox, the inner one the answer.
//! auth.policy().send(ConfigureCurve::directory("*", "public_keys")).await??;
//! let snapshot = auth.policy().send(Inspect).await?;
//! # let _ = snapshot; Ok(()) }
//! ```
//!
//! Subscribers receive [`DecisionEvent`]s, whose status is a
//! [`zap::StatusCode`](crate::zap::StatusCode). Each item has one path: what these messages
//! carry from other modules (e.g. [`policy::MechanismKind`](crate::policy::MechanismKind),
//! [`policy::Removed`](crate::policy::Removed)) is linked where it is used.

use std::path::PathBuf;
use std::time::Duration;

use actix::Message;

use crate::certs::{CertStore, Layout, RejectedFile, SkippedFile};
use crate::policy::UserIdMapper;
use crate::policy::{
    AddressError, AddressPattern, AddressRules, GssapiPolicy, IpcRule, PasswordTable,
    PolicySnapshot, Scope,
};
use crate::provider::Provider;
use crate::zap::Reply;
use error::ConfigError;

mod deltas;
pub(crate) mod error;
mod events;
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) mod store;
pub(crate) mod watch;

// Its public path is `policy::MechanismKind` (one path per item); this one serves the
// crate's own paths and links.
pub(crate) use crate::policy::MechanismKind;
pub use deltas::{
    AddCurveKeys, AddPlainUsers, ConfigureHashedPlain, RemoveCurveKeys, RemovePlainUsers,
};
pub use events::{DecisionEvent, EventMechanism, SourceStats, Stats, Subscriber, SubscriptionId};
pub use watch::{ReloadCallback, Reloaded, Unwatch, Watch, WatchSource, Watches};

/// Messages that widen or replace a domain's setting take the domain over from a watch or a
/// store only when asked: `.take_over()` sets their `take_over` field.
///
/// By hand, a removal is never refused; a widening or replacing change of a domain that a
/// watch or a store owns is refused with
/// [`PolicyError::OwnedBy`](crate::policy::PolicyError::OwnedBy) naming the owner, unless it
/// takes over. Taking over stops that owner for that domain (logged at `warn`), supersedes
/// a directory load in progress, and lifts the domain's local revocations.
///
/// ```
/// use actix_zap::messages::{ConfigureCurve, TakeOver};
/// let message = ConfigureCurve::allow_any("fleet").take_over();
/// assert!(message.take_over);
/// ```
pub trait TakeOver: Sized {
    /// The same message, taking the domain over from its watch or store.
    fn take_over(self) -> Self;
}

macro_rules! take_over {
    ($($message:ty),*) => {$(
        impl TakeOver for $message {
            fn take_over(self) -> Self {
                Self { take_over: true, ..self }
            }
        }
    )*};
}

take_over!(
    ConfigurePlain,
    ConfigureCurve,
    ConfigureCurveCallback,
    Unconfigure,
    AddCurveKeys,
    AddPlainUsers,
    ConfigureHashedPlain
);

fn patterns<S: AsRef<str>>(
    addresses: impl IntoIterator<Item = S>,
) -> Result<Vec<AddressPattern>, AddressError> {
    addresses.into_iter().map(|a| a.as_ref().parse()).collect()
}

/// Adds addresses or CIDR ranges to the allow-list (pyzmq's `allow`): globally, or for one
/// domain (whose requests must then pass both the global and their own rules).
///
/// While an IP list is in force, `ipc://` peers are refused unless an IPC rule admits them
/// (see [`AllowIpc`]), and so is any address that is not an IP. The domain `"*"` is refused
/// ([`PolicyError::AnyDomainAddressRules`](crate::policy::PolicyError)).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), ConfigError>")]
pub struct Allow {
    /// Addresses and ranges.
    pub addresses: Vec<AddressPattern>,
    /// Global, or one domain.
    pub scope: Scope,
}

/// Adds addresses or CIDR ranges to the deny-list (pyzmq's `deny`), globally or for one
/// domain.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), ConfigError>")]
pub struct Deny {
    /// Addresses and ranges.
    pub addresses: Vec<AddressPattern>,
    /// Global, or one domain.
    pub scope: Scope,
}

/// Removes entries from the allow- or deny-list of a scope; answers how many were removed.
///
/// Removal only narrows: an allow-list whose last entry is removed stays in force and
/// refuses every address (`400 Address not allowed`) until [`ClearAddressRules`]; a
/// deny-list whose last entry is removed is dropped.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<usize, ConfigError>")]
pub struct RemoveAddresses {
    /// Addresses and ranges, as they were added.
    pub addresses: Vec<AddressPattern>,
    /// Global, or one domain.
    pub scope: Scope,
}

macro_rules! address_message {
    ($message:ident) => {
        impl $message {
            /// Parses each address or range (global scope); fails on the first bad one.
            pub fn new<S: AsRef<str>>(
                addresses: impl IntoIterator<Item = S>,
            ) -> Result<Self, AddressError> {
                Ok($message {
                    addresses: patterns(addresses)?,
                    scope: Scope::Global,
                })
            }

            /// The same entries, for one domain's own rules instead.
            pub fn in_domain(self, domain: impl Into<String>) -> Self {
                $message {
                    scope: Scope::Domain(domain.into()),
                    ..self
                }
            }
        }
    };
}

address_message!(Allow);
address_message!(Deny);
address_message!(RemoveAddresses);

/// Replaces the global IP list as a whole (e.g. switch from an allow-list to a deny-list).
///
/// `AddressRules::Allow` with an empty set refuses every address; `AddressRules::Open` stops
/// IP filtering (IPC rules, if any, stay: [`ClearAddressRules`] drops both).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), ConfigError>")]
pub struct SetAddressRules(pub AddressRules);

/// Replaces one domain's own IP list as a whole, as [`SetAddressRules`] does globally.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), ConfigError>")]
pub struct SetDomainAddressRules {
    /// The ZAP domain.
    pub domain: String,
    /// Its rules.
    pub rules: AddressRules,
}

/// Drops every address rule of a scope, IP and IPC: the explicit way back to no address
/// filtering (removing entries never gets there for an allow-list).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), ConfigError>")]
pub struct ClearAddressRules {
    /// Global, or one domain (never `"*"`).
    pub scope: Scope,
}

impl ClearAddressRules {
    /// Clears the global rules.
    pub fn global() -> Self {
        ClearAddressRules {
            scope: Scope::Global,
        }
    }

    /// Clears one domain's own rules.
    pub fn in_domain(domain: impl Into<String>) -> Self {
        ClearAddressRules {
            scope: Scope::Domain(domain.into()),
        }
    }
}

/// Admits `ipc://` peers whose credentials match one of these rules, globally or for one
/// domain.
///
/// libzmq identifies an IPC peer by its kernel-checked user and group (`SO_PEERCRED`), not by
/// an IP address, so IP lists cannot judge it: while a scope has an IP list and no IPC rule,
/// it refuses IPC peers. Once a scope has IPC rules, an IPC peer passes that scope only if
/// one matches (an emptied IPC list refuses every IPC peer until [`ClearIpcRules`]).
///
/// ```no_run
/// # async fn demo(policy: actix::Addr<actix_zap::actors::PolicyActor>) -> Result<(), actix_zap::ConfigError> {
/// use actix_zap::{messages::{AllowIpc, Deny}, policy::IpcRule};
/// policy.send(Deny::new(["0.0.0.0/0", "::/0"])?).await??; // no network peers...
/// policy.send(AllowIpc::new([IpcRule::Uid(1000)])).await??; // ...only local user 1000
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), ConfigError>")]
pub struct AllowIpc {
    /// The rules.
    pub rules: Vec<IpcRule>,
    /// Global, or one domain (never `"*"`).
    pub scope: Scope,
}

/// Removes rules from a scope's IPC allow-list; answers how many were there.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<usize, ConfigError>")]
pub struct RemoveIpc {
    /// The rules.
    pub rules: Vec<IpcRule>,
    /// Global, or one domain (never `"*"`).
    pub scope: Scope,
}

macro_rules! ipc_message {
    ($message:ident) => {
        impl $message {
            /// These rules, in the global scope.
            pub fn new(rules: impl IntoIterator<Item = IpcRule>) -> Self {
                $message {
                    rules: rules.into_iter().collect(),
                    scope: Scope::Global,
                }
            }

            /// The same rules, for one domain's own rules instead.
            pub fn in_domain(self, domain: impl Into<String>) -> Self {
                $message {
                    scope: Scope::Domain(domain.into()),
                    ..self
                }
            }
        }
    };
}

ipc_message!(AllowIpc);
ipc_message!(RemoveIpc);

/// Drops a scope's IPC allow-list: IPC peers are then refused there while an IP list is in
/// force, and admitted otherwise.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), ConfigError>")]
pub struct ClearIpcRules {
    /// Global, or one domain (never `"*"`).
    pub scope: Scope,
}

/// Sets one domain's PLAIN users (`"*"` covers every domain without its own table).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), ConfigError>")]
pub struct ConfigurePlain {
    /// The ZAP domain, or `"*"`.
    pub domain: String,
    /// Usernames and passwords.
    pub passwords: PasswordTable,
    /// Take the domain over from a watch or store that owns it (see [`TakeOver`]).
    pub take_over: bool,
}

impl ConfigurePlain {
    /// These users for `domain`:
    /// `ConfigurePlain::new("global", [("admin", "secret")])`.
    pub fn new<U, P>(domain: impl Into<String>, passwords: impl IntoIterator<Item = (U, P)>) -> Self
    where
        U: Into<Vec<u8>>,
        P: Into<Vec<u8>>,
    {
        ConfigurePlain {
            domain: domain.into(),
            passwords: PasswordTable::new(passwords),
            take_over: false,
        }
    }
}

/// Where a domain's CURVE decision comes from (the named constructors of
/// [`ConfigureCurve`] build each).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CurveSource {
    /// Any client key (pyzmq's `CURVE_ALLOW_ANY`), for this domain only.
    AllowAny,
    /// The public certificates in a directory, read off the actix thread.
    Directory {
        /// The directory.
        path: PathBuf,
        /// pyzmq's (`*.key`, flat) or CZMQ's (recursive, all but `*_secret`) layout.
        layout: Layout,
    },
    /// A key set loaded by the caller.
    Keys(CertStore),
}

/// Sets one domain's CURVE policy, replacing that domain's previous one (keys, allow-any or
/// provider) and no other domain's.
///
/// A directory is read by the same reader as a [`Watch`]'s looks, on a thread of its own that
/// nobody waits for: files are opened without blocking and only regular files are read (a
/// FIFO is named in the report, never waited on). The reply comes once the keys are
/// installed; the domain then admits exactly the keys of the valid files, and the report
/// names every file skipped, with its cause. If the directory cannot be read at all
/// ([`ConfigError::Certificates`]), or its read takes longer than
/// [`ConfigureCurve::READ_DEADLINE`] or panics ([`ConfigError::LoadFailed`]), the domain
/// refuses every CURVE client until a later configuration succeeds, and the error says why;
/// stopping the authenticator never waits for a read that hangs.
#[derive(Clone, Message)]
#[rtype(result = "Result<CurveReport, ConfigError>")]
pub struct ConfigureCurve {
    /// The ZAP domain, or `"*"`.
    pub domain: String,
    /// Allow-any, a directory or a key set.
    pub source: CurveSource,
    /// Take the domain over from a watch or store that owns it (see [`TakeOver`]).
    pub take_over: bool,
    /// Replaces a directory's file reads and deadline, for tests of reads that hang or panic.
    reader: Option<ReadThrough>,
}

/// A test's replacement for a directory load's file reads, with the deadline to hold it to.
#[derive(Clone)]
pub(crate) struct ReadThrough {
    pub(crate) read: watch::ReadHook,
    pub(crate) deadline: Duration,
}

impl std::fmt::Debug for ConfigureCurve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigureCurve")
            .field("domain", &self.domain)
            .field("source", &self.source)
            .field("take_over", &self.take_over)
            .finish()
    }
}

impl ConfigureCurve {
    /// How long reading a certificate directory may take before the domain fails closed (an
    /// NFS stall): 30 s. 100,000 local files load in about a second.
    pub const READ_DEADLINE: Duration = Duration::from_secs(30);

    /// Any key may connect in `domain`.
    pub fn allow_any(domain: impl Into<String>) -> Self {
        ConfigureCurve {
            domain: domain.into(),
            source: CurveSource::AllowAny,
            take_over: false,
            reader: None,
        }
    }

    /// The keys of the certificates in `path`, pyzmq's layout: the `*.key` files directly in
    /// it (pyzmq's `load_certificates`).
    pub fn directory(domain: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self::directory_in_layout(domain, path, Layout::Pyzmq)
    }

    /// The keys of a CZMQ certificate store (`zcertstore`): every file in `path` and its
    /// subdirectories, whatever its name, except `*_secret` files.
    pub fn czmq_directory(domain: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self::directory_in_layout(domain, path, Layout::Czmq)
    }

    /// The keys of the certificates in `path`, in either layout.
    pub fn directory_in_layout(
        domain: impl Into<String>,
        path: impl Into<PathBuf>,
        layout: Layout,
    ) -> Self {
        ConfigureCurve {
            domain: domain.into(),
            source: CurveSource::Directory {
                path: path.into(),
                layout,
            },
            take_over: false,
            reader: None,
        }
    }

    /// Exactly the keys of a set the caller loaded (e.g. with
    /// [`load_directory`](crate::certs::load_directory) or built key by key).
    pub fn keys(domain: impl Into<String>, keys: CertStore) -> Self {
        ConfigureCurve {
            domain: domain.into(),
            source: CurveSource::Keys(keys),
            take_over: false,
            reader: None,
        }
    }

    /// Reads a directory's files through `read` instead of the filesystem (their metadata
    /// still comes from the filesystem), holding the load to `deadline` instead of
    /// [`READ_DEADLINE`](Self::READ_DEADLINE): for tests of reads that hang or panic. Not a
    /// stable API (feature `test-hooks`).
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn read_through(
        self,
        deadline: Duration,
        read: impl Fn(&std::path::Path) -> std::io::Result<Vec<u8>> + Send + Sync + 'static,
    ) -> Self {
        let read = std::sync::Arc::new(read);
        ConfigureCurve {
            reader: Some(ReadThrough { read, deadline }),
            ..self
        }
    }

    /// The test reader and deadline of a directory load.
    pub(crate) fn take_reader(&mut self) -> Option<ReadThrough> {
        self.reader.take()
    }
}

/// What a CURVE configuration installed.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct CurveReport {
    /// Keys now admitted in the domain (0 for allow-any).
    pub keys: usize,
    /// Certificate files that were skipped, each with its cause, in path order: broken
    /// certificates, duplicate keys (naming the file loaded), files that are not regular files
    /// (a FIFO), files that cannot be read or changed while read, unlistable subdirectories.
    pub rejected: Vec<RejectedFile>,
    /// Every entry of the directory its layout passed over, with the reason, in path order:
    /// secret files, CZMQ's `*.cert` read in pyzmq's layout, other names, subdirectories pyzmq's
    /// layout does not enter (see [`SkipReason`](crate::certs::SkipReason)).
    pub skipped: Vec<SkippedFile>,
    /// Names the files the layout passed over, and why: set when a directory holds files but
    /// none of them was a certificate in the layout asked for (e.g. `*.cert` files read in
    /// pyzmq's layout, which takes only `*.key`: the domain then admits no key), and, in
    /// pyzmq's layout, when files beside the `NAME.key` ones are neither `NAME.key` nor secret
    /// files (e.g. CZMQ's `*.cert` in a mixed directory). A [`Watch`] of the directory reports
    /// the same in [`Reloaded::warning`].
    pub warning: Option<String>,
}

/// Lets a provider decide the domain's CURVE keys (pyzmq's `configure_curve_callback`).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), ConfigError>")]
pub struct ConfigureCurveCallback {
    /// The ZAP domain, or `"*"`.
    pub domain: String,
    /// The provider, synchronous or asynchronous.
    pub provider: Provider,
    /// Take the domain over from a watch or store that owns it (see [`TakeOver`]).
    pub take_over: bool,
}

/// Sets one domain's GSSAPI policy.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), ConfigError>")]
pub struct ConfigureGssapi {
    /// The ZAP domain, or `"*"`.
    pub domain: String,
    /// Any principal, or a set of principals.
    pub policy: GssapiPolicy,
}

/// Removes one mechanism's configuration from a domain; answers whether there was one.
/// Refused on a domain a watch or store owns unless it takes over.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<bool, ConfigError>")]
pub struct Unconfigure {
    /// The ZAP domain, or `"*"`.
    pub domain: String,
    /// The mechanism.
    pub mechanism: MechanismKind,
    /// Take the domain over from a watch or store that owns it (see [`TakeOver`]).
    pub take_over: bool,
}

/// Lifts local revocations of a domain's mechanism; answers how many were lifted.
///
/// A removal by hand ([`RemoveCurveKeys`], [`RemovePlainUsers`]) that a watch, a store or a
/// load in progress could undo, or that names a key or user the domain's setting would admit
/// without an installed entry (allow-any, a provider, the `"*"` fallback), is kept as a
/// local revocation: the name stays refused in that domain whatever later updates bring.
/// This message, a take-over, or (on a domain the hand owns) an `Add*`/`Configure*` naming
/// the key or user are the only ways to lift one. Revocations live in memory: a restart
/// forgets them.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<usize, ConfigError>")]
pub struct LiftRevocations {
    /// The ZAP domain, or `"*"`.
    pub domain: String,
    /// The mechanism.
    pub mechanism: MechanismKind,
    /// CURVE keys (32 bytes each) or usernames; `None` lifts every revocation there.
    pub names: Option<Vec<Vec<u8>>>,
}

impl LiftRevocations {
    /// Lifts the revocations of these CURVE keys in `domain`.
    pub fn curve_keys(
        domain: impl Into<String>,
        keys: impl IntoIterator<Item = crate::keys::CurvePublicKey>,
    ) -> Self {
        let names = keys.into_iter().map(|k| k.as_bytes().to_vec()).collect();
        LiftRevocations {
            domain: domain.into(),
            mechanism: MechanismKind::Curve,
            names: Some(names),
        }
    }

    /// Lifts the revocations of these PLAIN users in `domain`.
    pub fn plain_users<U: Into<Vec<u8>>>(
        domain: impl Into<String>,
        users: impl IntoIterator<Item = U>,
    ) -> Self {
        LiftRevocations {
            domain: domain.into(),
            mechanism: MechanismKind::Plain,
            names: Some(users.into_iter().map(Into::into).collect()),
        }
    }

    /// Lifts every revocation of `domain`'s `mechanism`.
    pub fn all(domain: impl Into<String>, mechanism: MechanismKind) -> Self {
        LiftRevocations {
            domain: domain.into(),
            mechanism,
            names: None,
        }
    }
}

/// Replaces the CURVE user-id mapping (`None`: the key's Z85 text, pyzmq's default).
///
/// The mapping runs like a synchronous provider: on the provider pool, under the provider
/// deadline. One that returns an error, panics or hangs gives its client a `500`.
#[derive(Clone, Message)]
#[rtype(result = "Result<(), ConfigError>")]
pub struct SetCurveUserId(pub Option<UserIdMapper>);

impl SetCurveUserId {
    /// A mapping that cannot fail.
    pub fn infallible<F>(mapper: F) -> Self
    where
        F: Fn(&crate::keys::CurvePublicKey) -> String + Send + Sync + 'static,
    {
        SetCurveUserId(Some(std::sync::Arc::new(move |key: &_| Ok(mapper(key)))))
    }
}

impl std::fmt::Debug for SetCurveUserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SetCurveUserId(custom: {})", self.0.is_some())
    }
}

/// Asks for the policy in force (passwords redacted). Cannot fail.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "PolicySnapshot")]
pub struct Inspect;

/// Subscribes to decision events (an actor's `Recipient` or a callback). Cannot fail.
///
/// ```no_run
/// # fn demo(recipient: actix::Recipient<actix_zap::messages::DecisionEvent>) {
/// use actix_zap::messages::Subscribe;
/// let message = Subscribe(recipient.into());
/// # }
/// ```
#[derive(Debug, Clone, Message)]
#[rtype(result = "SubscriptionId")]
pub struct Subscribe(pub Subscriber);

/// Ends a subscription; answers whether it existed. Cannot fail.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "bool")]
pub struct Unsubscribe(pub SubscriptionId);

/// Asks for the counters. Cannot fail.
///
/// Send it to the [`ZapSocket`](crate::actors::ZapSocket) (as
/// [`Authenticator::stats`](crate::Authenticator::stats) does): it adds the requests in flight
/// and its own replies (overload, superseded) to the policy actor's counters. Sent to the
/// [`PolicyActor`](crate::actors::PolicyActor), it answers that actor's counters alone, with
/// `in_flight` always 0.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Stats")]
pub struct GetStats;

/// Runs the function on the argon2 worker before each verification of a hashed PLAIN
/// password, so that a test can hold a verification under way while it acts: a gate the test
/// controls, never timing. Not a stable API (feature `test-hooks`); never needed.
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
#[derive(Clone, Message)]
#[rtype(result = "Result<(), ConfigError>")]
pub struct BeforeVerificationForTests(pub std::sync::Arc<dyn Fn() + Send + Sync>);

/// One ZAP request, as frames after the routing envelope (at least 2: the
/// [`ZapSocket`](crate::actors::ZapSocket) drops anything without a request id). Answered
/// with the reply to send. Only the `ZapSocket` sends it.
#[derive(Debug, Message)]
#[rtype(result = "Reply")]
pub(crate) struct Authenticate(pub Vec<Vec<u8>>);

/// Stops an actor. The [`ZapSocket`](crate::actors::ZapSocket) answers what is in flight,
/// unbinds, then stops the policy actor with it; only the handles' `stop` sends it, so the
/// two actors and the handle can never disagree about whether the authenticator runs.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub(crate) struct Stop;

impl From<actix::Recipient<DecisionEvent>> for Subscriber {
    /// An actor's recipient: `auth.subscribe(addr.recipient())`.
    fn from(recipient: actix::Recipient<DecisionEvent>) -> Self {
        Subscriber::Actor(recipient)
    }
}
