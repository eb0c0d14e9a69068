//! Credential providers: user code that decides on a CURVE key, synchronously or not.
//!
//! pyzmq calls this a *credentials provider* (`configure_curve_callback`): an object asked
//! "may this key in this domain connect?", typically backed by a database. Both kinds are
//! first-class here:
//!
//! - [`CredentialsProvider`] is a plain function call. The authenticator runs it on a small,
//!   bounded thread pool, so a blocking database driver never stalls the actix thread.
//! - [`AsyncCredentialsProvider`] returns a future, polled on the authenticator's actix
//!   thread; many lookups are in flight at once, so a 20 ms lookup costs other handshakes
//!   nothing.
//!
//! Closures implement both traits, so the common case is one line:
//!
//! ```
//! use actix_zap::provider::{CurveVerdict, Provider};
//! let trusted = actix_zap::keys::CurvePublicKey::from_bytes([1; 32]);
//! let provider = Provider::from_fn(move |_domain: &str, key: &_| Ok((*key == trusted).into()));
//! ```
//!
//! Whatever a provider does wrong — returns an error, panics, or never answers — the client
//! gets a `500` and the authenticator keeps serving everyone else.

use std::future::Future;
use std::sync::Arc;

use futures::future::LocalBoxFuture;
use futures::FutureExt;

use crate::keys::CurvePublicKey;
use crate::zap::Metadata;

/// The error a provider may return; it is logged (never sent to the client) and becomes `500`.
pub type ProviderError = Box<dyn std::error::Error + Send + Sync>;

/// What a provider decided about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CurveVerdict {
    /// Admit the client (`200`).
    Admit(Admission),
    /// Refuse the client (`400 Unknown key`).
    Refuse,
    /// Refuse for now (`300`): libzmq closes quietly and the client reconnects later.
    TryLater,
}

impl CurveVerdict {
    /// Admit with the default user id (the key's Z85 text, or the configured mapping) and no
    /// metadata.
    pub fn admit() -> Self {
        CurveVerdict::Admit(Admission::default())
    }
}

/// `true` admits with defaults, `false` refuses: pyzmq's truthy callback result.
impl From<bool> for CurveVerdict {
    fn from(allowed: bool) -> Self {
        if allowed {
            CurveVerdict::admit()
        } else {
            CurveVerdict::Refuse
        }
    }
}

/// Details of an admission chosen by the provider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admission {
    /// The `User-Id` the server application will see; `None` uses the default mapping.
    pub user_id: Option<String>,
    /// Properties the server application reads with `Message::gets`.
    pub metadata: Metadata,
}

/// A synchronous provider: a blocking call, run on the authenticator's provider pool.
pub trait CredentialsProvider: Send + Sync + 'static {
    /// Decides on `key` for a request whose ZAP domain is `domain`.
    fn check_curve(
        &self,
        domain: &str,
        key: &CurvePublicKey,
    ) -> Result<CurveVerdict, ProviderError>;
}

impl<F> CredentialsProvider for F
where
    F: Fn(&str, &CurvePublicKey) -> Result<CurveVerdict, ProviderError> + Send + Sync + 'static,
{
    fn check_curve(
        &self,
        domain: &str,
        key: &CurvePublicKey,
    ) -> Result<CurveVerdict, ProviderError> {
        self(domain, key)
    }
}

/// An asynchronous provider: returns a future polled on the authenticator's actix thread.
///
/// The future need not be `Send`. It must not block: do blocking work with
/// `tokio::task::spawn_blocking` or use a [`CredentialsProvider`] instead.
pub trait AsyncCredentialsProvider: Send + Sync + 'static {
    /// Decides on `key` for a request whose ZAP domain is `domain`.
    fn check_curve(
        &self,
        domain: &str,
        key: &CurvePublicKey,
    ) -> LocalBoxFuture<'static, Result<CurveVerdict, ProviderError>>;
}

struct AsyncFn<F>(F);

