//! [`Authenticator`]: the async handle of an authenticator running in the caller's actix
//! System; each method sends one typed message of [`messages`](crate::messages).

use std::path::Path;

use actix::prelude::*;

use super::AuthenticatorBuilder;
use crate::actors::{PolicyActor, ZapSocket};
use crate::certs::CertStore;
use crate::keys::CurvePublicKey;
use crate::messages::error::{ConfigError, StartError, Unavailable};
use crate::messages::*;
use crate::policy::{
    CurveEntry, GssapiPolicy, HashedPassword, IpcRule, MechanismKind, PolicySnapshot, Removed,
    Scope,
};
use crate::provider::Provider;

/// pyzmq's `CURVE_ALLOW_ANY`: pass it as the location to admit any CURVE key.
pub const CURVE_ALLOW_ANY: &str = "*";

/// A running authenticator: a cheap, cloneable handle to its two actors.
///
/// Dropping handles never stops authentication; only [`stop`](Self::stop) does.
///
/// Every method except [`stop`](Self::stop) and [`stats`](Self::stats) sends one message of
/// [`messages`](crate::messages) to the [`PolicyActor`] and waits for its answer; send your
/// own with [`send`](Self::send). Configuration methods fail with a [`ConfigError`] (and
/// then changed nothing); queries that cannot fail (`inspect`, `stats`, `watches`,
/// `subscribe`, `unsubscribe`) fail only when the authenticator is stopped
/// ([`Unavailable::Stopped`]).
///
/// # Never block the actix thread
///
/// The authenticator's actors run on the thread of the actix System that started them. While
/// that thread is blocked — a blocking call (`std::thread::sleep`, a synchronous database or
/// file call, a [`ThreadAuthenticator`](crate::ThreadAuthenticator) method, `block_on`)
/// inside an `async fn` or a handler — **every handshake on the context stalls**: libzmq waits
/// for ZAP replies that nobody writes, and clients time out. Run blocking work with
/// `tokio::task::spawn_blocking` (`actix_web::web::block` in actix-web), or, if the
/// application has no actix System to spare, use
/// [`ThreadAuthenticator`](crate::ThreadAuthenticator), which runs the actors on a thread of
/// their own. A stall longer than [`Settings::stall_warning`](crate::Settings::stall_warning) while requests wait is logged
/// as a warning and counted in [`Stats::stalls`](crate::messages::Stats::stalls).
///
/// ```no_run
/// use actix_zap::Authenticator;
///
/// #[actix::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let context = zmq::Context::new();
///     let auth = Authenticator::start(&context)?;
///     auth.allow(["127.0.0.1"]).await?;
///     auth.configure_curve("*", "public_keys").await?;
///     // ... CURVE server sockets on `context` now admit only those keys ...
///     auth.stop().await;
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct Authenticator {
    pub(super) policy: Addr<PolicyActor>,
    pub(super) zap: Addr<ZapSocket>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("running", &self.zap.connected())
            .finish()
    }
}

impl Authenticator {
    /// Starts with default [`Settings`](crate::Settings) in the current actix System; see
    /// [`AuthenticatorBuilder::start`].
    pub fn start(context: &zmq::Context) -> Result<Self, StartError> {
        AuthenticatorBuilder::default().start(context)
    }

    /// Options for starting, here or on a thread of its own.
    pub fn builder() -> AuthenticatorBuilder {
        AuthenticatorBuilder::default()
    }

    /// The [`PolicyActor`](crate::actors::PolicyActor), for sending the typed messages directly:
    /// `auth.policy().send(message).await??` (the outer error is the mailbox's, which
    /// converts into [`ConfigError::Stopped`]).
    pub fn policy(&self) -> &Addr<PolicyActor> {
        &self.policy
    }

    /// The socket actor, [`ZapSocket`](crate::actors::ZapSocket): [`GetStats`] sent here
    /// includes the requests in flight.
    pub fn zap_socket(&self) -> &Addr<ZapSocket> {
        &self.zap
    }

