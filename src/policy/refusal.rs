//! Every refusal the authenticator sends — its status code and its status text — in one place.
//!
//! The texts are pyzmq's where pyzmq has one (`handle_zap_message` and `_authenticate_*`), so
//! logs read the same across the two; the provider, overload and policy-gone texts are this
//! crate's own. libzmq never reads a status text nor tells the client; logs and decision
//! events do.

use super::ProviderFailure;
use crate::zap::{Reply, RequestError, StatusCode};

/// Why a request was refused. Each reason has exactly one status code and one text.
///
/// ```
/// use actix_zap::policy::Refusal;
/// use actix_zap::zap::StatusCode;
/// assert_eq!(Refusal::UnknownKey.status(), StatusCode::Denied);
/// assert_eq!(Refusal::UnknownKey.text(), "Unknown key");
/// let reply = Refusal::UnknownKey.reply(b"1");
/// assert_eq!(reply.frames(), [&b"1.0"[..], b"1", b"400", b"Unknown key", b"", b""]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// Fewer than 6 frames.
    NotEnoughFrames,
    /// The version frame is not `1.0`.
    InvalidVersion,
    /// The credential frames do not fit the mechanism (count, key length, non-UTF-8
    /// principal).
    InvalidCredentials,
    /// The peer is outside an allow-list, or no rule in force can judge its address.
    AddressNotAllowed,
    /// The peer is on a deny-list.
    AddressDenied,
    /// A mechanism libzmq never sends.
    UnsupportedMechanism,
    /// PLAIN, but no password table at all is configured.
    NoPasswordsDefined,
    /// PLAIN, but no password table covers the request's domain.
    InvalidDomain,
    /// PLAIN, and the username is not in the domain's table.
    InvalidUsername,
    /// PLAIN, and the password does not match.
    InvalidPassword,
    /// PLAIN with an empty password: refused whatever the table holds (libzmq clients cannot
    /// send one, other ZMTP clients can).
    EmptyPassword,
    /// CURVE or GSSAPI, and nothing is configured for the domain.
    UnknownDomain,
    /// CURVE, and the key is not admitted (not in the key set, or the provider refused it).
    UnknownKey,
    /// GSSAPI, and the principal is not in the domain's set.
    UnknownPrincipal,
    /// The provider asked the client to come back later ([`CurveVerdict::TryLater`]).
    ///
    /// [`CurveVerdict::TryLater`]: crate::provider::CurveVerdict::TryLater
    TryLater,
    /// Too many blocking provider calls are already waiting.
    ProviderOverloaded,
    /// The provider (or user-id mapping) returned an error.
    ProviderFailed,
    /// The provider (or user-id mapping) panicked.
    ProviderPanicked,
    /// The provider (or user-id mapping) did not answer before the deadline.
    ProviderTimedOut,
    /// The authenticator is stopping: requests it held back at `Settings::max_in_flight` (which
    /// otherwise only waits) are answered this while it drains.
    TooManyRequests,
    /// The policy actor is gone: fail closed.
    PolicyUnavailable,
    /// Too many hashed-password verifications are waiting for a worker.
    VerifierOverloaded,
    /// A hashed-password verification failed (no worker, a panic, the deadline).
    VerificationFailed,
    /// The domain is a credential store's, and the store has not proved within its
    /// `max_staleness` that this copy is up to date (or has proved nothing yet): fail closed,
    /// with no fallback to `"*"`.
    StaleStore,
    /// PLAIN, and this (address, username) pair, or this address, has failed too often
    /// lately (see [`Throttle`](super::Throttle)): refused at once, whatever the password.
    Throttled,
    /// The address already has as many verifications or provider lookups in flight as it
    /// may (see [`Throttle::start`](super::Throttle::start)): refused at once.
    AddressBusy,
}

impl Refusal {
    /// The status code sent: `300` for "retry later", `500` when the handler failed, `400`
    /// for every verdict on the request itself.
    pub const fn status(self) -> StatusCode {
        match self {
            Refusal::TryLater
            | Refusal::ProviderOverloaded
            | Refusal::TooManyRequests
            | Refusal::VerifierOverloaded => StatusCode::TryLater,
            Refusal::ProviderFailed
            | Refusal::ProviderPanicked
            | Refusal::ProviderTimedOut
            | Refusal::PolicyUnavailable
            | Refusal::VerificationFailed
            | Refusal::StaleStore => StatusCode::InternalError,
            _ => StatusCode::Denied,
        }
    }