impl<F, Fut> AsyncCredentialsProvider for AsyncFn<F>
where
    F: Fn(String, CurvePublicKey) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<CurveVerdict, ProviderError>> + 'static,
{
    fn check_curve(
        &self,
        domain: &str,
        key: &CurvePublicKey,
    ) -> LocalBoxFuture<'static, Result<CurveVerdict, ProviderError>> {
        (self.0)(domain.to_owned(), *key).boxed_local()
    }
}

/// A registered provider of either kind; cheap to clone.
#[derive(Clone)]
pub enum Provider {
    /// Runs on the provider pool.
    Blocking(Arc<dyn CredentialsProvider>),
    /// Polled on the actix thread.
    Async(Arc<dyn AsyncCredentialsProvider>),
}

impl Provider {
    /// Wraps a synchronous provider.
    pub fn blocking(provider: impl CredentialsProvider) -> Self {
        Provider::Blocking(Arc::new(provider))
    }

    /// Wraps an asynchronous provider.
    pub fn asynchronous(provider: impl AsyncCredentialsProvider) -> Self {
        Provider::Async(Arc::new(provider))
    }

    /// A synchronous provider from a closure.
    pub fn from_fn<F>(check: F) -> Self
    where
        F: Fn(&str, &CurvePublicKey) -> Result<CurveVerdict, ProviderError> + Send + Sync + 'static,
    {
        Provider::blocking(check)
    }

    /// An asynchronous provider from a closure returning a future.
    ///
    /// ```
    /// use actix_zap::provider::{CurveVerdict, Provider};
    /// let provider = Provider::from_async_fn(|domain: String, _key| async move {
    ///     // e.g. a database query
    ///     Ok(CurveVerdict::from(domain == "global"))
    /// });
    /// ```
    pub fn from_async_fn<F, Fut>(check: F) -> Self
    where
        F: Fn(String, CurvePublicKey) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<CurveVerdict, ProviderError>> + 'static,
    {
        Provider::Async(Arc::new(AsyncFn(check)))
    }

    /// `"blocking"` or `"async"`, for logs and inspection.
    pub fn kind(&self) -> &'static str {
        match self {
            Provider::Blocking(_) => "blocking",
            Provider::Async(_) => "async",
        }
    }
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Provider({})", self.kind())
    }
}

/// User code panicked; the panic was caught and the authenticator lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Panicked;

/// Runs user code (a provider, a mapping, a callback) so that a panic becomes a value.
///
/// The one place where the crate catches panics of code it did not write; every call of user
/// code goes through this or [`poll_guarded`].
pub(crate) fn call_guarded<T>(call: impl FnOnce() -> T) -> Result<T, Panicked> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)).map_err(|_| Panicked)
}

/// Creates and polls a future of user code so that a panic, while creating it or while
/// polling it, becomes a value.
pub(crate) fn poll_guarded<T: 'static>(
    make: impl FnOnce() -> LocalBoxFuture<'static, T>,
) -> LocalBoxFuture<'static, Result<T, Panicked>> {
    match call_guarded(make) {
        Err(panicked) => Box::pin(futures::future::ready(Err(panicked))),
        Ok(future) => Box::pin(
            std::panic::AssertUnwindSafe(future)
                .catch_unwind()
                .map(|polled| polled.map_err(|_| Panicked)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closures_are_providers_of_both_kinds() {
        let key = CurvePublicKey::from_bytes([9; 32]);
        let sync =
            Provider::from_fn(
                move |d: &str, k: &CurvePublicKey| Ok((d == "a" && *k == key).into()),
            );
        let Provider::Blocking(p) = sync else {
            panic!("kind")
        };
        assert_eq!(p.check_curve("a", &key).unwrap(), CurveVerdict::admit());
        assert_eq!(p.check_curve("b", &key).unwrap(), CurveVerdict::Refuse);

        let asynchronous =
            Provider::from_async_fn(
                |d: String, _k| async move { Ok(CurveVerdict::from(d == "a")) },
            );
        assert_eq!(asynchronous.kind(), "async");
        let Provider::Async(p) = asynchronous else {
            panic!("kind")
        };
        let verdict = futures::executor::block_on(p.check_curve("a", &key)).unwrap();
        assert_eq!(verdict, CurveVerdict::admit());
    }
}