    /// Sends any configuration message of [`messages`](crate::messages) to the
    /// [`PolicyActor`](crate::actors::PolicyActor) and waits for its answer, with one error type for both a stopped authenticator and a
    /// refused message.
    ///
    /// ```no_run
    /// # async fn demo(auth: actix_zap::Authenticator) -> Result<(), actix_zap::ConfigError> {
    /// use actix_zap::messages::{ConfigurePlain, RemoveAddresses};
    /// auth.send(ConfigurePlain::new("global", [("admin", "secret")])).await?;
    /// let removed: usize = auth.send(RemoveAddresses::new(["10.0.0.7"])?).await?;
    /// # let _ = removed; Ok(()) }
    /// ```
    pub async fn send<M, T>(&self, message: M) -> Result<T, ConfigError>
    where
        M: Message<Result = Result<T, ConfigError>> + Send + 'static,
        T: Send + 'static,
        PolicyActor: Handler<M>,
    {
        self.policy.send(message).await?
    }

    /// Sends a query that cannot fail and waits for its answer.
    async fn ask<M>(&self, message: M) -> Result<M::Result, Unavailable>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        PolicyActor: Handler<M>,
    {
        self.policy
            .send(message)
            .await
            .map_err(|_| Unavailable::Stopped)
    }

    /// Admits only these addresses or CIDR ranges (pyzmq's `allow`); exclusive with `deny`.
    ///
    /// While any address list is in force, `ipc://` peers are refused unless
    /// [`allow_ipc`](Self::allow_ipc) admits them.
    pub async fn allow<S: AsRef<str>>(
        &self,
        addresses: impl IntoIterator<Item = S>,
    ) -> Result<(), ConfigError> {
        self.send(Allow::new(addresses)?).await
    }

    /// Refuses these addresses or CIDR ranges (pyzmq's `deny`); exclusive with `allow`.
    pub async fn deny<S: AsRef<str>>(
        &self,
        addresses: impl IntoIterator<Item = S>,
    ) -> Result<(), ConfigError> {
        self.send(Deny::new(addresses)?).await
    }

    /// Admits only these addresses or ranges to `domain` (on top of the global rules).
    /// `"*"` is refused: the global rules already cover every domain.
    pub async fn allow_in<S: AsRef<str>>(
        &self,
        domain: &str,
        addresses: impl IntoIterator<Item = S>,
    ) -> Result<(), ConfigError> {
        self.send(Allow::new(addresses)?.in_domain(domain)).await
    }

    /// Refuses these addresses or ranges in `domain` (on top of the global rules).
    /// `"*"` is refused: the global rules already cover every domain.
    pub async fn deny_in<S: AsRef<str>>(
        &self,
        domain: &str,
        addresses: impl IntoIterator<Item = S>,
    ) -> Result<(), ConfigError> {
        self.send(Deny::new(addresses)?.in_domain(domain)).await
    }

    /// Removes entries from the global allow- or deny-list; returns how many were there.
    ///
    /// This only narrows: an allow-list emptied this way refuses every address until
    /// [`clear_addresses`](Self::clear_addresses).
    pub async fn remove_addresses<S: AsRef<str>>(
        &self,
        addresses: impl IntoIterator<Item = S>,
    ) -> Result<usize, ConfigError> {
        self.send(RemoveAddresses::new(addresses)?).await
    }

    /// Removes entries from `domain`'s own allow- or deny-list; returns how many were there.
    /// An allow-list emptied this way refuses every address in that domain.
    pub async fn remove_addresses_in<S: AsRef<str>>(
        &self,
        domain: &str,
        addresses: impl IntoIterator<Item = S>,
    ) -> Result<usize, ConfigError> {
        self.send(RemoveAddresses::new(addresses)?.in_domain(domain))
            .await
    }

