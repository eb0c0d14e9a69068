//! `PolicyActor`: owns the [`Policy`], applies configuration messages, decides requests.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use log::{debug, warn};
use tokio::sync::oneshot;

use super::observe::{Observers, RequestFacts};
use super::pool::{within, BlockingPool, OnPool};
use super::watchdog::Watchdog;
use crate::messages::error::ConfigError;
use crate::messages::*;
use crate::policy::{
    Answer, Consultation, Decision, Now, Policy, Start, Throttle, ThrottleLimits, Ticket,
    Verification, Work,
};
use crate::settings::Settings;
use crate::zap::{Reply, Request};

/// Fails unless the linked libzmq can do CURVE (`zmq::has("curve")`).
pub(crate) fn require_curve(has_curve: Option<bool>) -> Result<(), ConfigError> {
    Ok(crate::messages::error::NoCurveSupport::check(has_curve)?)
}

/// Decision log lines (target `actix_zap::decision`, level debug) a second at most.
const DECISION_LINES_PER_SECOND: u32 = 100;

/// The actor that owns the authentication policy.
///
/// Decisions that need no provider are answered inside the handler. Provider lookups run
/// concurrently (asynchronous ones on this thread, synchronous ones on the bounded pool),
/// each under the deadline and with panics caught, so one slow or broken provider delays
/// only its own client. Every decision goes through one router (`route`); the clocks are read
/// once per request, and once more when the work it asked for comes back.
pub struct PolicyActor {
    pub(crate) policy: Policy,
    settings: Settings,
    pool: BlockingPool,
    pub(super) observers: Observers,
    /// Live reload: the actor that follows watched files, started at the first watch.
    pub(super) watcher: Option<Addr<super::watch::FileWatcher>>,
    /// The decision log's budget of lines.
    decision_log: super::log_limit::LogBudget,
    /// Notices a stalled thread (`Settings::stall_warning`).
    watchdog: Option<Watchdog>,
    /// Domains served by external sources (a credential store).
    pub(crate) served: super::Served,
    /// Hashed PLAIN passwords: argon2 workers and the verification cache.
    pub(crate) verifier: super::verify::Verifier,
    /// Failures per peer address and (address, username), and the work each address has
    /// in flight.
    pub(super) throttle: Throttle,
    /// Requests over their address's cap, waiting their turn.
    /// (Where each waiting request is told that its turn came, with the ticket it runs under.)
    pub(super) turns: HashMap<crate::policy::Waiter, oneshot::Sender<crate::policy::Ticket>>,
    /// The context's session board: admissions are marked, narrowings end sessions. `None`
    /// for an actor started without an authenticator's builder (no marks).
    pub(super) board: Option<std::sync::Arc<crate::sessions::Board>>,
}

impl PolicyActor {
    /// A policy actor with an empty policy (everything that needs a policy is refused).
    pub fn new(settings: Settings) -> std::io::Result<Self> {
        let pool = BlockingPool::new(
            "provider",
            settings.provider_threads,
            settings.provider_queue,
        )?;
        let watchdog = settings_watchdog(&settings);
        Ok(PolicyActor {
            policy: Policy::default(),
            verifier: super::verify::Verifier::new(&settings),
            throttle: Throttle::new(throttle_limits(&settings)),
            turns: Default::default(),
            observers: Observers::new(settings.subscriber_queue),
            settings,
            pool,
            watcher: None,
            decision_log: super::log_limit::LogBudget::new(DECISION_LINES_PER_SECOND),
            watchdog,
            served: Default::default(),
            board: None,
        })
    }

    /// Marks this actor's admissions and ends sessions on `context`'s board when it narrows.
    pub(crate) fn with_sessions_of(mut self, context: &zmq::Context) -> Self {
        self.board = Some(crate::sessions::Board::of(context));
        self
    }

    /// Logs and counts a stall that requests waited through.
    fn stalled(&mut self, stall: Duration) {
        let threshold = self
            .watchdog
            .as_ref()
            .map_or(Duration::ZERO, Watchdog::threshold);
        warn!(
            target: "actix_zap::actors::PolicyActor",
            "the authenticator's thread did not run for {stall:?} (threshold {threshold:?}) \
             while ZAP requests waited: something blocks the actix thread. Run blocking work \
             with tokio::task::spawn_blocking (or actix_web::web::block), or use \
             ThreadAuthenticator, which has a thread of its own"
        );
        self.observers.stalled();
    }
}

