//! Requests over their address's cap wait their turn: the actor's side of the throttle's
//! per-address queues ([`Throttle::start`](crate::policy::Throttle::start)). The throttle
//! says who is next; this hands the finished request's ticket to that request's future, or
//! answers a request whose deadline came first.

use std::time::Instant;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::policy_actor::{Carried, Pending, Routed};
use super::PolicyActor;
use crate::policy::{Decision, Now, Policy, ProviderFailure, Ticket, Waiter};
use crate::zap::{Reply, Request};

/// The ticket `waiter` is handed when its turn comes, or `None` at `deadline`. A ticket sent
/// as the deadline passes is still taken, so that it is handed on rather than lost.
async fn turn(mut receiver: oneshot::Receiver<Ticket>, deadline: Instant) -> Option<Ticket> {
    let deadline = tokio::time::Instant::from_std(deadline);
    match tokio::time::timeout_at(deadline, &mut receiver).await {
        Ok(ticket) => ticket.ok(),
        Err(_) => {
            receiver.close();
            receiver.try_recv().ok()
        }
    }
}

impl PolicyActor {
    /// The work of `ticket` is done: the next request of its address waiting for that work
    /// takes the ticket over, else the throttle takes it back.
    pub(super) fn release(&mut self, ticket: Ticket) {
        let mut next = self.throttle.end(ticket);
        while let Some((waiter, ticket)) = next {
            // A waiter whose future is gone (answered at its deadline) hands it on.
            let refused = match self.turns.remove(&waiter) {
                Some(sender) => sender.send(ticket).err(),
                None => Some(ticket),
            };
            next = refused.and_then(|ticket| self.throttle.end(ticket));
        }
    }

    /// A request over its address's cap waits for its turn, at most until its deadline.
    pub(super) fn wait_turn(&mut self, waiter: Waiter, pending: Pending) -> Routed {
        let (sender, receiver) = oneshot::channel();
        self.turns.insert(waiter, sender);
        let waiting = turn(receiver, pending.deadline).into_actor(self);
        Routed::Later(Box::pin(
            waiting.then(move |ticket, act, _| act.take_turn(waiter, ticket, pending)),
        ))
    }

    /// Its turn came (`ticket`), or its deadline: the request is decided again now, since the
    /// policy and its address's failures may have changed while it waited (a guess queued
    /// behind the guesses that reached the threshold is throttled, not verified).
    fn take_turn(
        &mut self,
        waiter: Waiter,
        ticket: Option<Ticket>,
        mut pending: Pending,
    ) -> ResponseActFuture<Self, Reply> {
        let now = Now::read();
        let decision = self.decide_again(&pending.frames, &now);
        let decision = match ticket {
            Some(ticket) => {
                pending.ticket = Some(ticket);
                decision
            }
            None => {
                self.throttle.cancel(waiter);
                self.turns.remove(&waiter);
                self.at_deadline(decision, &now)
            }
        };
        self.route(decision, Carried::Waiting(pending), &now)
            .into_future()
    }

    /// A request decided again from its frames, the throttle first, as when it arrived.
    fn decide_again(&self, frames: &[Vec<u8>], now: &Now) -> Decision {
        match Request::parse(frames) {
            Ok(request) => self.decide_request(&request, now),
            Err(error) => Decision::Reply(Policy::refuse_malformed(frames, &error)),
        }
    }

    /// A decision for a request whose deadline passed before its work could start: the
    /// work's timeout (`500`), unless no work is needed any more.
    fn at_deadline(&self, decision: Decision, now: &Now) -> Decision {
        match decision {
            Decision::Consult(consultation) => {
                Decision::Reply(consultation.finish(Err(ProviderFailure::TimedOut), now))
            }
            Decision::Verify(verification)
                if !self.verifier.cache.remembers(&verification, now.instant()) =>
            {
                Decision::Reply(verification.finish(Err(ProviderFailure::TimedOut), now))
            }
            other => other,
        }
    }
}
