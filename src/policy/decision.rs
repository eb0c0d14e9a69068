//! The decision procedure: a request (or raw frames) in, a reply — or a provider to ask — out.
//!
//! Which refusal applies is decided here; its status code and text come from [`Refusal`].

use std::sync::Arc;

use futures::future::{ready, LocalBoxFuture};
use futures::FutureExt as _;

use super::UserIdMapper;
use super::{for_domain, CurvePolicy, GssapiPolicy, MechanismKind, PlainTable, Policy};
use super::{AddressVerdict, PasswordCheck, Refusal};
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
    /// Ask the provider, then call [`Consultation::finish`] with its answer.
    Consult(Consultation),
    /// Check a hashed PLAIN password off the event loop, then call
    /// [`Verification::finish`](super::Verification::finish).
    Verify(super::Verification),
}

/// A CURVE request that needs user code before it can be answered: a provider's verdict,
/// a custom user-id mapping, or both (provider first).
///
/// [`ask`](Self::ask) runs that user code — the one place where the provider → mapping
/// sequence exists — and [`finish`](Self::finish) turns its answer into the reply. The answer
/// belongs to the policy [`epoch`](Self::epoch) the request was decided under: when the
/// policy has changed since ([`Policy::epoch`]), the answer must not be sent; decide the
/// request again instead (the actors do).
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
}

impl std::fmt::Debug for Consultation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consultation")
            .field("domain", &self.domain)
            .field("public_key", &self.public_key)
            .field("provider", &self.provider)
            .field("custom_user_id", &self.user_id_mapper.is_some())
            .field("epoch", &self.epoch)
            .finish()
    }
}

/// Why user code gave no answer. Each becomes a `500` (or `300` when overloaded).
#[derive(Debug, thiserror::Error)]
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

    /// Turns the final answer into the reply. An admission without a user id gets the key's
    /// Z85 text: [`ask`](Self::ask) has already run the custom mapping, if any.
    pub fn finish(self, outcome: Result<CurveVerdict, ProviderFailure>) -> Reply {
        let id = &self.request_id;
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
    /// `futures::executor::block_on`) and finishes, with panics caught but no deadline. For
    /// tests, fuzzers and tools; the actors never block like this.
    pub fn resolve_blocking(self) -> Reply {
        let verdict = futures::executor::block_on(self.ask(Inline));
        self.finish(verdict)
    }
}

impl Policy {
    /// pyzmq's `handle_zap_message`: raw frames (after the routing envelope) in, decision out.
    ///
    /// A malformed request gets a `400` echoing its request id. Fewer than 2 frames hold no
    /// request id: they get a `400 Not enough frames` with an empty one, which libzmq could
    /// not match to a handshake — the ZAP socket never passes such frames on, it drops them.
    pub fn handle<F: AsRef<[u8]>>(&self, frames: &[F]) -> Decision {
        match Request::parse(frames) {
            Ok(request) => self.decide(&request),
            Err(error) => Decision::Reply(Self::refuse_malformed(frames, &error)),
        }
    }

    /// The reply to frames that are not a request ([`Request::parse`] failed).
    pub fn refuse_malformed<F: AsRef<[u8]>>(frames: &[F], error: &RequestError) -> Reply {
        let request_id = frames.get(1).map_or(&[][..], AsRef::as_ref);
        Refusal::from(error).reply(request_id)
    }

    /// Decides on a parsed request.
    pub fn decide(&self, request: &Request<'_>) -> Decision {
        let id = request.request_id;
        let domain: &str = &request.domain;
        if let AddressVerdict::Refused(refusal) = self.addresses.check(&request.address) {
            return Decision::Reply(refusal.reply(id));
        }
        if let Some(rules) = self.domain_addresses.get(domain) {
            if let AddressVerdict::Refused(refusal) = rules.check(&request.address) {
                return Decision::Reply(refusal.reply(id));
            }
        }
        let reply = match &request.mechanism {
            Mechanism::Null => Reply::ok(id, ANONYMOUS, Metadata::empty()),
            Mechanism::Plain { username, password } => {
                return self.decide_plain(id, domain, username, password)
            }
            Mechanism::Curve { public_key } => return self.decide_curve(id, domain, public_key),
            Mechanism::Gssapi { principal } => self.decide_gssapi(id, domain, principal),
            Mechanism::Unknown { .. } => Refusal::UnsupportedMechanism.reply(id),
        };
        Decision::Reply(reply)
    }

    fn decide_plain(&self, id: &[u8], domain: &str, username: &[u8], password: &[u8]) -> Decision {
        let refuse = |refusal: Refusal| Decision::Reply(refusal.reply(id));
        if self.plain.is_empty() {
            return refuse(Refusal::NoPasswordsDefined);
        }
        let Some((table_domain, table)) = for_domain(&self.plain, domain) else {
            return refuse(Refusal::InvalidDomain);
        };
        if self.revoked(MechanismKind::Plain, domain, table_domain, username) {
            return refuse(Refusal::InvalidUsername);
        }
        let table = match table {
            PlainTable::Clear(table) => table,
            PlainTable::Hashed(table) => {
                return self.decide_hashed_plain(id, table_domain, table, username, password)
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

    fn decide_curve(&self, id: &[u8], domain: &str, key: &CurvePublicKey) -> Decision {
        let mut user_id = None;
        let Some((setting_domain, setting)) = for_domain(&self.curve, domain) else {
            return Decision::Reply(Refusal::UnknownDomain.reply(id));
        };
        if self.revoked(MechanismKind::Curve, domain, setting_domain, key.as_bytes()) {
            return Decision::Reply(Refusal::UnknownKey.reply(id));
        }
        let (provider, metadata) = match setting {
            CurvePolicy::AllowAny => (None, Metadata::empty()),
            CurvePolicy::Keys(store) => match store.get(key) {
                Some(metadata) => {
                    user_id = store.user_id(key);
                    (None, metadata.clone())
                }
                None => return Decision::Reply(Refusal::UnknownKey.reply(id)),
            },
            CurvePolicy::Provider(provider) => (Some(provider.clone()), Metadata::empty()),
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
        })
    }

    fn decide_gssapi(&self, id: &[u8], domain: &str, principal: &[u8]) -> Reply {
        let Ok(principal) = std::str::from_utf8(principal) else {
            return Refusal::InvalidCredentials.reply(id);
        };
        match for_domain(&self.gssapi, domain).map(|(_, setting)| setting) {
            None => Refusal::UnknownDomain.reply(id),
            Some(GssapiPolicy::AnyPrincipal) => Reply::ok(id, principal, Metadata::empty()),
            Some(GssapiPolicy::Principals(set)) if set.contains(principal) => {
                Reply::ok(id, principal, Metadata::empty())
            }
            Some(GssapiPolicy::Principals(_)) => Refusal::UnknownPrincipal.reply(id),
        }
    }
}