    /// The status text sent.
    pub const fn text(self) -> &'static str {
        match self {
            Refusal::NotEnoughFrames => "Not enough frames",
            Refusal::InvalidVersion => "Invalid version",
            Refusal::InvalidCredentials => "Invalid credentials",
            Refusal::AddressNotAllowed => "Address not allowed",
            Refusal::AddressDenied => "Address denied",
            Refusal::UnsupportedMechanism => "Unsupported mechanism",
            Refusal::NoPasswordsDefined => "No passwords defined",
            Refusal::InvalidDomain => "Invalid domain",
            Refusal::InvalidUsername => "Invalid username",
            Refusal::InvalidPassword => "Invalid password",
            Refusal::EmptyPassword => "Empty password",
            Refusal::UnknownDomain => "Unknown domain",
            Refusal::UnknownKey => "Unknown key",
            Refusal::UnknownPrincipal => "Unknown principal",
            Refusal::TryLater => "Try again later",
            Refusal::ProviderOverloaded => "Provider overloaded",
            Refusal::ProviderFailed => "Provider failed",
            Refusal::ProviderPanicked => "Provider panicked",
            Refusal::ProviderTimedOut => "Provider timed out",
            Refusal::TooManyRequests => "Too many requests",
            Refusal::PolicyUnavailable => "Policy unavailable",
            Refusal::VerifierOverloaded => "Verifier overloaded",
            Refusal::VerificationFailed => "Verification failed",
            Refusal::StaleStore => "Credential store out of touch",
            Refusal::Throttled => "Too many failures",
            Refusal::AddressBusy => "Too many attempts in flight",
        }
    }

    /// The reply to the request `request_id`: this status and text, no user id, no metadata.
    pub fn reply(self, request_id: &[u8]) -> Reply {
        Reply::refusal(request_id, self.status(), self.text())
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status(), self.text())
    }
}

impl From<&RequestError> for Refusal {
    fn from(error: &RequestError) -> Self {
        match error {
            RequestError::Unanswerable(_) | RequestError::NotEnoughFrames(_) => {
                Refusal::NotEnoughFrames
            }
            RequestError::InvalidVersion => Refusal::InvalidVersion,
            RequestError::InvalidCredentials { .. } | RequestError::InvalidCurveKey(_) => {
                Refusal::InvalidCredentials
            }
        }
    }
}

/// User code (a provider, a user-id mapping) that gave no answer.
impl From<&ProviderFailure> for Refusal {
    fn from(failure: &ProviderFailure) -> Self {
        match failure {
            ProviderFailure::Overloaded => Refusal::ProviderOverloaded,
            ProviderFailure::Error(_) => Refusal::ProviderFailed,
            ProviderFailure::Panicked => Refusal::ProviderPanicked,
            ProviderFailure::TimedOut => Refusal::ProviderTimedOut,
        }
    }
}

impl Refusal {
    /// A hashed-password verification that gave no answer: a full queue asks the client to
    /// come back (`300`); no worker, a panic or the deadline is a failure (`500`).
    pub fn of_verification(failure: &ProviderFailure) -> Refusal {
        match failure {
            ProviderFailure::Overloaded => Refusal::VerifierOverloaded,
            _ => Refusal::VerificationFailed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_and_failure_refusals_are_not_400() {
        for refusal in [
            Refusal::TryLater,
            Refusal::ProviderOverloaded,
            Refusal::TooManyRequests,
        ] {
            assert_eq!(refusal.status(), StatusCode::TryLater, "{refusal}");
        }
        for refusal in [
            Refusal::ProviderFailed,
            Refusal::ProviderPanicked,
            Refusal::ProviderTimedOut,
            Refusal::PolicyUnavailable,
            Refusal::StaleStore,
        ] {
            assert_eq!(refusal.status(), StatusCode::InternalError, "{refusal}");
        }
        assert_eq!(Refusal::AddressDenied.to_string(), "400 Address denied");
        // The throttle's refusals are verdicts on the attempt: never "come back later".
        assert_eq!(Refusal::Throttled.to_string(), "400 Too many failures");
        assert_eq!(Refusal::AddressBusy.status(), StatusCode::Denied);
    }

    #[test]
    fn parse_errors_keep_pyzmq_texts() {
        let cases = [
            (RequestError::Unanswerable(1), "Not enough frames"),
            (RequestError::NotEnoughFrames(4), "Not enough frames"),
            (RequestError::InvalidVersion, "Invalid version"),
            (RequestError::InvalidCurveKey(5), "Invalid credentials"),
        ];
        for (error, text) in cases {
            let refusal = Refusal::from(&error);
            assert_eq!(
                (refusal.status(), refusal.text()),
                (StatusCode::Denied, text)
            );
        }
    }

    #[test]
    fn a_refusal_reply_carries_no_user_id_or_metadata() {
        let reply = Refusal::TooManyRequests.reply(b"7");
        assert_eq!(
            reply.frames(),
            [&b"1.0"[..], b"7", b"300", b"Too many requests", b"", b""]
        );
    }
}
