//! The decision procedure: a request (or raw frames) in, a reply — or a provider to ask — out.
//!
//! Every status code and status text the authenticator sends is chosen in this file.

use std::borrow::Cow;

use super::{curve_user_id, for_domain, CurvePolicy, GssapiPolicy, Policy, UserIdMapper};
use super::{AddressVerdict, PasswordCheck};
use crate::keys::CurvePublicKey;
use crate::provider::{CurveVerdict, Provider, ProviderError};
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

/// A CURVE key that a provider must decide on before the reply can be made.
pub struct Consultation {
    /// The provider registered for the domain (or for `'*'`).
    pub provider: Provider,
    /// The request's ZAP domain, as the server socket set it.
    pub domain: String,
    /// The client's key.
    pub public_key: CurvePublicKey,
    request_id: Vec<u8>,
    user_id: Option<UserIdMapper>,
}

impl std::fmt::Debug for Consultation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consultation")
            .field("provider", &self.provider)
            .field("domain", &self.domain)
            .field("public_key", &self.public_key)
            .finish()
    }
}

/// Why a provider gave no verdict. Each becomes a `500` (or `300` when overloaded).
#[derive(Debug, thiserror::Error)]
pub enum ProviderFailure {
    /// The provider returned an error.
    #[error("provider failed: {0}")]
    Error(ProviderError),
    /// The provider panicked; the panic was caught.
    #[error("provider panicked")]
    Panicked,
    /// The provider did not answer before the deadline.
    #[error("provider did not answer in time")]
    TimedOut,
    /// Too many provider calls are already waiting; the client should retry.
    #[error("too many provider calls in flight")]
    Overloaded,
}

impl Consultation {
    /// Turns the provider's answer into the reply.
    pub fn finish(self, outcome: Result<CurveVerdict, ProviderFailure>) -> Reply {
        let id = &self.request_id;
        match outcome {
            Ok(CurveVerdict::Admit(admission)) => match admission.user_id {
                Some(user_id) => Reply::ok(id, user_id, admission.metadata),
                None => curve_admission(
                    id,
                    self.user_id.as_ref(),
                    &self.public_key,
                    admission.metadata,
                ),
            },
            Ok(CurveVerdict::Refuse) => Reply::refusal(id, StatusCode::Denied, "Unknown key"),
            Ok(CurveVerdict::TryLater) => {
                Reply::refusal(id, StatusCode::TryLater, "Try again later")
            }
            Err(ProviderFailure::Overloaded) => {
                Reply::refusal(id, StatusCode::TryLater, "Provider overloaded")
            }
            Err(ProviderFailure::Error(_)) => {
                Reply::refusal(id, StatusCode::InternalError, "Provider failed")
            }
            Err(ProviderFailure::Panicked) => {
                Reply::refusal(id, StatusCode::InternalError, "Provider panicked")
            }
            Err(ProviderFailure::TimedOut) => {
                Reply::refusal(id, StatusCode::InternalError, "Provider timed out")
            }
        }
    }
}

fn curve_admission(
    id: &[u8],
    mapper: Option<&UserIdMapper>,
    key: &CurvePublicKey,
    metadata: Metadata,
) -> Reply {
    match curve_user_id(mapper, key) {
        Some(user_id) => Reply::ok(id, user_id, metadata),
        None => Reply::refusal(id, StatusCode::InternalError, "User id mapping failed"),
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
        let by_address = self.addresses.check(&request.address);
        if let AddressVerdict::Refused(text) = by_address {
            return Decision::Reply(denied(id, text));
        }
        let domain: &str = &request.domain;
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
        let mapper = self.curve_user_id.as_ref();
        let reply = match for_domain(&self.curve, domain) {
            None => denied(id, "Unknown domain"),
            Some(CurvePolicy::AllowAny) => curve_admission(id, mapper, key, Metadata::empty()),
            Some(CurvePolicy::Keys(store)) => match store.get(key) {
                Some(metadata) => curve_admission(id, mapper, key, metadata.clone()),
                None => denied(id, "Unknown key"),
            },
            Some(CurvePolicy::Provider(provider)) => {
                return Decision::Consult(Consultation {
                    provider: provider.clone(),
                    domain: domain.to_owned(),
                    public_key: *key,
                    request_id: id.to_vec(),
                    user_id: self.curve_user_id.clone(),
                })
            }
        };
        Decision::Reply(reply)
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
