//! The decision procedure: a request (or raw frames) and the time in, a reply — or work to do
//! and hand back — out.
//!
//! Which refusal applies is decided here; its status code and text come from [`Refusal`].
//! Time is an input ([`Now`]): a store's deadline and a key's expiry are compared with the
//! `now` the caller passes, when the request is decided and again when the work it asked for
//! comes back ([`Policy::resume`]).

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use futures::future::{ready, LocalBoxFuture};
use futures::FutureExt as _;

use super::{for_domain, CurvePolicy, GssapiPolicy, MechanismKind, PlainTable, Policy};
use super::{AddressVerdict, Now, PasswordCheck, Refusal, Trust, UserIdMapper, Verification};
use crate::keys::CurvePublicKey;
use crate::provider::{call_guarded, poll_guarded, Panicked};
use crate::provider::{Admission, CurveVerdict, Provider, ProviderError};
use crate::zap::{Mechanism, Metadata, Reply, Request, RequestError};

/// The user id of admitted NULL clients and of clients admitted by address alone (pyzmq's).
pub const ANONYMOUS: &str = "anonymous";

/// What to do with one request.
#[derive(Debug)]
pub enum Decision {
    /// Send this reply now.
    Reply(Reply),
    /// Ask the provider, then hand its answer to [`Policy::resume`] (or, with no policy
    /// change to consider, [`Consultation::finish`]).
    Consult(Consultation),
    /// Check a hashed PLAIN password off the event loop, then hand the outcome to
    /// [`Policy::resume`] (or [`Verification::finish`]).
    Verify(Verification),
}

/// The answer of work a [`Decision`] asked for, handed back to [`Policy::resume`].
#[derive(Debug)]
pub enum Answer {
    /// What user code answered a consultation.
    Consulted(Consultation, Result<CurveVerdict, ProviderFailure>),
    /// What argon2 answered a verification (`Ok(true)`: the password matched).
    Verified(Verification, Result<bool, ProviderFailure>),
}

/// A CURVE request that needs user code before it can be answered: a provider's verdict,
/// a custom user-id mapping, or both (provider first).
///
/// [`ask`](Self::ask) runs that user code — the one place where the provider → mapping
/// sequence exists — and [`finish`](Self::finish) turns its answer into the reply, checking
/// again at its `now` that the domain's store is still trusted and the key not expired. The
/// answer belongs to the policy [`epoch`](Self::epoch) the request was decided under: when the
/// policy has changed since ([`Policy::epoch`]), the answer must not be sent as it is; hand it
/// to [`Policy::resume`], which decides the request again (the actors do, always).
pub struct Consultation {
    /// The request's ZAP domain, as the server socket set it.
    pub domain: String,
    /// The client's key.
    pub public_key: CurvePublicKey,
    /// The provider registered for the domain (or for `'*'`); `None` when the key is
    /// already admitted and only the user-id mapping remains.
    pub provider: Option<Provider>,
    /// The custom user-id mapping, if one is configured.
    pub user_id_mapper: Option<UserIdMapper>,
    metadata: Metadata,
    request_id: Vec<u8>,
    epoch: u64,
    /// Until when the domain's setting may decide, as it was when the request was decided.
    trust: Trust,
    /// The key's expiry, from the key set that admitted it.
    expires: Option<SystemTime>,
}

impl std::fmt::Debug for Consultation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consultation")
            .field("domain", &self.domain)
            .field("public_key", &self.public_key)
            .field("provider", &self.provider)
            .field("custom_user_id", &self.user_id_mapper.is_some())
            .field("epoch", &self.epoch)
            .field("trust", &self.trust)
            .field("expires", &self.expires)
            .finish()
    }
}

/// Why user code gave no answer. Each becomes a `500` (or `300` when overloaded).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderFailure {
    /// The provider or mapping returned an error.
    #[error("failed: {0}")]
    Error(ProviderError),
    /// The provider or mapping panicked; the panic was caught.
    #[error("panicked")]
    Panicked,
    /// No answer before the deadline.
    #[error("did not answer in time")]
    TimedOut,
    /// Too many calls are already waiting; the client should retry.
    #[error("too many calls in flight")]
    Overloaded,
}

