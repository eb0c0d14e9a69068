//! Hashed PLAIN passwords in the actor: argon2id runs on a bounded set of workers of its own
//! (`Settings::hash_threads`, one per core by default, started on first use), never on the
//! actix thread; a full queue (`Settings::hash_queue`) answers `300` at once. Successful
//! verifications are remembered for a short while, keyed by the user's table domain,
//! username, PHC string and a keyed hash of the password (never the password), and forgotten
//! as soon as that user changes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use blake2::digest::{consts::U32, Mac};
use log::warn;

use super::policy_actor::{Pending, PolicyActor};
use super::pool::{BlockingPool, JobError};
use crate::policy::{ProviderFailure, Verification};
use crate::settings::Settings;
use crate::zap::Reply;

/// How long a successful verification is remembered.
pub const VERIFIED_FOR: Duration = Duration::from_secs(60);

/// The most remembered verifications; past it, expired ones are dropped, then all.
const MAX_REMEMBERED: usize = 100_000;

type KeyedHash = blake2::Blake2bMac<U32>;

struct Remembered {
    phc: Box<str>,
    tag: [u8; 32],
    at: Instant,
}

/// The workers and the cache of one policy actor.
pub(crate) struct Verifier {
    pool: Option<BlockingPool>,
    /// The pool's size, from the settings: workers, and verifications that may wait.
    workers: usize,
    queue: usize,
    remembered: HashMap<(String, Vec<u8>), Remembered>,
    key: [u8; 32],
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
            remembered: HashMap::new(),
            key,
        }
    }

    fn tag(&self, phc: &str, password: &[u8]) -> [u8; 32] {
        let mut mac = <KeyedHash as Mac>::new_from_slice(&self.key).expect("32-byte key");
        mac.update(phc.as_bytes());
        mac.update(&[0]);
        mac.update(password);
        mac.finalize().into_bytes().into()
    }

    /// Whether this exact user, hash and password were verified lately.
    fn remembers(&self, v: &Verification) -> bool {
        let key = (v.table_domain.clone(), v.username.clone());
        self.remembered.get(&key).is_some_and(|r| {
            r.at.elapsed() < VERIFIED_FOR
                && *r.phc == *v.hash.as_str()
                && bool::from(subtle::ConstantTimeEq::ct_eq(
                    &r.tag[..],
                    &self.tag(v.hash.as_str(), v.password())[..],
                ))
        })
    }

    fn remember(&mut self, v: &Verification) {
        if self.remembered.len() >= MAX_REMEMBERED {
            self.remembered.retain(|_, r| r.at.elapsed() < VERIFIED_FOR);
            if self.remembered.len() >= MAX_REMEMBERED {
                self.remembered.clear();
            }
        }
        let remembered = Remembered {
            phc: v.hash.as_str().into(),
            tag: self.tag(v.hash.as_str(), v.password()),
            at: Instant::now(),
        };
        self.remembered
            .insert((v.table_domain.clone(), v.username.clone()), remembered);
    }

    /// Forgets a user's verification (the user changed or went away).
    pub(crate) fn forget_user(&mut self, domain: &str, username: &[u8]) {
        self.remembered
            .remove(&(domain.to_owned(), username.to_vec()));
    }

    /// Forgets every verification of a domain (its table was replaced).
    pub(crate) fn forget_domain(&mut self, domain: &str) {
        self.remembered.retain(|(d, _), _| d != domain);
    }

    fn pool(&mut self) -> std::io::Result<BlockingPool> {
        if let Some(pool) = &self.pool {
            return Ok(pool.clone());
        }
        let pool = BlockingPool::new(self.workers, self.queue)?;
        self.pool = Some(pool.clone());
        Ok(pool)
    }
}

impl PolicyActor {
    /// Verifies a hashed PLAIN password (remembered, or on the workers under the request's
    /// deadline). An answer that comes back after the policy changed is not sent: the
    /// request is decided again (a success is remembered first, keyed by the hash it was
    /// checked against, so deciding again costs no second argon2 run unless the user changed).
    pub(super) fn verify(
        &mut self,
        verification: Verification,
        pending: Pending,
    ) -> ResponseActFuture<Self, Reply> {
        if self.verifier.remembers(&verification) {
            let reply = verification.finish(Ok(true));
            self.decided(&pending.facts, &reply, pending.received);
            return Box::pin(fut::ready(reply));
        }
        let hash = verification.hash.clone();
        let mut password = verification.password().to_vec();
        let job = move || {
            let matched = hash.verify(&password);
            password.iter_mut().for_each(|b| *b = 0);
            matched
        };
        let answer = match self.verifier.pool() {
            Err(error) => {
                warn!(target: "actix_zap::decision", "cannot start argon2 workers: {error}");
                let reply = verification.finish(Err(ProviderFailure::Panicked));
                self.decided(&pending.facts, &reply, pending.received);
                return Box::pin(fut::ready(reply));
            }
            Ok(pool) => pool.run(job),
        };
        let deadline = pending.deadline;
        let outcome = async move {
            let answer = answer.map_err(|_| ProviderFailure::Overloaded)?;
            match tokio::time::timeout_at(deadline, answer).await {
                Err(_) => Err(ProviderFailure::TimedOut),
                Ok(Ok(Ok(matched))) => Ok(matched),
                Ok(Ok(Err(JobError::Overloaded))) => Err(ProviderFailure::Overloaded),
                Ok(Ok(Err(JobError::Panicked))) | Ok(Err(_)) => Err(ProviderFailure::Panicked),
            }
        };
        Box::pin(outcome.into_actor(self).then(move |outcome, act, _| {
            let still_installed = (act.policy)
                .hashed_user(&verification.table_domain, &verification.username)
                .is_some_and(|hash| hash.as_str() == verification.hash.as_str());
            if matches!(outcome, Ok(true)) && still_installed {
                act.verifier.remember(&verification);
            }
            if act.policy.epoch() != verification.epoch() {
                return act.decide(pending);
            }
            let reply = verification.finish(outcome);
            act.decided(&pending.facts, &reply, pending.received);
            Box::pin(fut::ready(reply))
        }))
    }
}
