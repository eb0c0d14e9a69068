//! Hashed PLAIN passwords in the actor: argon2id runs on a bounded set of workers of its own
//! (`Settings::hash_threads`, one per core by default, started on first use), never on the
//! actix thread; a full queue (`Settings::hash_queue`) answers `300` at once. Successful
//! verifications are remembered in the policy layer's
//! [`VerificationCache`](crate::policy::VerificationCache), keyed with OS randomness read
//! here, and forgotten as soon as the user changes.

use std::sync::Arc;

#[cfg(feature = "test-hooks")]
use actix::prelude::*;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use futures::future::{ready, LocalBoxFuture};
use log::warn;

use super::pool::{BlockingPool, OnPool};
#[cfg(feature = "test-hooks")]
use super::PolicyActor;
#[cfg(feature = "test-hooks")]
use crate::messages::error::ConfigError;
#[cfg(feature = "test-hooks")]
use crate::messages::BeforeVerificationForTests;
use crate::policy::{
    BlockingCall, BlockingRunner, ProviderFailure, Verification, VerificationCache,
};
use crate::settings::Settings;

/// The workers and the cache of one policy actor.
pub(crate) struct Verifier {
    pool: Option<BlockingPool>,
    /// The pool's size, from the settings: workers, and verifications that may wait.
    workers: usize,
    queue: usize,
    pub(crate) cache: VerificationCache,
    /// Run on the worker before each verification (a test hook, feature `test-hooks`).
    before: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl Verifier {
    /// No workers yet: they start on the first verification, as many as `settings` says.
    pub(crate) fn new(settings: &Settings) -> Self {
        let mut key = [0; 32];
        OsRng.fill_bytes(&mut key);
        Verifier {
            pool: None,
            workers: settings.hash_threads(),
            queue: settings.hash_queue(),
            cache: VerificationCache::new(key),
            before: None,
        }
    }

    /// Forgets a user's verification (the user changed or went away).
    pub(crate) fn forget_user(&mut self, domain: &str, username: &[u8]) {
        self.cache.forget_user(domain, username);
    }

    /// Forgets every verification of a domain (its table was replaced).
    pub(crate) fn forget_domain(&mut self, domain: &str) {
        self.cache.forget_domain(domain);
    }

    /// Runs argon2 for `verification` on the workers (started now if need be).
    pub(super) fn run(
        &mut self,
        verification: &Verification,
    ) -> LocalBoxFuture<'static, Result<bool, ProviderFailure>> {
        let pool = match &self.pool {
            Some(pool) => pool.clone(),
            None => match BlockingPool::new("argon2", self.workers, self.queue) {
                Ok(pool) => {
                    self.pool = Some(pool.clone());
                    pool
                }
                Err(error) => {
                    warn!(target: "actix_zap::decision", "cannot start argon2 workers: {error}");
                    let failure =
                        ProviderFailure::Error(format!("no argon2 workers: {error}").into());
                    return Box::pin(ready(Err(failure)));
                }
            },
        };
        let hash = verification.hash.clone();
        let mut password = verification.password().to_vec();
        let before = self.before.clone();
        let job: BlockingCall<bool> = Box::new(move || {
            if let Some(before) = before {
                before();
            }
            let matched = hash.verify(&password);
            password.iter_mut().for_each(|b| *b = 0);
            Ok(matched)
        });
        OnPool(pool).run(job)
    }
}

#[cfg(feature = "test-hooks")]
impl Handler<BeforeVerificationForTests> for PolicyActor {
    type Result = Result<(), ConfigError>;

    fn handle(&mut self, msg: BeforeVerificationForTests, _: &mut Self::Context) -> Self::Result {
        self.verifier.before = Some(msg.0);
        Ok(())
    }
}