impl ProviderFailure {
    /// Folds a guarded call of user code into one result.
    pub(crate) fn from_guarded<T>(
        outcome: Result<Result<T, ProviderError>, Panicked>,
    ) -> Result<T, ProviderFailure> {
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(ProviderFailure::Error(error)),
            Err(Panicked) => Err(ProviderFailure::Panicked),
        }
    }
}

/// A blocking call of user code (a synchronous provider or a user-id mapping).
pub type BlockingCall<T> = Box<dyn FnOnce() -> Result<T, ProviderError> + Send>;

/// Where blocking user code runs: [`Inline`] for sans-IO users, the authenticator's bounded
/// pool for the actors. Implementations catch panics and report them as
/// [`ProviderFailure::Panicked`].
pub trait BlockingRunner {
    /// Runs `call` and resolves with its answer.
    fn run<T: Send + 'static>(
        &self,
        call: BlockingCall<T>,
    ) -> LocalBoxFuture<'static, Result<T, ProviderFailure>>;
}

/// Runs blocking user code on the calling thread, at once (tests, fuzzers, tools).
#[derive(Debug, Clone, Copy, Default)]
pub struct Inline;

impl BlockingRunner for Inline {
    fn run<T: Send + 'static>(
        &self,
        call: BlockingCall<T>,
    ) -> LocalBoxFuture<'static, Result<T, ProviderFailure>> {
        Box::pin(ready(ProviderFailure::from_guarded(call_guarded(call))))
    }
}

impl Consultation {
    /// The policy epoch this request was decided under.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Whether `other` would ask the same user code the same question: same domain, key and
    /// metadata, the very same provider and user-id mapping. After a policy change, an answer
    /// to such a consultation is what asking again would give, so it may be used as is.
    pub fn asks_the_same(&self, other: &Consultation) -> bool {
        let same_provider = match (&self.provider, &other.provider) {
            (None, None) => true,
            (Some(Provider::Blocking(a)), Some(Provider::Blocking(b))) => Arc::ptr_eq(a, b),
            (Some(Provider::Async(a)), Some(Provider::Async(b))) => Arc::ptr_eq(a, b),
            _ => false,
        };
        let same_mapper = match (&self.user_id_mapper, &other.user_id_mapper) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        same_provider
            && same_mapper
            && self.domain == other.domain
            && self.public_key == other.public_key
            && self.metadata == other.metadata
    }

    /// Runs the provider (blocking ones through `runner`, asynchronous ones polled by the
    /// returned future), then — for an admission without a user id — the custom mapping,
    /// with every panic caught. No deadline: the caller puts one around the future.
    pub fn ask<R: BlockingRunner + 'static>(
        &self,
        runner: R,
    ) -> LocalBoxFuture<'static, Result<CurveVerdict, ProviderFailure>> {
        let (domain, key) = (self.domain.clone(), self.public_key);
        let verdict = match &self.provider {
            None => Box::pin(ready(Ok(CurveVerdict::Admit(Admission {
                user_id: None,
                metadata: self.metadata.clone(),
            })))),
            Some(Provider::Blocking(provider)) => {
                let provider = Arc::clone(provider);
                runner.run(Box::new(move || provider.check_curve(&domain, &key)))
            }
            Some(Provider::Async(provider)) => {
                let provider = Arc::clone(provider);
                Box::pin(
                    poll_guarded(move || provider.check_curve(&domain, &key))
                        .map(ProviderFailure::from_guarded),
                )
            }
        };
        let mapper = self.user_id_mapper.clone();
        Box::pin(async move {
            let mut verdict = verdict.await;
            if let (Ok(CurveVerdict::Admit(admission)), Some(map)) = (&mut verdict, mapper) {
                if admission.user_id.is_none() {
                    match runner.run(Box::new(move || map(&key))).await {
                        Ok(user_id) => admission.user_id = Some(user_id),
                        Err(failure) => verdict = Err(failure),
                    }
                }
            }
            verdict
        })
    }

    /// Turns the final answer into the reply at `now`: a domain whose store is no longer
    /// trusted, or a key that expired while user code ran, is refused whatever the answer.
    /// An admission without a user id gets the key's Z85 text: [`ask`](Self::ask) has
    /// already run the custom mapping, if any.
    pub fn finish(self, outcome: Result<CurveVerdict, ProviderFailure>, now: &Now) -> Reply {
        let id = &self.request_id;
        if !self.trust.holds_at(now.instant()) {
            return Refusal::StaleStore.reply(id);
        }
        if now.reached(self.expires) {
            return Refusal::UnknownKey.reply(id);
        }
        match outcome {
            Ok(CurveVerdict::Admit(Admission { user_id, metadata })) => {
                let user_id = user_id.unwrap_or_else(|| self.public_key.to_z85());
                Reply::ok(id, user_id, metadata)
            }
            Ok(CurveVerdict::Refuse) => Refusal::UnknownKey.reply(id),
            Ok(CurveVerdict::TryLater) => Refusal::TryLater.reply(id),
            Err(failure) => Refusal::from(&failure).reply(id),
        }
    }

    /// Asks on this thread ([`Inline`]; an async provider with
    /// `futures::executor::block_on`) and finishes at the time it answered, with panics
    /// caught but no deadline. For tests, fuzzers and tools; the actors never block like
    /// this.
    pub fn resolve_blocking(self) -> Reply {
        let verdict = futures::executor::block_on(self.ask(Inline));
        self.finish(verdict, &Now::read())
    }
}