/// The throttle's limits, from the settings.
fn throttle_limits(settings: &Settings) -> ThrottleLimits {
    ThrottleLimits {
        pair_threshold: settings.throttle_pair_threshold(),
        address_threshold: settings.throttle_address_threshold(),
        decay: settings.throttle_decay(),
        capacity: settings.throttle_capacity(),
        verifications_per_address: settings.verifications_per_address(),
        lookups_per_address: settings.lookups_per_address(),
        address_queue: settings.address_queue(),
    }
}

/// How often decayed failures are swept from the throttle's table, at most and at least.
const SWEEP_EVERY: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));

fn settings_watchdog(settings: &Settings) -> Option<Watchdog> {
    settings
        .stall_warning
        .map(|threshold| Watchdog::new(threshold, Instant::now()))
}

/// A request whose decision needs work (user code, a password hash), on its way through the
/// actor.
pub(super) struct Pending {
    /// Kept to decide the request again when its work comes back.
    pub(super) frames: Vec<Vec<u8>>,
    /// Read when the request arrived, for the log and the observers.
    pub(super) facts: RequestFacts<'static>,
    /// When the request arrived.
    pub(super) received: Instant,
    /// Set when the request arrived; a decision taken again keeps it.
    pub(super) deadline: Instant,
    /// The work its address has in flight for it, handed back when it is answered.
    pub(super) ticket: Option<Ticket>,
}

/// A request in the router: just arrived (its facts borrow its frames, so a reply sent at
/// once copies nothing), or back from work started for it.
pub(super) enum Carried<'a> {
    /// Decided for the first time.
    Arrived {
        frames: &'a [Vec<u8>],
        facts: RequestFacts<'a>,
        received: Instant,
    },
    /// Decided again.
    Waiting(Pending),
}

impl Carried<'_> {
    fn frames(&self) -> &[Vec<u8>] {
        match self {
            Carried::Arrived { frames, .. } => frames,
            Carried::Waiting(pending) => &pending.frames,
        }
    }

    fn facts(&self) -> (&RequestFacts<'_>, Instant) {
        match self {
            Carried::Arrived {
                facts, received, ..
            } => (facts, *received),
            Carried::Waiting(pending) => (&pending.facts, pending.received),
        }
    }
}

/// Where the router leaves a request.
pub(super) enum Routed {
    /// Answered.
    Now(Reply),
    /// Waiting on work; the future resolves with the reply.
    Later(ResponseActFuture<PolicyActor, Reply>),
}

impl Routed {
    fn into_response(self) -> ActorResponse<PolicyActor, Reply> {
        match self {
            Routed::Now(reply) => ActorResponse::reply(reply),
            Routed::Later(future) => ActorResponse::r#async(future),
        }
    }

    pub(super) fn into_future(self) -> ResponseActFuture<PolicyActor, Reply> {
        match self {
            Routed::Now(reply) => Box::pin(fut::ready(reply)),
            Routed::Later(future) => future,
        }
    }
}

impl PolicyActor {
    /// The one router: does what a decision says, for a request that just arrived or one
    /// decided again when its work came back. A reply is logged, counted and sent; a
    /// verification remembered at `now` is a reply; user code and argon2 run under the
    /// request's deadline, and their answer goes back to the policy ([`resume`](Self::resume)).
    pub(super) fn route(&mut self, decision: Decision, carried: Carried<'_>, now: &Now) -> Routed {
        match decision {
            Decision::Reply(mut reply) => {
                let (facts, received) = carried.facts();
                self.mark(facts, &mut reply);
                self.decided(facts, &reply, received);
                self.count(&carried, &reply, now);
                if let Carried::Waiting(Pending {
                    ticket: Some(ticket),
                    ..
                }) = carried
                {
                    self.release(ticket);
                }
                Routed::Now(reply)
            }
            Decision::Verify(verification)
                if self.verifier.cache.remembers(&verification, now.instant()) =>
            {
                let reply = verification.finish(Ok(true), now);
                self.route(Decision::Reply(reply), carried, now)
            }
            Decision::Consult(consultation) => {
                self.take_on(carried, Work::Lookup, now, |act, pending| {
                    act.consult(consultation, pending)
                })
            }
            Decision::Verify(verification) => {
                self.take_on(carried, Work::Verification, now, |act, pending| {
                    act.verify(verification, pending)
                })
            }
        }
    }

