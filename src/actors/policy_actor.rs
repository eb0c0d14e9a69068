//! `PolicyActor`: owns the [`Policy`], applies configuration messages, decides requests.

use std::collections::HashMap;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use futures::future::{ready, LocalBoxFuture};
use futures::FutureExt as _;
use log::{debug, warn};

use super::messages::*;
use super::observe::{Observers, Stats, SubscriptionId};
use super::pool::{BlockingPool, JobError};
use crate::error::ConfigError;
use crate::policy::{Consultation, CurvePolicy, Decision, Policy, PolicySnapshot, ProviderFailure};
use crate::provider::{CurveVerdict, Provider, ProviderError};
use crate::settings::Settings;
use crate::sources::Sources;
use crate::zap::{Reply, Request};

/// Fails unless the linked libzmq can do CURVE (`zmq::has("curve")`).
pub(crate) fn require_curve(has_curve: Option<bool>) -> Result<(), ConfigError> {
    match has_curve {
        Some(true) => Ok(()),
        _ => Err(ConfigError::NoCurveSupport),
    }
}

/// The actor that owns the authentication policy.
///
/// Decisions that need no provider are answered inside the handler. Provider lookups run
/// concurrently (asynchronous ones on this thread, synchronous ones on the bounded pool),
/// each under the deadline and with panics caught, so one slow or broken provider delays
/// only its own client.
pub struct PolicyActor {
    pub(crate) policy: Policy,
    settings: Settings,
    pool: BlockingPool,
    /// The latest CURVE configuration per domain; a directory load applies only if no later
    /// configuration of its domain arrived while it was reading files.
    pub(super) curve_tickets: HashMap<String, u64>,
    next_ticket: u64,
    observers: Observers,
    /// Live reload: every watch and their shared notifier.
    pub(crate) sources: Sources,
}

impl PolicyActor {
    /// A policy actor with an empty policy (everything that needs a policy is refused).
    pub fn new(settings: Settings) -> std::io::Result<Self> {
        let pool = BlockingPool::new(settings.provider_threads, settings.provider_queue)?;
        Ok(PolicyActor {
            policy: Policy::default(),
            settings,
            pool,
            curve_tickets: HashMap::new(),
            next_ticket: 0,
            observers: Observers::default(),
            sources: Sources::default(),
        })
    }

    /// A ticket never handed out before for the latest CURVE configuration of `domain`, to
    /// tell a stale directory load from the current one.
    pub(crate) fn curve_ticket(&mut self, domain: &str) -> u64 {
        self.next_ticket += 1;
        self.curve_tickets
            .insert(domain.to_owned(), self.next_ticket);
        self.next_ticket
    }

    pub(crate) fn install_curve(
        &mut self,
        domain: &str,
        curve: CurvePolicy,
    ) -> Result<(), ConfigError> {
        require_curve(zmq::has("curve"))?;
        self.policy.configure_curve(domain, curve)?;
        Ok(())
    }

    /// Runs the provider and then the user-id mapping (whichever the consultation needs),
    /// together under one deadline, with panics caught, and builds the reply.
    fn consult(&self, consultation: Consultation) -> impl Future<Output = Reply> {
        let deadline = tokio::time::Instant::now() + self.settings.provider_deadline;
        let (domain, key) = (consultation.domain.clone(), consultation.public_key);
        let verdict: LocalBoxFuture<'static, Result<CurveVerdict, ProviderFailure>> =
            match &consultation.provider {
                None => Box::pin(ready(Ok(consultation.admitted_without_provider()))),
                Some(Provider::Blocking(provider)) => {
                    let provider = Arc::clone(provider);
                    on_pool(&self.pool, move || provider.check_curve(&domain, &key))
                }
                Some(Provider::Async(provider)) => {
                    match catch_unwind(AssertUnwindSafe(|| provider.check_curve(&domain, &key))) {
                        Err(_) => Box::pin(ready(Err(ProviderFailure::Panicked))),
                        Ok(future) => Box::pin(async move {
                            match AssertUnwindSafe(future).catch_unwind().await {
                                Ok(Ok(verdict)) => Ok(verdict),
                                Ok(Err(error)) => Err(ProviderFailure::Error(error)),
                                Err(_) => Err(ProviderFailure::Panicked),
                            }
                        }),
                    }
                }
            };
        let pool = self.pool.clone();
        async move {
            let mut verdict = within(deadline, verdict).await;
            if let (Ok(CurveVerdict::Admit(admission)), Some(map)) =
                (&mut verdict, consultation.user_id_mapper.clone())
            {
                if admission.user_id.is_none() {
                    match within(deadline, on_pool(&pool, move || map(&key))).await {
                        Ok(user_id) => admission.user_id = Some(user_id),
                        Err(failure) => verdict = Err(failure),
                    }
                }
            }
            if let Err(failure) = &verdict {
                warn!(
                    target: "actix_zap::provider",
                    "CURVE provider or user-id mapping for domain {:?}, key {}: {failure}",
                    consultation.domain, consultation.public_key
                );
            }
            consultation.finish(verdict)
        }
    }
}

