//! The decision procedure: a request (or raw frames) in, a reply — or a provider to ask — out.
//!
//! Every status code and status text the authenticator sends is chosen in this file.

use std::borrow::Cow;

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::{for_domain, CurvePolicy, GssapiPolicy, Policy, UserIdMapper};
use super::{AddressVerdict, PasswordCheck};
use crate::keys::CurvePublicKey;
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
}

/// A CURVE request that needs user code before it can be answered: a provider's verdict,
/// a custom user-id mapping, or both (provider first).
///
/// The actors run these off the decision path, concurrently and under a deadline;
/// [`resolve_blocking`](Self::resolve_blocking) runs them inline for sans-IO users.
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
}

impl std::fmt::Debug for Consultation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consultation")
            .field("domain", &self.domain)
            .field("public_key", &self.public_key)
            .field("provider", &self.provider)
            .field("custom_user_id", &self.user_id_mapper.is_some())
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

impl Consultation {
    /// The verdict to start from when no provider is involved: admitted, user id to map.
    pub fn admitted_without_provider(&self) -> CurveVerdict {
        CurveVerdict::Admit(Admission {
            user_id: None,
            metadata: self.metadata.clone(),
        })
    }

    /// Turns the final answer into the reply. An admission without a user id gets the key's
    /// Z85 text: run the custom mapping (if any) before calling this.
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

    /// Runs the provider and the mapping on this thread (an async provider with
    /// `futures::executor::block_on`), with panics caught but no deadline. For tests,
    /// fuzzers and tools; the actors never block like this.
    pub fn resolve_blocking(self) -> Reply {
        let verdict = match &self.provider {
            None => Ok(self.admitted_without_provider()),
            Some(provider) => caught(|| match provider {
                Provider::Blocking(p) => p.check_curve(&self.domain, &self.public_key),
                Provider::Async(p) => {
                    futures::executor::block_on(p.check_curve(&self.domain, &self.public_key))
                }
            }),
        };
        let verdict = match (verdict, &self.user_id_mapper) {
            (Ok(CurveVerdict::Admit(admission)), Some(map)) if admission.user_id.is_none() => {
                caught(|| map(&self.public_key)).map(|user_id| {
                    CurveVerdict::Admit(Admission {
                        user_id: Some(user_id),
                        metadata: admission.metadata,
                    })
                })
            }
            (verdict, _) => verdict,
        };
        self.finish(verdict)
    }
}

fn caught<T>(call: impl FnOnce() -> Result<T, ProviderError>) -> Result<T, ProviderFailure> {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(ProviderFailure::Error(error)),
        Err(_) => Err(ProviderFailure::Panicked),
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
        let (provider, metadata) = match for_domain(&self.curve, domain) {
            None => return Decision::Reply(denied(id, "Unknown domain")),
            Some(CurvePolicy::AllowAny) => (None, Metadata::empty()),
            Some(CurvePolicy::Keys(store)) => match store.get(key) {
                Some(metadata) => (None, metadata.clone()),
                None => return Decision::Reply(denied(id, "Unknown key")),
            },
            Some(CurvePolicy::Provider(provider)) => (Some(provider.clone()), Metadata::empty()),
        };
        if provider.is_none() && self.curve_user_id.is_none() {
            // The common case: admitted, default user id, no user code to run.
            return Decision::Reply(Reply::ok(id, key.to_z85(), metadata));
        }
        Decision::Consult(Consultation {
            domain: domain.to_owned(),
            public_key: *key,
            provider,
            user_id_mapper: self.curve_user_id.clone(),
            metadata,
            request_id: id.to_vec(),
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
