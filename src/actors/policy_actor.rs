//! `PolicyActor`: owns the [`Policy`], applies configuration messages, decides requests.

use std::collections::HashMap;
use std::future::Future;
use std::time::Instant;

use actix::prelude::*;
use futures::future::{ready, LocalBoxFuture};
use log::{debug, warn};

use super::messages::*;
use super::observe::{Observers, Stats, SubscriptionId};
use super::pool::{BlockingPool, JobError};
use crate::error::ConfigError;
use crate::policy::{BlockingCall, BlockingRunner, Consultation, CurvePolicy, Decision, Policy};
use crate::policy::{PolicySnapshot, ProviderFailure};
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
    /// Domains served by external sources (a credential store).
    pub(crate) served: crate::sources::Served,
    /// Hashed PLAIN passwords: argon2 workers and the verification cache.
    pub(crate) verifier: super::verify::Verifier,
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
            served: Default::default(),
            verifier: Default::default(),
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
}

/// Blocking user code runs on the authenticator's bounded pool: a full queue is
/// `Overloaded`, a panic `Panicked`.
#[derive(Clone)]
struct OnPool(BlockingPool);

impl BlockingRunner for OnPool {
    fn run<T: Send + 'static>(
        &self,
        call: BlockingCall<T>,
    ) -> LocalBoxFuture<'static, Result<T, ProviderFailure>> {
        match self.0.run(call) {
            Err(_) => Box::pin(ready(Err(ProviderFailure::Overloaded))),
            Ok(answer) => Box::pin(async move {
                match answer.await {
                    Ok(Ok(answer)) => ProviderFailure::from_guarded(Ok(answer)),
                    Ok(Err(JobError::Overloaded)) => Err(ProviderFailure::Overloaded),
                    Ok(Err(JobError::Panicked)) | Err(_) => Err(ProviderFailure::Panicked),
                }
            }),
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

/// A request whose decision needs user code, on its way through the actor.
pub(super) struct Pending {
    pub(super) frames: Vec<Vec<u8>>,
    pub(super) received: Instant,
    /// Set when the request arrived; a decision taken again keeps it.
    pub(super) deadline: tokio::time::Instant,
}

impl PolicyActor {
    /// Runs the consultation's user code under the request's deadline; when it answers,
    /// sends the answer only if the policy is still the one it was asked under. Otherwise
    /// the request is decided again from its frames under the policy in force, so an
    /// acknowledged narrowing also decides the requests that were already waiting.
    fn consult(
        &mut self,
        consultation: Consultation,
        pending: Pending,
    ) -> ResponseActFuture<Self, Option<Reply>> {
        let asked = within(
            pending.deadline,
            consultation.ask(OnPool(self.pool.clone())),
        );
        Box::pin(asked.into_actor(self).then(move |verdict, act, _| {
            if act.policy.epoch() != consultation.epoch() {
                debug!(
                    target: "actix_zap::decision",
                    "the policy changed while user code ran for domain {:?}; deciding again",
                    consultation.domain
                );
                return act.decide(pending);
            }
            if let Err(failure) = &verdict {
                warn!(
                    target: "actix_zap::provider",
                    "CURVE provider or user-id mapping for domain {:?}, key {}: {failure}",
                    consultation.domain, consultation.public_key
                );
            }
            let reply = consultation.finish(verdict);
            act.decided(&pending.frames, &reply, pending.received);
            Box::pin(fut::ready(Some(reply)))
        }))
    }

    /// Decides a request again (see [`consult`](Self::consult)).
    pub(super) fn decide(&mut self, pending: Pending) -> ResponseActFuture<Self, Option<Reply>> {
        match self.policy.handle(&pending.frames) {
            Decision::Consult(consultation) => self.consult(consultation, pending),
            Decision::Verify(verification) => self.verify(verification, pending),
            Decision::Reply(reply) => {
                self.decided(&pending.frames, &reply, pending.received);
                Box::pin(fut::ready(Some(reply)))
            }
            Decision::Drop(_) => Box::pin(fut::ready(None)),
        }
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
    pub(super) fn decided(&mut self, frames: &[Vec<u8>], reply: &Reply, received: Instant) {
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
                let deadline = tokio::time::Instant::now() + self.settings.provider_deadline;
                let pending = Pending {
                    frames,
                    received,
                    deadline,
                };
                ActorResponse::r#async(self.consult(consultation, pending))
            }
            Decision::Verify(verification) => {
                let deadline = tokio::time::Instant::now() + self.settings.provider_deadline;
                let pending = Pending {
                    frames,
                    received,
                    deadline,
                };
                ActorResponse::r#async(self.verify(verification, pending))
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
        let mut stats = self.observers.stats();
        stats.sources = self.served.stats();
        Ok(stats)
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
