//! The actor shell of session revocation: each admission gets its mark, each narrowing ends
//! the sessions it took away (see [`sessions`](crate::sessions)).

use std::collections::BTreeMap;

use actix::AsyncContext as _;
use std::time::SystemTime;

use super::policy_actor::PolicyActor;

/// How often the open sessions of expired CURVE keys are looked for: a session outlives its
/// key's expiry by at most this (its handshakes are refused from the expiry on).
const EXPIRY_SWEEP: std::time::Duration = std::time::Duration::from_secs(1);
use super::observe::RequestFacts;
use crate::policy::{Grant, Narrowing};
use crate::sessions::next_serial;
use crate::zap::mark::SessionMark;
use crate::zap::{Reply, StatusCode};

impl PolicyActor {
    /// Puts the session mark into an admission's reply (a refusal is left as it is), from the
    /// facts read when the request arrived.
    pub(super) fn mark(&self, facts: &RequestFacts<'_>, reply: &mut Reply) {
        let Some(board) = &self.board else {
            return;
        };
        if reply.status != StatusCode::Ok {
            return;
        }
        let Some((mechanism, name)) = facts.admission() else {
            return;
        };
        // A 200 of this policy always has a grant; were there none, a fingerprint that matches
        // nothing makes the session end at the first narrowing of its scope.
        let grant = (self.policy)
            .grant(&facts.domain, mechanism, &name)
            .unwrap_or(Grant {
                fingerprint: [0; 16],
                flags: 0,
            });
        let mark = SessionMark {
            serial: next_serial(),
            domain: facts.domain.clone().into_owned(),
            mechanism,
            name,
            address: facts.address.clone().into_owned(),
            admitted_at: SystemTime::now(),
            generation: board.generation(),
            flags: grant.flags,
            fingerprint: grant.fingerprint,
        };
        reply.metadata = reply.metadata.with_mark(&mark.encode());
    }

    /// After a narrowing: the sessions it took away end (published to every session socket of
    /// the context, their connections shut down) before the change answers.
    pub(super) fn end_sessions(&mut self, narrowed: &[Narrowing]) {
        let Some(board) = &self.board else {
            return;
        };
        for ended in board.narrow(narrowed, &self.policy) {
            self.session_ended(&ended);
        }
    }

    /// Logs a session the board ended and tells the observers.
    fn session_ended(&mut self, ended: &crate::sessions::EndedSession) {
        log::info!(
            target: "actix_zap::sessions",
            "session {} of domain {:?} from {} ended: {}{}",
            ended.mark.serial,
            ended.mark.domain,
            ended.mark.address,
            ended.reason,
            if ended.shut_down { ", connection shut down" } else { "" }
        );
        self.observers.session_ended(ended);
    }

    /// Looks for the open sessions of expired CURVE keys every [`EXPIRY_SWEEP`] (when this
    /// actor marks admissions).
    pub(super) fn sweep_expired_sessions(&self, ctx: &mut actix::Context<Self>) {
        if self.board.is_some() {
            ctx.run_interval(EXPIRY_SWEEP, |act, _| act.end_expired_sessions());
        }
    }

    /// Ends the open sessions of CURVE keys that expired, and tells the sessions ended at their
    /// first message.
    fn end_expired_sessions(&mut self) {
        let Some(board) = &self.board else {
            return;
        };
        // Sessions a socket ended at their first message are counted; their events are told
        // here (at most one sweep late).
        for ended in board.take_late() {
            self.observers.tell_session_ended(&ended);
        }
        for ended in board.expire(&self.policy, SystemTime::now()) {
            self.session_ended(&ended);
        }
    }

    /// Bound sessions per domain.
    pub(super) fn sessions_bound(&self) -> BTreeMap<String, usize> {
        self.board
            .as_ref()
            .map(|board| board.bound_per_domain())
            .unwrap_or_default()
    }
}