impl Policy {
    /// pyzmq's `handle_zap_message`: raw frames (after the routing envelope) in, decision out,
    /// at the time it is called ([`handle_at`](Self::handle_at) with [`Now::read`]).
    ///
    /// A malformed request gets a `400` echoing its request id. Fewer than 2 frames hold no
    /// request id: they get a `400 Not enough frames` with an empty one, which libzmq could
    /// not match to a handshake — the ZAP socket never passes such frames on, it drops them.
    pub fn handle<F: AsRef<[u8]>>(&self, frames: &[F]) -> Decision {
        self.handle_at(frames, &Now::read())
    }

    /// [`handle`](Self::handle) at `now`: every deadline and expiry is compared with it.
    pub fn handle_at<F: AsRef<[u8]>>(&self, frames: &[F], now: &Now) -> Decision {
        match Request::parse(frames) {
            Ok(request) => self.decide(&request, now),
            Err(error) => Decision::Reply(Self::refuse_malformed(frames, &error)),
        }
    }

    /// The work a decision asked for came back at `now`: the decision to act on. The
    /// request is decided again from its `frames` under the policy in force at `now` (so a
    /// change acknowledged meanwhile decides it, and so do a store's deadline and a key's
    /// expiry); when that decision asks the same question of the same user code (or checks
    /// the same password against the same hash), the answer in hand stands and is finished:
    /// a failed verification whose domain, user and PHC string are unchanged is not run
    /// again after an unrelated change, and a user gone meanwhile is refused without one.
    /// Otherwise, past the request's `deadline` nothing is asked again (`500`); before it, the
    /// fresh decision is returned, to be carried out like the first.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use actix_zap::policy::{Answer, CurvePolicy, Decision, Now, Policy};
    /// use actix_zap::provider::{CurveVerdict, Provider};
    /// use actix_zap::zap::StatusCode;
    /// let mut policy = Policy::default();
    /// let provider = Provider::from_fn(|_: &str, _: &actix_zap::keys::CurvePublicKey| Ok(true.into()));
    /// policy.configure_curve("db", CurvePolicy::Provider(provider)).unwrap();
    /// let key = [7u8; 32];
    /// let frames: [&[u8]; 7] = [b"1.0", b"1", b"db", b"127.0.0.1", b"", b"CURVE", &key];
    /// let now = Now::read();
    /// let Decision::Consult(asked) = policy.handle_at(&frames, &now) else { unreachable!() };
    /// // The provider admitted the key, but the domain was reconfigured while it ran.
    /// policy.configure_curve("db", CurvePolicy::Keys(Default::default())).unwrap();
    /// let answer = Answer::Consulted(asked, Ok(CurveVerdict::admit()));
    /// let deadline = now.instant() + Duration::from_secs(5);
    /// let Decision::Reply(reply) = policy.resume(answer, &frames, &now, deadline) else { unreachable!() };
    /// assert_eq!(reply.status, StatusCode::Denied);
    /// ```
    pub fn resume<F: AsRef<[u8]>>(
        &self,
        answer: Answer,
        frames: &[F],
        now: &Now,
        deadline: Instant,
    ) -> Decision {
        let fresh = self.handle_at(frames, now);
        let past_deadline = now.instant() >= deadline;
        match (fresh, answer) {
            (Decision::Consult(fresh), Answer::Consulted(asked, verdict))
                if fresh.asks_the_same(&asked) =>
            {
                Decision::Reply(fresh.finish(verdict, now))
            }
            (Decision::Verify(fresh), Answer::Verified(asked, outcome))
                if fresh.asks_the_same(&asked) =>
            {
                Decision::Reply(fresh.finish(outcome, now))
            }
            // Now an unknown username (removed meanwhile): refused, argon2 has run once.
            (Decision::Verify(fresh), Answer::Verified(..)) if !fresh.knows_user() => {
                Decision::Reply(fresh.finish(Ok(false), now))
            }
            (Decision::Consult(fresh), _) if past_deadline => {
                Decision::Reply(fresh.finish(Err(ProviderFailure::TimedOut), now))
            }
            (Decision::Verify(fresh), _) if past_deadline => {
                Decision::Reply(fresh.finish(Err(ProviderFailure::TimedOut), now))
            }
            (fresh, _) => fresh,
        }
    }