    /// Drops every global address rule (IP and IPC): the explicit way back to no global
    /// address filtering.
    pub async fn clear_addresses(&self) -> Result<(), ConfigError> {
        self.send(ClearAddressRules::global()).await
    }

    /// Drops every address rule of `domain` (IP and IPC).
    pub async fn clear_addresses_in(&self, domain: &str) -> Result<(), ConfigError> {
        self.send(ClearAddressRules::in_domain(domain)).await
    }

    /// Admits `ipc://` peers matching one of these rules
    /// ([`IpcRule`](crate::policy::IpcRule)s; see [`AllowIpc`]).
    ///
    /// ```no_run
    /// # async fn demo(auth: actix_zap::Authenticator) -> Result<(), actix_zap::ConfigError> {
    /// use actix_zap::policy::IpcRule;
    /// auth.deny(["0.0.0.0/0", "::/0"]).await?;           // no network peers (IPC refused too)
    /// auth.allow_ipc([IpcRule::Uid(1000)]).await?;       // but local user 1000 over ipc://
    /// # Ok(()) }
    /// ```
    pub async fn allow_ipc(
        &self,
        rules: impl IntoIterator<Item = IpcRule>,
    ) -> Result<(), ConfigError> {
        self.send(AllowIpc::new(rules)).await
    }

    /// Admits `ipc://` peers of `domain` matching one of these
    /// [`IpcRule`](crate::policy::IpcRule)s.
    pub async fn allow_ipc_in(
        &self,
        domain: &str,
        rules: impl IntoIterator<Item = IpcRule>,
    ) -> Result<(), ConfigError> {
        self.send(AllowIpc::new(rules).in_domain(domain)).await
    }

    /// Removes global [`IpcRule`](crate::policy::IpcRule)s; returns how many were there. An
    /// emptied IPC list refuses
    /// every IPC peer until [`clear_ipc`](Self::clear_ipc).
    pub async fn remove_ipc(
        &self,
        rules: impl IntoIterator<Item = IpcRule>,
    ) -> Result<usize, ConfigError> {
        self.send(RemoveIpc::new(rules)).await
    }

    /// Removes [`IpcRule`](crate::policy::IpcRule)s of `domain`; returns how many were there.
    pub async fn remove_ipc_in(
        &self,
        domain: &str,
        rules: impl IntoIterator<Item = IpcRule>,
    ) -> Result<usize, ConfigError> {
        self.send(RemoveIpc::new(rules).in_domain(domain)).await
    }

    /// Drops the global IPC allow-list.
    pub async fn clear_ipc(&self) -> Result<(), ConfigError> {
        let scope = Scope::Global;
        self.send(ClearIpcRules { scope }).await
    }

    /// Drops `domain`'s IPC allow-list.
    pub async fn clear_ipc_in(&self, domain: &str) -> Result<(), ConfigError> {
        let scope = Scope::Domain(domain.to_owned());
        self.send(ClearIpcRules { scope }).await
    }

    /// Sets a domain's PLAIN users (`"*"`: every domain without its own table).
    pub async fn configure_plain<U, P>(
        &self,
        domain: &str,
        passwords: impl IntoIterator<Item = (U, P)>,
    ) -> Result<(), ConfigError>
    where
        U: Into<Vec<u8>>,
        P: Into<Vec<u8>>,
    {
        self.send(ConfigurePlain::new(domain, passwords)).await
    }

    /// Sets a domain's CURVE keys from a certificate directory (pyzmq layout, `*.key`), or
    /// admits any key when `location` is [`CURVE_ALLOW_ANY`]. The directory is read off the
    /// actix thread, by the same reader as a [`Watch`](crate::messages::Watch) and within
    /// [`ConfigureCurve::READ_DEADLINE`]; the domain then admits exactly the keys of its valid
    /// files, and the report ([`CurveReport`]) names every file skipped (see
    /// [`ConfigureCurve`]).
    pub async fn configure_curve(
        &self,
        domain: &str,
        location: impl AsRef<Path>,
    ) -> Result<CurveReport, ConfigError> {
        let location = location.as_ref();
        let message = if location == Path::new(CURVE_ALLOW_ANY) {
            ConfigureCurve::allow_any(domain)
        } else {
            ConfigureCurve::directory(domain, location)
        };
        self.send(message).await
    }

