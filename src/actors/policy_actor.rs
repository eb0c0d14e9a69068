//! `PolicyActor`: owns the [`Policy`], applies configuration messages, decides requests.

use std::future::Future;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures::future::{ready, LocalBoxFuture};
use log::{debug, warn};

use super::observe::{Observers, RequestFacts};
use super::pool::{BlockingPool, JobError};
use super::watch::Sources;
use super::watchdog::Watchdog;
use crate::messages::error::ConfigError;
use crate::messages::*;
use crate::policy::ProviderFailure;
use crate::policy::{BlockingCall, BlockingRunner, Consultation, Decision, Policy};
use crate::provider::CurveVerdict;
use crate::settings::Settings;
use crate::zap::{Reply, Request};

/// Fails unless the linked libzmq can do CURVE (`zmq::has("curve")`).
pub(crate) fn require_curve(has_curve: Option<bool>) -> Result<(), ConfigError> {
    Ok(crate::messages::error::NoCurveSupport::check(has_curve)?)
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
    observers: Observers,
    /// Live reload: every watch and their shared notifier.
    pub(crate) sources: Sources,
    /// Notices a stalled thread (`Settings::stall_warning`).
    watchdog: Option<Watchdog>,
    /// Domains served by external sources (a credential store).
    pub(crate) served: crate::sources::Served,
    /// Hashed PLAIN passwords: argon2 workers and the verification cache.
    pub(crate) verifier: super::verify::Verifier,
}

impl PolicyActor {
    /// A policy actor with an empty policy (everything that needs a policy is refused).
    pub fn new(settings: Settings) -> std::io::Result<Self> {
        let pool = BlockingPool::new(settings.provider_threads, settings.provider_queue)?;
        let watchdog = settings_watchdog(&settings);
        Ok(PolicyActor {
            policy: Policy::default(),
            verifier: super::verify::Verifier::new(&settings),
            settings,
            pool,
            observers: Observers::default(),
            sources: Sources::default(),
            watchdog,
            served: Default::default(),
        })
    }

    /// Logs and counts a stall that requests waited through.
    fn stalled(&mut self, stall: Duration) {
        let threshold = self
            .watchdog
            .as_ref()
            .map_or(Duration::ZERO, Watchdog::threshold);
        warn!(
            "the authenticator's thread did not run for {stall:?} (threshold {threshold:?}) \
             while ZAP requests waited: something blocks the actix thread. Run blocking work \
             with tokio::task::spawn_blocking (or actix_web::web::block), or use \
             ThreadAuthenticator, which has a thread of its own"
        );
        self.observers.stalled();
    }
}

fn settings_watchdog(settings: &Settings) -> Option<Watchdog> {
    settings
        .stall_warning
        .map(|threshold| Watchdog::new(threshold, Instant::now()))
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
    /// Kept to decide the request again if the policy changes meanwhile.
    pub(super) frames: Vec<Vec<u8>>,
    /// Read when the request arrived, for the log and the observers.
    pub(super) facts: RequestFacts<'static>,
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
    ) -> ResponseActFuture<Self, Reply> {
        let asked = within(
            pending.deadline,
            consultation.ask(OnPool(self.pool.clone())),
        );
        Box::pin(asked.into_actor(self).then(move |verdict, act, _| {
            if act.policy.epoch() == consultation.epoch() {
                return act.finished(consultation, verdict, pending);
            }
            debug!(
                target: "actix_zap::decision",
                "the policy changed while user code ran for domain {:?}; deciding again",
                consultation.domain
            );
            act.decide_again(pending, consultation, verdict)
        }))
    }

    /// Decides a request again under the policy in force, from scratch (see
    /// [`consult`](Self::consult)); its facts stay those read when it arrived.
    pub(super) fn decide(&mut self, pending: Pending) -> ResponseActFuture<Self, Reply> {
        match self.policy.handle(&pending.frames) {
            Decision::Reply(reply) => {
                self.decided(&pending.facts, &reply, pending.received);
                Box::pin(fut::ready(reply))
            }
            Decision::Consult(consultation) => self.consult(consultation, pending),
            Decision::Verify(verification) => self.verify(verification, pending),
        }
    }

    /// Decides a request again under the policy in force (see [`consult`](Self::consult)).
    /// When the same user code would be asked the same question, the answer in hand
    /// stands; past the request's deadline nothing is asked again (`500`). Its facts stay
    /// those read when it arrived.
    fn decide_again(
        &mut self,
        pending: Pending,
        asked: Consultation,
        verdict: Result<CurveVerdict, ProviderFailure>,
    ) -> ResponseActFuture<Self, Reply> {
        match self.policy.handle(&pending.frames) {
            Decision::Verify(verification) => self.verify(verification, pending),
            Decision::Reply(reply) => {
                self.decided(&pending.facts, &reply, pending.received);
                Box::pin(fut::ready(reply))
            }
            Decision::Consult(fresh) if fresh.asks_the_same(&asked) => {
                self.finished(fresh, verdict, pending)
            }
            Decision::Consult(fresh) if tokio::time::Instant::now() >= pending.deadline => {
                self.finished(fresh, Err(ProviderFailure::TimedOut), pending)
            }
            Decision::Consult(fresh) => self.consult(fresh, pending),
        }
    }

    /// Turns a current answer into the reply, logging failures of user code.
    fn finished(
        &mut self,
        consultation: Consultation,
        verdict: Result<CurveVerdict, ProviderFailure>,
        pending: Pending,
    ) -> ResponseActFuture<Self, Reply> {
        if let Err(failure) = &verdict {
            warn!(
                target: "actix_zap::provider",
                "CURVE provider or user-id mapping for domain {:?}, key {}: {failure}",
                consultation.domain, consultation.public_key
            );
        }
        let reply = consultation.finish(verdict);
        self.decided(&pending.facts, &reply, pending.received);
        Box::pin(fut::ready(reply))
    }
}