    /// The reply to frames that are not a request ([`Request::parse`] failed).
    pub fn refuse_malformed<F: AsRef<[u8]>>(frames: &[F], error: &RequestError) -> Reply {
        let request_id = frames.get(1).map_or(&[][..], AsRef::as_ref);
        Refusal::from(error).reply(request_id)
    }

    /// Why the global rules, then `domain`'s rules, refuse the peer's `address`, if they do:
    /// what a decision answers first, and what a session is judged by again.
    pub(super) fn address_refusal(&self, domain: &str, address: &str) -> Option<Refusal> {
        if let AddressVerdict::Refused(refusal) = self.addresses.check(address) {
            return Some(refusal);
        }
        match self.domain_addresses.get(domain)?.check(address) {
            AddressVerdict::Refused(refusal) => Some(refusal),
            _ => None,
        }
    }

    /// Decides on a parsed request at `now`.
    pub fn decide(&self, request: &Request<'_>, now: &Now) -> Decision {
        let id = request.request_id;
        let domain: &str = &request.domain;
        if let Some(refusal) = self.address_refusal(domain, &request.address) {
            return Decision::Reply(refusal.reply(id));
        }
        let reply = match &request.mechanism {
            Mechanism::Null => Reply::ok(id, ANONYMOUS, Metadata::empty()),
            Mechanism::Plain { username, password } => {
                return self.decide_plain(id, domain, username, password, now)
            }
            Mechanism::Curve { public_key } => {
                return self.decide_curve(id, domain, public_key, now)
            }
            Mechanism::Gssapi { principal } => self.decide_gssapi(id, domain, principal, now),
            Mechanism::Unknown { .. } => Refusal::UnsupportedMechanism.reply(id),
        };
        Decision::Reply(reply)
    }

    /// Until when a request of `domain` may be decided by the setting of `setting_domain`,
    /// if it may be decided at `now` at all.
    fn trusted(
        &self,
        mechanism: MechanismKind,
        domain: &str,
        setting_domain: &str,
        now: &Now,
    ) -> Result<Trust, Refusal> {
        let trust = self.control.trust(mechanism, domain, setting_domain);
        // No clock is read for a setting without a deadline (the common case).
        if matches!(trust, Trust::Unlimited) || trust.holds_at(now.instant()) {
            Ok(trust)
        } else {
            Err(Refusal::StaleStore)
        }
    }