/// `future`'s answer, or `TimedOut` at the deadline.
async fn within<T>(
    deadline: tokio::time::Instant,
    future: impl Future<Output = Result<T, ProviderFailure>>,
) -> Result<T, ProviderFailure> {
    tokio::time::timeout_at(deadline, future)
        .await
        .unwrap_or(Err(ProviderFailure::TimedOut))
}

/// Runs user code on the pool; a full queue is `Overloaded`, a panic `Panicked`.
fn on_pool<T: Send + 'static>(
    pool: &BlockingPool,
    job: impl FnOnce() -> Result<T, ProviderError> + Send + 'static,
) -> LocalBoxFuture<'static, Result<T, ProviderFailure>> {
    match pool.run(job) {
        Err(_) => Box::pin(ready(Err(ProviderFailure::Overloaded))),
        Ok(answer) => Box::pin(async move {
            match answer.await {
                Ok(Ok(Ok(value))) => Ok(value),
                Ok(Ok(Err(error))) => Err(ProviderFailure::Error(error)),
                Ok(Err(JobError::Overloaded)) => Err(ProviderFailure::Overloaded),
                Ok(Err(JobError::Panicked)) | Err(_) => Err(ProviderFailure::Panicked),
            }
        }),
    }
}

impl Actor for PolicyActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Requests arrive in bursts of up to `max_in_flight` (the ZapSocket's bound); room for
        // all of them plus configuration messages means nobody waits for mailbox space.
        ctx.set_mailbox_capacity(self.settings.max_in_flight.saturating_add(64));
    }
}

fn log_decision(frames: &[Vec<u8>], reply: &Reply) {
    if !log::log_enabled!(target: "actix_zap::decision", log::Level::Debug) {
        return;
    }
    if let Ok(request) = Request::parse(frames) {
        debug!(
            target: "actix_zap::decision",
            "{} {:?} domain={:?} address={} mechanism={} user_id={:?}",
            reply.status,
            reply.text,
            request.domain,
            request.address,
            request.mechanism.name(),
            reply.user_id
        );
    } else {
        debug!(target: "actix_zap::decision", "{} {:?} for a malformed request", reply.status, reply.text);
    }
}

impl PolicyActor {
    fn decided(&mut self, frames: &[Vec<u8>], reply: &Reply, received: Instant) {
        log_decision(frames, reply);
        self.observers.record(frames, reply, received.elapsed());
    }
}

impl Handler<Authenticate> for PolicyActor {
    type Result = ActorResponse<Self, Option<Reply>>;

    fn handle(
        &mut self,
        Authenticate(frames): Authenticate,
        _: &mut Self::Context,
    ) -> Self::Result {
        let received = Instant::now();
        match self.policy.handle(&frames) {
            Decision::Reply(reply) => {
                self.decided(&frames, &reply, received);
                ActorResponse::reply(Some(reply))
            }
            Decision::Drop(error) => {
                warn!(target: "actix_zap::decision", "dropped a request: {error}");
                self.observers.dropped();
                ActorResponse::reply(None)
            }
            Decision::Consult(consultation) => {
                let reply = self.consult(consultation);
                ActorResponse::r#async(reply.into_actor(self).map(move |reply, act, _| {
                    act.decided(&frames, &reply, received);
                    Some(reply)
                }))
            }
        }
    }
}

impl Handler<Inspect> for PolicyActor {
    type Result = Result<PolicySnapshot, ConfigError>;

    fn handle(&mut self, _: Inspect, _: &mut Self::Context) -> Self::Result {
        Ok(self.policy.snapshot())
    }
}

impl Handler<Subscribe> for PolicyActor {
    type Result = Result<SubscriptionId, ConfigError>;

    fn handle(&mut self, msg: Subscribe, _: &mut Self::Context) -> Self::Result {
        Ok(self.observers.subscribe(msg.0))
    }
}

impl Handler<Unsubscribe> for PolicyActor {
    type Result = Result<bool, ConfigError>;

    fn handle(&mut self, msg: Unsubscribe, _: &mut Self::Context) -> Self::Result {
        Ok(self.observers.unsubscribe(msg.0))
    }
}

impl Handler<GetStats> for PolicyActor {
    type Result = Result<Stats, ConfigError>;

    fn handle(&mut self, _: GetStats, _: &mut Self::Context) -> Self::Result {
        Ok(self.observers.stats())
    }
}

impl Handler<Stop> for PolicyActor {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve_configuration_needs_a_curve_capable_libzmq() {
        assert!(require_curve(Some(true)).is_ok());
        for missing in [Some(false), None] {
            let error = require_curve(missing).unwrap_err();
            assert!(error.to_string().contains("libzmq3-dev"), "{error}");
        }
    }
}