    /// Sets a domain's CURVE keys from a CZMQ certificate store (`zcertstore`): every file
    /// in `directory` and its subdirectories, whatever its name, except `*_secret` files.
    /// Read off the actix thread, like [`configure_curve`](Self::configure_curve), and
    /// reported the same way ([`CurveReport`]).
    pub async fn configure_curve_czmq(
        &self,
        domain: &str,
        directory: impl AsRef<Path>,
    ) -> Result<CurveReport, ConfigError> {
        let directory = directory.as_ref();
        self.send(ConfigureCurve::czmq_directory(domain, directory))
            .await
    }

    /// Sets a domain's CURVE keys from a key set loaded by the caller (a
    /// [`CertStore`](crate::certs::CertStore), e.g. from
    /// [`load_directory`](crate::certs::load_directory)); answers a [`CurveReport`].
    pub async fn configure_curve_keys(
        &self,
        domain: &str,
        keys: CertStore,
    ) -> Result<CurveReport, ConfigError> {
        self.send(ConfigureCurve::keys(domain, keys)).await
    }

    /// Trusts these CURVE keys in `domain` from now on, leaving its other keys as they are;
    /// answers how many entries were added or replaced. Sends [`AddCurveKeys`].
    ///
    /// Each item is a [`CurvePublicKey`](crate::keys::CurvePublicKey) (the `User-Id` is then
    /// the key's Z85 text, or the mapping's) or a [`CurveEntry`](crate::policy::CurveEntry)
    /// with metadata, a `User-Id` or an expiry of its own. A domain that admitted any key, or
    /// asked a provider, or had no CURVE setting, then admits exactly these keys: adding a key
    /// never widens such a domain to more than it names. Refused, with
    /// [`PolicyError::OwnedBy`](crate::policy::PolicyError::OwnedBy), on a domain a watch or
    /// a store owns (send [`AddCurveKeys`] with [`take_over`](crate::messages::TakeOver) to
    /// take it over). Trusting a key the hand revoked in this domain lifts that revocation.
    ///
    /// ```no_run
    /// # async fn demo(auth: actix_zap::Authenticator) -> Result<(), Box<dyn std::error::Error>> {
    /// use actix_zap::keys::CurvePublicKey;
    /// let key = CurvePublicKey::from_z85("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7")?;
    /// auth.add_curve_keys("global", [key]).await?;
    /// // ... and later, in force for every handshake decided after it returns:
    /// auth.remove_curve_keys("global", [key]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn add_curve_keys<K: Into<CurveEntry>>(
        &self,
        domain: &str,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<usize, ConfigError> {
        let keys = keys.into_iter().map(Into::into);
        self.send(AddCurveKeys::new(domain, keys)).await
    }

    /// Stops trusting these CURVE keys ([`CurvePublicKey`](crate::keys::CurvePublicKey)s) in
    /// `domain`, whoever owns it (a removal is never
    /// refused); answers what it did ([`Removed`](crate::policy::Removed)). Sends
    /// [`RemoveCurveKeys`].
    ///
    /// Fail-closed: once it has returned `Ok`, no handshake is admitted under these keys in
    /// that domain, including one whose decision was under way, and sessions a
    /// [`SessionSocket`](crate::sessions::SessionSocket) serves under them have ended. A key
    /// the domain would still admit without an entry (allow-any, a provider, the `"*"`
    /// fallback), or that its watch or store could bring back, stays revoked there until
    /// [`LiftRevocations`](crate::messages::LiftRevocations) or
    /// [`add_curve_keys`](Self::add_curve_keys) by hand.
    pub async fn remove_curve_keys(
        &self,
        domain: &str,
        keys: impl IntoIterator<Item = CurvePublicKey>,
    ) -> Result<Removed, ConfigError> {
        self.send(RemoveCurveKeys::new(domain, keys)).await
    }