    fn decide_plain(
        &self,
        id: &[u8],
        domain: &str,
        username: &[u8],
        password: &[u8],
        now: &Now,
    ) -> Decision {
        let refuse = |refusal: Refusal| Decision::Reply(refusal.reply(id));
        if self.plain.is_empty() {
            return refuse(Refusal::NoPasswordsDefined);
        }
        let Some((table_domain, table)) = for_domain(&self.plain, domain) else {
            return refuse(Refusal::InvalidDomain);
        };
        // Never admitted, whatever a table holds (an entry with an empty password included).
        if password.is_empty() {
            return refuse(Refusal::EmptyPassword);
        }
        let trust = match self.trusted(MechanismKind::Plain, domain, table_domain, now) {
            Ok(trust) => trust,
            Err(refusal) => return refuse(refusal),
        };
        if self.revoked(MechanismKind::Plain, domain, table_domain, username) {
            return refuse(Refusal::InvalidUsername);
        }
        let table = match table {
            PlainTable::Clear(table) => table,
            PlainTable::Hashed(table) => {
                let user = (table_domain, username, password);
                return self.decide_hashed_plain(id, table, user, trust);
            }
        };
        match table.check(username, password) {
            PasswordCheck::Valid => Decision::Reply(Reply::ok(
                id,
                String::from_utf8_lossy(username),
                Metadata::empty(),
            )),
            PasswordCheck::UnknownUser => refuse(Refusal::InvalidUsername),
            PasswordCheck::WrongPassword => refuse(Refusal::InvalidPassword),
        }
    }

    fn decide_curve(&self, id: &[u8], domain: &str, key: &CurvePublicKey, now: &Now) -> Decision {
        let refuse = |refusal: Refusal| Decision::Reply(refusal.reply(id));
        let Some((setting_domain, setting)) = for_domain(&self.curve, domain) else {
            return refuse(Refusal::UnknownDomain);
        };
        let trust = match self.trusted(MechanismKind::Curve, domain, setting_domain, now) {
            Ok(trust) => trust,
            Err(refusal) => return refuse(refusal),
        };
        if self.revoked(MechanismKind::Curve, domain, setting_domain, key.as_bytes()) {
            return refuse(Refusal::UnknownKey);
        }
        let (provider, metadata, user_id, expires) = match setting {
            CurvePolicy::AllowAny => (None, Metadata::empty(), None, None),
            // The wall clock is read only for a key that carries an expiry.
            CurvePolicy::Keys(store) => match store.lookup(key) {
                Some((metadata, extra)) => {
                    let expires = extra.and_then(|extra| extra.expires());
                    if now.reached(expires) {
                        return refuse(Refusal::UnknownKey);
                    }
                    let user_id = extra.and_then(|extra| extra.user_id());
                    (None, metadata.clone(), user_id, expires)
                }
                None => return refuse(Refusal::UnknownKey),
            },
            CurvePolicy::Provider(provider) => {
                (Some(provider.clone()), Metadata::empty(), None, None)
            }
        };
        if provider.is_none() && (self.curve_user_id.is_none() || user_id.is_some()) {
            // The common case: admitted, default (or stored) user id, no user code to run.
            let user_id = user_id.map_or_else(|| key.to_z85(), str::to_owned);
            return Decision::Reply(Reply::ok(id, user_id, metadata));
        }
        Decision::Consult(Consultation {
            domain: domain.to_owned(),
            public_key: *key,
            provider,
            user_id_mapper: self.curve_user_id.clone(),
            metadata,
            request_id: id.to_vec(),
            epoch: self.epoch,
            trust,
            expires,
        })
    }

    fn decide_gssapi(&self, id: &[u8], domain: &str, principal: &[u8], now: &Now) -> Reply {
        let Ok(principal) = std::str::from_utf8(principal) else {
            return Refusal::InvalidCredentials.reply(id);
        };
        let Some((setting_domain, setting)) = for_domain(&self.gssapi, domain) else {
            return Refusal::UnknownDomain.reply(id);
        };
        if let Err(refusal) = self.trusted(MechanismKind::Gssapi, domain, setting_domain, now) {
            return refusal.reply(id);
        }
        match setting {
            GssapiPolicy::AnyPrincipal => Reply::ok(id, principal, Metadata::empty()),
            GssapiPolicy::Principals(set) if set.contains(principal) => {
                Reply::ok(id, principal, Metadata::empty())
            }
            GssapiPolicy::Principals(_) => Refusal::UnknownPrincipal.reply(id),
        }
    }
}