    /// Counts a reply that the throttle counts: a failure, or a PLAIN admission while the
    /// table holds failures, by the request's facts (its frames are not parsed again).
    fn count(&mut self, carried: &Carried<'_>, reply: &Reply, now: &Now) {
        let facts = carried.facts().0;
        let admitted = reply.status == crate::zap::StatusCode::Ok
            && facts.mechanism == crate::messages::EventMechanism::Plain
            && !self.throttle.is_empty();
        if admitted || Throttle::counts(reply) {
            (self.throttle).record_attempt(facts.attempt(), reply, now.instant());
        }
    }

    /// Starts the work a request waits on (`run`), holding a ticket for that work from its
    /// address; when the address has its cap of such work in flight, the request is refused
    /// at once instead and no work starts.
    fn take_on(
        &mut self,
        carried: Carried<'_>,
        work: Work,
        now: &Now,
        run: impl FnOnce(&mut Self, Pending) -> Routed,
    ) -> Routed {
        // Decided again after its work came back: it holds its ticket still.
        if matches!(
            carried,
            Carried::Waiting(Pending {
                ticket: Some(_),
                ..
            })
        ) {
            let pending = self.pending(carried);
            return run(self, pending);
        }
        match self.throttle.start(&carried.facts().0.address, work) {
            Start::Now(ticket) => {
                let mut pending = self.pending(carried);
                pending.ticket = Some(ticket);
                run(self, pending)
            }
            Start::Queued(waiter) => {
                let pending = self.pending(carried);
                self.wait_turn(waiter, pending)
            }
            Start::Refused(refusal) => {
                let id = carried.frames().get(1).map_or(&[][..], Vec::as_slice);
                let reply = refusal.reply(id);
                self.route(Decision::Reply(reply), carried, now)
            }
        }
    }

    /// Runs the consultation's user code under the request's deadline, then resumes.
    fn consult(&mut self, consultation: Consultation, pending: Pending) -> Routed {
        let asked = within(
            pending.deadline,
            consultation.ask(OnPool(self.pool.clone())),
        );
        Routed::Later(Box::pin(asked.into_actor(self).then(
            move |verdict, act, _| {
                let answer = Answer::Consulted(consultation, verdict);
                act.resume(answer, pending, &Now::read())
            },
        )))
    }

    /// Work came back at `now`: the policy in force decides what its answer is worth
    /// ([`Policy::resume`]: the answer, the request decided again, or a timeout), and the
    /// router does that. So an acknowledged narrowing also decides the requests that were
    /// already waiting, and a store's deadline or a key's expiry is checked at `now`.
    pub(super) fn resume(
        &mut self,
        answer: Answer,
        pending: Pending,
        now: &Now,
    ) -> ResponseActFuture<Self, Reply> {
        let epoch = match &answer {
            Answer::Consulted(consultation, verdict) => {
                if let Err(failure) = verdict {
                    warn!(
                        target: "actix_zap::provider",
                        "CURVE provider or user-id mapping for domain {:?}, key {}: {failure}",
                        consultation.domain, consultation.public_key
                    );
                }
                consultation.epoch()
            }
            Answer::Verified(verification, _) => verification.epoch(),
        };
        if epoch != self.policy.epoch() {
            debug!(
                target: "actix_zap::decision",
                "the policy changed while work ran for a request of domain {:?}; deciding again",
                pending.facts.domain
            );
        }
        let decision = (self.policy).resume(answer, &pending.frames, now, pending.deadline);
        self.route(decision, Carried::Waiting(pending), now)
            .into_future()
    }

    /// A request that work must decide, under a deadline that starts when it arrived.
    fn pending(&self, carried: Carried<'_>) -> Pending {
        match carried {
            Carried::Waiting(pending) => pending,
            Carried::Arrived {
                frames,
                facts,
                received,
            } => Pending {
                frames: frames.to_vec(),
                facts: facts.into_owned(),
                received,
                deadline: crate::policy::deadline(received, self.settings.provider_deadline),
                ticket: None,
            },
        }
    }
}

impl Actor for PolicyActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        #[cfg(feature = "metrics")]
        crate::metrics::describe();
        let (least, most) = SWEEP_EVERY;
        let sweep = self.settings.throttle_decay().clamp(least, most);
        ctx.run_interval(sweep, |act, _| act.throttle.sweep(Instant::now()));
        self.sweep_expired_sessions(ctx);
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

    fn stopped(&mut self, _: &mut Self::Context) {
        self.stop_watcher();
    }
}