    /// Adds PLAIN users to `domain` with argon2id hashes, or replaces their hashes; answers
    /// how many. Sends [`AddPlainUsers`].
    ///
    /// Each user comes with a [`HashedPassword`](crate::policy::HashedPassword): hash a
    /// password with [`HashedPassword::hash`](crate::policy::HashedPassword::hash), or
    /// take a PHC string kept elsewhere with
    /// [`HashedPassword::parse`](crate::policy::HashedPassword::parse). A domain whose users
    /// were set in clear text ([`configure_plain`](Self::configure_plain)), or that had none,
    /// then holds exactly these users. Refused on a domain a watch or a store owns, as
    /// [`add_curve_keys`](Self::add_curve_keys) is.
    ///
    /// ```no_run
    /// # async fn demo(auth: actix_zap::Authenticator) -> Result<(), Box<dyn std::error::Error>> {
    /// use actix_zap::policy::HashedPassword;
    /// let hash = HashedPassword::hash(b"correct horse")?; // argon2id: keep it off the actix thread
    /// auth.add_plain_users("global", [("alice", hash)]).await?;
    /// auth.remove_plain_users("global", ["alice"]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn add_plain_users<U: Into<String>>(
        &self,
        domain: &str,
        users: impl IntoIterator<Item = (U, HashedPassword)>,
    ) -> Result<usize, ConfigError> {
        self.send(AddPlainUsers::new(domain, users)).await
    }

    /// Removes PLAIN users from `domain` (its table clear-text or hashed), whoever owns it;
    /// answers what it did ([`Removed`](crate::policy::Removed)). Sends
    /// [`RemovePlainUsers`]. Fail-closed and kept as a revocation where needed, as
    /// [`remove_curve_keys`](Self::remove_curve_keys) is.
    pub async fn remove_plain_users<U: Into<String>>(
        &self,
        domain: &str,
        users: impl IntoIterator<Item = U>,
    ) -> Result<Removed, ConfigError> {
        self.send(RemovePlainUsers::new(domain, users)).await
    }

    /// Lets `provider` decide a domain's CURVE keys (pyzmq's `configure_curve_callback`): see
    /// [`Provider`](crate::provider::Provider).
    pub async fn configure_curve_callback(
        &self,
        domain: &str,
        provider: Provider,
    ) -> Result<(), ConfigError> {
        let domain = domain.to_owned();
        self.send(ConfigureCurveCallback {
            domain,
            provider,
            take_over: false,
        })
        .await
    }

    /// Sets a domain's [`GssapiPolicy`](crate::policy::GssapiPolicy). libzmq 4.3.x lets GSSAPI
    /// peers in even when refused (see [`sessions`](crate::sessions) for a socket that does not).
    pub async fn configure_gssapi(
        &self,
        domain: &str,
        policy: GssapiPolicy,
    ) -> Result<(), ConfigError> {
        let domain = domain.to_owned();
        self.send(ConfigureGssapi { domain, policy }).await
    }

    /// Removes one mechanism's ([`MechanismKind`](crate::policy::MechanismKind)) configuration
    /// from a domain; returns whether there was one.
    pub async fn unconfigure(
        &self,
        domain: &str,
        mechanism: MechanismKind,
    ) -> Result<bool, ConfigError> {
        let domain = domain.to_owned();
        self.send(Unconfigure {
            domain,
            mechanism,
            take_over: false,
        })
        .await
    }

    /// Replaces pyzmq's `curve_user_id`: the `User-Id` of admitted CURVE clients, from their
    /// [`CurvePublicKey`](crate::keys::CurvePublicKey). The mapping runs on the provider pool
    /// under the provider deadline.
    pub async fn set_curve_user_id<F>(&self, mapper: F) -> Result<(), ConfigError>
    where
        F: Fn(&CurvePublicKey) -> String + Send + Sync + 'static,
    {
        self.send(SetCurveUserId::infallible(mapper)).await
    }

    /// Restores the default `User-Id` of CURVE clients: the key's Z85 text.
    pub async fn reset_curve_user_id(&self) -> Result<(), ConfigError> {
        self.send(SetCurveUserId(None)).await
    }

    /// Starts a credential store source (feature `postgres`), a
    /// [`PostgresSource`](crate::postgres::PostgresSource): it becomes the owner of its
    /// domains (refused, with [`PolicyError::OwnedBy`](crate::policy::PolicyError::OwnedBy),
    /// for a domain a watch or another store owns), each refusing everyone until the source
    /// has proved itself up to date, and follows the store on this authenticator's actix
    /// runtime. Works from any thread (with a [`ThreadAuthenticator`](crate::ThreadAuthenticator)
    /// too). Answers once the domains are registered, with a
    /// [`SourceHandle`](crate::postgres::SourceHandle): its
    /// [`synced`](crate::postgres::SourceHandle::synced) says when the snapshot is in force.
    ///
    /// Before registering, it connects once (on the authenticator's runtime, within twice the
    /// source's heartbeat, at least 1 s) and refuses, with [`ConfigError::Store`], a store
    /// that cannot be followed as it is: missing (no store in that schema:
    /// [`StoreError::Missing`](crate::postgres::StoreError::Missing)), older than this crate
    /// follows ([`Unmigrated`](crate::postgres::StoreError::Unmigrated): run `zapctl db
    /// migrate`), newer ([`NewerSchema`](crate::postgres::StoreError::NewerSchema): upgrade
    /// this server), or on a hot standby ([`HotStandby`](crate::postgres::StoreError::HotStandby)).
    /// A database it cannot reach (or log in to, or whose certificate does not verify) is an
    /// outage, not a configuration error: `serve` answers `Ok`, logs a warning, and the
    /// source retries, its domains refusing everyone until it has read the store; its
    /// [`Stats::sources`](crate::messages::Stats::sources) entry shows the last error.
    ///
    /// ```no_run
    /// # async fn demo(auth: actix_zap::Authenticator) -> Result<(), Box<dyn std::error::Error>> {
    /// use actix_zap::postgres::PostgresSource;
    /// let source = PostgresSource::new("host=db user=zap dbname=zap", ["fleet"])?;
    /// let handle = auth.serve(source).await?;
    /// # drop(handle); Ok(()) }
    /// ```
    #[cfg(feature = "postgres")]
    pub async fn serve(
        &self,
        source: crate::sources::postgres::PostgresSource,
    ) -> Result<crate::sources::postgres::SourceHandle, ConfigError> {
        let policy = self.policy();
        let link = crate::messages::store::StoreLink {
            apply: policy.clone().recipient(),
            report: policy.clone().recipient(),
            unserve: policy.clone().recipient(),
            state: policy.clone().recipient(),
        };
        // One look first: a store that cannot be followed is refused here; an outage is not.
        policy.send(source.check_source()).await??;
        let (serve, handle) = source.into_serve(link);
        policy.send(serve).await??;
        Ok(handle)
    }

    /// Follows a certificate directory or password file from now on (see [`Watch`]):
    /// deletions apply at once, other changes per file once settled, atomically; a source
    /// that cannot be read (or whose read hangs past its deadline) leaves its domain refusing
    /// that mechanism. Answers with the first load ([`Reloaded`]).
    ///
    /// ```no_run
    /// # async fn demo(auth: actix_zap::Authenticator) -> Result<(), actix_zap::ConfigError> {
    /// use actix_zap::messages::Watch;
    /// auth.watch(Watch::curve("*", "public_keys")).await?;
    /// auth.watch(Watch::plain("global", "passwords.txt").on_reload(|r| println!("{r:?}"))).await?;
    /// # Ok(()) }
    /// ```
    pub async fn watch(&self, watch: Watch) -> Result<Reloaded, ConfigError> {
        self.send(watch).await
    }

    /// Stops following a domain's source for one
    /// [`MechanismKind`](crate::policy::MechanismKind); returns whether there was a watch.
    pub async fn unwatch(
        &self,
        domain: &str,
        mechanism: MechanismKind,
    ) -> Result<bool, ConfigError> {
        let domain = domain.to_owned();
        self.send(Unwatch { domain, mechanism }).await
    }

    /// The latest reload of every watch ([`Reloaded`]).
    pub async fn watches(&self) -> Result<Vec<Reloaded>, Unavailable> {
        self.ask(Watches).await
    }

    /// The policy in force, passwords redacted (pyzmq's `allow_any`, `certs`, `passwords`,
    /// `credentials_providers`, in one consistent picture): a
    /// [`PolicySnapshot`](crate::policy::PolicySnapshot).
    pub async fn inspect(&self) -> Result<PolicySnapshot, Unavailable> {
        self.ask(Inspect).await
    }

    /// Counters per mechanism and status, and the requests in flight now ([`Stats`]). Asks the
    /// [`ZapSocket`], which adds its own counts to the policy actor's.
    pub async fn stats(&self) -> Result<Stats, Unavailable> {
        self.zap
            .send(GetStats)
            .await
            .map_err(|_| Unavailable::Stopped)
    }

    /// Sends every decision to `subscriber` until [`unsubscribe`](Self::unsubscribe): an
    /// actor's `Recipient<`[`DecisionEvent`]`>` (pass it as it is) or a [`Subscriber`]; answers
    /// the [`SubscriptionId`].
    pub async fn subscribe(
        &self,
        subscriber: impl Into<Subscriber>,
    ) -> Result<SubscriptionId, Unavailable> {
        self.ask(Subscribe(subscriber.into())).await
    }

    /// Calls `callback` for every decision ([`DecisionEvent`]), on the authenticator's thread
    /// (keep it quick); answers the [`SubscriptionId`] to [`unsubscribe`](Self::unsubscribe)
    /// with.
    pub async fn on_decision<F>(&self, callback: F) -> Result<SubscriptionId, Unavailable>
    where
        F: Fn(&DecisionEvent) + Send + Sync + 'static,
    {
        self.subscribe(Subscriber::Callback(std::sync::Arc::new(callback)))
            .await
    }

    /// Ends a subscription ([`SubscriptionId`]); returns whether it existed.
    pub async fn unsubscribe(&self, id: SubscriptionId) -> Result<bool, Unavailable> {
        self.ask(Unsubscribe(id)).await
    }

    /// Answers what is in flight, unbinds the endpoint, stops both actors, and returns when
    /// all of that is done. A new authenticator can then start on the same context. Calling
    /// it again, from any clone, returns at once.
    ///
    /// Server sockets built with [`ServerSocket`](crate::ServerSocket) refuse every
    /// handshake from then on; others fall back to libzmq's behaviour without a handler
    /// (CURVE and NULL admit anyone, PLAIN refuses).
    pub async fn stop(&self) {
        // An error means it was stopped already.
        let _ = self.zap.send(Stop).await;
    }

    /// Stops the policy actor alone, leaving the socket actor serving: for tests of what
    /// clients get when the policy is gone (a `500`). Not a stable API (feature `test-hooks`);
    /// never needed.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub async fn stop_policy_actor_for_tests(&self) {
        let _ = self.policy.send(Stop).await;
    }

    /// Whether the authenticator is still running.
    pub fn is_running(&self) -> bool {
        self.zap.connected()
    }
}
