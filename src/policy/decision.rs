//! The decision procedure: a request (or raw frames) in, a reply — or a provider to ask — out.
//!
//! Every status code and status text the authenticator sends is chosen in this file.

use std::borrow::Cow;
use std::sync::Arc;

use futures::future::{ready, LocalBoxFuture};
use futures::FutureExt as _;

use super::{for_domain, CurvePolicy, GssapiPolicy, Policy, UserIdMapper};
use super::{AddressVerdict, PasswordCheck};
use crate::keys::CurvePublicKey;
use crate::provider::{call_guarded, poll_guarded, Panicked};
use crate::provider::{Admission, CurveVerdict, Provider, ProviderError};
use crate::zap::{Mechanism, Metadata, Reply, Request, RequestError, StatusCode};

/// The user id of admitted NULL clients and of clients admitted by address alone (pyzmq's).
pub const ANONYMOUS: &str = "anonymous";

/// What to do with one request.
#[derive(Debug)]
pub enum Decision {
    /// Send this reply now.
    Reply(Reply),
    /// Send nothing: the message had no request id to echo (logged at warn by the caller).
    Drop(RequestError),
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
            Ok(CurveVerdict::Refuse) => denied(id, "Unknown key"),
            Ok(CurveVerdict::TryLater) => {
                Reply::refusal(id, StatusCode::TryLater, "Try again later")
            }
            Err(failure) => {
                let (status, text) = match failure {
                    ProviderFailure::Overloaded => (StatusCode::TryLater, "Provider overloaded"),
                    ProviderFailure::Error(_) => (StatusCode::InternalError, "Provider failed"),
                    ProviderFailure::Panicked => (StatusCode::InternalError, "Provider panicked"),
                    ProviderFailure::TimedOut => (StatusCode::InternalError, "Provider timed out"),
                };
                Reply::refusal(id, status, text)
            }
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

fn denied(id: &[u8], text: &'static str) -> Reply {
    Reply::refusal(id, StatusCode::Denied, Cow::Borrowed(text))
}

impl Policy {
    /// pyzmq's `handle_zap_message`: raw frames (after the routing envelope) in, decision out.
    ///
    /// Fewer than 2 frames cannot be answered ([`Decision::Drop`]); any other malformed
    /// request gets a `400` echoing its request id.
    pub fn handle<F: AsRef<[u8]>>(&self, frames: &[F]) -> Decision {
        match Request::parse(frames) {
            Ok(request) => self.decide(&request),
            Err(error @ RequestError::Unanswerable(_)) => Decision::Drop(error),
            Err(error) => Decision::Reply(denied(frames[1].as_ref(), error.status_text())),
        }
    }

    /// Decides on a parsed request.
    pub fn decide(&self, request: &Request<'_>) -> Decision {
        let id = request.request_id;
        let domain: &str = &request.domain;
        if let AddressVerdict::Refused(text) = self.addresses.check(&request.address) {
            return Decision::Reply(denied(id, text));
        }
        if let Some(rules) = self.domain_addresses.get(domain) {
            if let AddressVerdict::Refused(text) = rules.check(&request.address) {
                return Decision::Reply(denied(id, text));
            }
        }
        let reply = match &request.mechanism {
            Mechanism::Null => Reply::ok(id, ANONYMOUS, Metadata::empty()),
            Mechanism::Plain { username, password } => {
                if let Some(hashed) = self.decide_hashed_plain(id, domain, username, password) {
                    return hashed;
                }
                self.decide_plain(id, domain, username, password)
            }
            Mechanism::Curve { public_key } => return self.decide_curve(id, domain, public_key),
            Mechanism::Gssapi { principal } => self.decide_gssapi(id, domain, principal),
            Mechanism::Unknown { .. } => denied(id, "Unsupported mechanism"),
        };
        Decision::Reply(reply)
    }

    fn decide_plain(&self, id: &[u8], domain: &str, username: &[u8], password: &[u8]) -> Reply {
        if self.plain.is_empty() {
            return denied(id, "No passwords defined");
        }
        let Some(table) = for_domain(&self.plain, domain) else {
            return denied(id, "Invalid domain");
        };
        match table.check(username, password) {
            PasswordCheck::Valid => {
                Reply::ok(id, String::from_utf8_lossy(username), Metadata::empty())
            }
            PasswordCheck::UnknownUser => denied(id, "Invalid username"),
            PasswordCheck::WrongPassword => denied(id, "Invalid password"),
        }
    }

    fn decide_curve(&self, id: &[u8], domain: &str, key: &CurvePublicKey) -> Decision {
        let mut user_id = None;
        let (provider, metadata) = match for_domain(&self.curve, domain) {
            None => return Decision::Reply(denied(id, "Unknown domain")),
            Some(CurvePolicy::AllowAny) => (None, Metadata::empty()),
            Some(CurvePolicy::Keys(store)) => match store.get(key) {
                Some(metadata) => {
                    user_id = store.user_id(key);
                    (None, metadata.clone())
                }
                None => return Decision::Reply(denied(id, "Unknown key")),
            },
            Some(CurvePolicy::Provider(provider)) => (Some(provider.clone()), Metadata::empty()),
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
            return denied(id, "Invalid credentials");
        };
        match for_domain(&self.gssapi, domain) {
            None => denied(id, "Unknown domain"),
            Some(GssapiPolicy::AnyPrincipal) => Reply::ok(id, principal, Metadata::empty()),
            Some(GssapiPolicy::Principals(set)) if set.contains(principal) => {
                Reply::ok(id, principal, Metadata::empty())
            }
            Some(GssapiPolicy::Principals(_)) => denied(id, "Unknown principal"),
        }
    }
}