impl PolicyActor {
    /// Logs the decision (escaped, and at most [`DECISION_LINES_PER_SECOND`] a second: the
    /// text is the peer's) and tells the observers, from the facts read when it arrived.
    pub(super) fn decided(&mut self, facts: &RequestFacts<'_>, reply: &Reply, received: Instant) {
        let target = "actix_zap::decision";
        if log::log_enabled!(target: target, log::Level::Debug) {
            if let Some(held_back) = self.decision_log.spend(Instant::now()) {
                if held_back > 0 {
                    debug!(target: target, "{held_back} decision lines held back (flood)");
                }
                debug!(
                    target: target,
                    "{} {:?} domain={:?} address={:?} mechanism={} user_id={:?}{}",
                    reply.status,
                    reply.text,
                    facts.domain,
                    facts.address,
                    facts.mechanism,
                    reply.user_id,
                    facts.client
                );
            }
        }
        self.observers.record(facts, reply, received.elapsed());
    }
}

impl PolicyActor {
    /// The decision for a parsed request, when it arrives and when its turn comes: a
    /// throttled PLAIN attempt is refused before anything is decided or run (one comparison
    /// while the throttle's table is empty), else the policy decides.
    pub(super) fn decide_request(&self, request: &Request<'_>, now: &Now) -> Decision {
        match self.throttle.check(request, now.instant()) {
            Some(refusal) => Decision::Reply(refusal.reply(request.request_id)),
            None => self.policy.decide(request, now),
        }
    }
}

impl Handler<Authenticate> for PolicyActor {
    type Result = ActorResponse<Self, Reply>;

    fn handle(
        &mut self,
        Authenticate(frames): Authenticate,
        _: &mut Self::Context,
    ) -> Self::Result {
        // The one reading of the clocks for this decision (the wall clock only if a key with
        // an expiry asks for it).
        let now = Now::read();
        if let Some(stall) = self.watchdog.as_mut().and_then(Watchdog::request) {
            self.stalled(stall);
        }
        // Parsed once: the decision, the log and the observers all read this.
        let (decision, facts) = match Request::parse(&frames) {
            Ok(request) => (
                self.decide_request(&request, &now),
                RequestFacts::of(request),
            ),
            Err(error) => (
                Decision::Reply(Policy::refuse_malformed(&frames, &error)),
                RequestFacts::unparsed(&frames),
            ),
        };
        let carried = Carried::Arrived {
            frames: &frames,
            facts,
            received: now.instant(),
        };
        self.route(decision, carried, &now).into_response()
    }
}

impl Handler<Inspect> for PolicyActor {
    type Result = MessageResult<Inspect>;

    fn handle(&mut self, _: Inspect, _: &mut Self::Context) -> Self::Result {
        let mut snapshot = self.policy.snapshot();
        snapshot.sessions = self.sessions_bound();
        MessageResult(snapshot)
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
        stats.sessions_bound = self.board.as_ref().map_or(0, |board| board.bound_count());
        if let Some(board) = &self.board {
            stats.sessions_ended += board.ended_at_first_message();
        }
        stats.sources = self.served.stats(&self.policy, Instant::now());
        stats.throttle_entries = self.throttle.len();
        stats.address_queued = self.throttle.queued();
        MessageResult(stats)
    }
}

impl Handler<Stop> for PolicyActor {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl PolicyActor {
    /// Verifies a hashed PLAIN password on the workers, under the request's deadline, then
    /// resumes. A success is remembered first (when the hash it was checked against is still
    /// the user's), so that deciding again costs no second argon2 run.
    pub(super) fn verify(&mut self, verification: Verification, pending: Pending) -> Routed {
        self.observers.verifying();
        let outcome = within(pending.deadline, self.verifier.run(&verification));
        Routed::Later(Box::pin(outcome.into_actor(self).then(
            move |outcome, act, _| {
                let now = Now::read();
                let still_installed = (act.policy)
                    .hashed_user(&verification.table_domain, &verification.username)
                    .is_some_and(|hash| hash.as_str() == verification.hash.as_str());
                if matches!(outcome, Ok(true)) && still_installed {
                    act.verifier.cache.remember(&verification, now.instant());
                }
                act.resume(Answer::Verified(verification, outcome), pending, &now)
            },
        )))
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