impl Actor for PolicyActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Requests arrive in bursts of up to `max_in_flight` (the ZapSocket's bound); room for
        // all of them plus configuration messages means nobody waits for mailbox space.
        ctx.set_mailbox_capacity(self.settings.max_in_flight.saturating_add(64));
        if let Some(period) = self.watchdog.as_ref().map(Watchdog::period) {
            ctx.run_interval(period, |act, _| {
                let stall = act.watchdog.as_mut().and_then(|w| w.tick(Instant::now()));
                if let Some(stall) = stall {
                    act.stalled(stall);
                }
            });
        }
    }
}

impl PolicyActor {
    /// Logs the decision and tells the observers, from the facts read when it arrived.
    pub(super) fn decided(&mut self, facts: &RequestFacts<'_>, reply: &Reply, received: Instant) {
        debug!(
            target: "actix_zap::decision",
            "{} {:?} domain={:?} address={} mechanism={} user_id={:?}",
            reply.status,
            reply.text,
            facts.domain,
            facts.address,
            facts.mechanism,
            reply.user_id
        );
        self.observers.record(facts, reply, received.elapsed());
    }
}

impl Handler<Authenticate> for PolicyActor {
    type Result = ActorResponse<Self, Reply>;

    fn handle(
        &mut self,
        Authenticate(frames): Authenticate,
        _: &mut Self::Context,
    ) -> Self::Result {
        let received = Instant::now();
        if let Some(stall) = self.watchdog.as_mut().and_then(Watchdog::request) {
            self.stalled(stall);
        }
        // Parsed once: the decision, the log and the observers all read this.
        let (decision, facts) = match Request::parse(&frames) {
            Ok(request) => (self.policy.decide(&request), RequestFacts::of(request)),
            Err(error) => (
                Decision::Reply(Policy::refuse_malformed(&frames, &error)),
                RequestFacts::unparsed(&frames),
            ),
        };
        match decision {
            Decision::Reply(reply) => {
                self.decided(&facts, &reply, received);
                ActorResponse::reply(reply)
            }
            Decision::Consult(consultation) => {
                let facts = facts.into_owned();
                let pending = self.pending(frames, facts, received);
                ActorResponse::r#async(self.consult(consultation, pending))
            }
            Decision::Verify(verification) => {
                let facts = facts.into_owned();
                let pending = self.pending(frames, facts, received);
                ActorResponse::r#async(self.verify(verification, pending))
            }
        }
    }
}

impl PolicyActor {
    /// A request that user code (a provider, a mapping) or a password hash must decide,
    /// under a deadline that starts now.
    fn pending(
        &self,
        frames: Vec<Vec<u8>>,
        facts: RequestFacts<'static>,
        received: Instant,
    ) -> Pending {
        Pending {
            frames,
            facts,
            received,
            deadline: tokio::time::Instant::now() + self.settings.provider_deadline,
        }
    }
}

impl Handler<Inspect> for PolicyActor {
    type Result = MessageResult<Inspect>;

    fn handle(&mut self, _: Inspect, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.policy.snapshot())
    }
}

impl Handler<Subscribe> for PolicyActor {
    type Result = MessageResult<Subscribe>;

    fn handle(&mut self, msg: Subscribe, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.observers.subscribe(msg.0))
    }
}

impl Handler<Unsubscribe> for PolicyActor {
    type Result = bool;

    fn handle(&mut self, msg: Unsubscribe, _: &mut Self::Context) -> Self::Result {
        self.observers.unsubscribe(msg.0)
    }
}

impl Handler<GetStats> for PolicyActor {
    type Result = MessageResult<GetStats>;

    fn handle(&mut self, _: GetStats, _: &mut Self::Context) -> Self::Result {
        let mut stats = self.observers.stats();
        stats.sources = self.served.stats();
        MessageResult(stats)
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
