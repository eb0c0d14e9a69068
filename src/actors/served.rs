//! Domains served by an external source (a credential store such as PostgreSQL): which source
//! serves which domain, the deltas it sends, and its state as [`Stats`](crate::messages::Stats) shows it.
//!
//! A source registers its domains once ([`Serve`]): it becomes the owner of each domain's
//! CURVE and PLAIN settings, which start as an empty key set and an empty hashed table
//! (everyone refused, never a fallback to `"*"`) until it installs what it read. Afterwards it
//! sends batches of [`Change`]s, applied in order through the one way in as that owner. By
//! hand, a removal is always applied and holds over the source's updates (a local
//! revocation); a widening or replacing change is refused unless it takes the domain over,
//! after which the source's changes for that domain are refused (`Superseded`) and its stats
//! list the domain as taken over.
//!
//! A source's domains decide only until a deadline: [`Apply::proof`] carries the time a read
//! was sent that proved the source had applied everything the store had committed before it,
//! and the source's domains are then trusted ([`Change::Trust`]) until that time plus the
//! source's `max_staleness`. Nothing else extends it: not a connection, not a query that only
//! shows the database answers. Every decision compares the deadline with its `now`.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::PolicyActor;
use crate::messages::error::ConfigError;
use crate::messages::store::{Apply, CheckSource, Report, Serve, SourceId, StatsOf, Unserve};
use crate::messages::MechanismKind;
use crate::messages::SourceStats;
use crate::policy::{Change, Origin, Owner, Policy};

/// One source's name, domains and state.
struct SourceState {
    name: String,
    domains: Vec<String>,
    stats: SourceStats,
    /// How long after a proof its domains may decide.
    max_staleness: Duration,
    /// When the read that last proved it up to date was sent.
    proved: Option<Instant>,
}

/// Each external source's state (who owns which domain is the policy's to say).
#[derive(Default)]
pub(crate) struct Served {
    states: HashMap<SourceId, SourceState>,
}

impl Served {
    /// A domain's mechanism was taken over by hand from the source: say so in its stats.
    pub(crate) fn taken_over(&mut self, source: SourceId, domain: &str, mechanism: MechanismKind) {
        if let Some(state) = self.states.get_mut(&source) {
            let entry = format!("{domain} ({mechanism})");
            if !state.stats.taken_over.contains(&entry) {
                state.stats.taken_over.push(entry);
            }
        }
    }

    /// Each source's state by name at `now`: staleness since its last proof, and whether
    /// `policy` refuses its domains because the deadline passed.
    pub(crate) fn stats(&self, policy: &Policy, now: Instant) -> BTreeMap<String, SourceStats> {
        self.states
            .iter()
            .map(|(id, state)| (state.name.clone(), state.at(*id, policy, now)))
            .collect()
    }
}

impl Handler<CheckSource> for PolicyActor {
    type Result = ResponseFuture<Result<(), ConfigError>>;

    /// The look runs on this thread's runtime, beside the actor: it does not hold the
    /// mailbox up while it waits for the database.
    fn handle(&mut self, msg: CheckSource, _: &mut Self::Context) -> Self::Result {
        (msg.0)()
    }
}

impl SourceState {
    /// The stats of source `id` at `now`.
    fn at(&self, id: SourceId, policy: &Policy, now: Instant) -> SourceStats {
        let mut stats = self.stats.clone();
        stats.staleness = self.proved.map(|at| now.saturating_duration_since(at));
        stats.failed_closed = !policy.store_trust(id).holds_at(now);
        stats
    }
}

impl Handler<StatsOf> for PolicyActor {
    type Result = MessageResult<StatsOf>;

    fn handle(&mut self, msg: StatsOf, _: &mut Self::Context) -> Self::Result {
        let state = self.served.states.get(&msg.0);
        MessageResult(state.map(|state| state.at(msg.0, &self.policy, Instant::now())))
    }
}

impl Handler<Serve> for PolicyActor {
    type Result = Result<SourceId, ConfigError>;

    fn handle(&mut self, msg: Serve, _: &mut Self::Context) -> Self::Result {
        for domain in &msg.domains {
            crate::policy::check_domain(domain)?;
            if domain == crate::policy::ANY_DOMAIN {
                // "*" is a fallback; a store serves named domains only.
                return Err(ConfigError::Source(
                    "a credential store serves named domains, not \"*\"".into(),
                ));
            }
        }
        crate::actors::require_curve(zmq::has("curve"))?;
        let source = self.policy.new_owner_id();
        let origin = Origin::Hand {
            take_over: msg.take_over,
        };
        let claims: Vec<Change> = (msg.domains.iter())
            .flat_map(|domain| {
                [MechanismKind::Curve, MechanismKind::Plain].map(|mechanism| Change::Claim {
                    domain: domain.clone(),
                    mechanism,
                    owner: Owner::Store {
                        id: source,
                        name: msg.name.clone(),
                    },
                })
            })
            .collect();
        // All or nothing: a domain another watch or store owns refuses the whole source.
        for claim in &claims {
            self.policy.check(origin, claim)?;
        }
        for claim in claims {
            self.change(origin, claim)?;
        }
        // Everyone is refused (never a fallback to "*") until the source installs what it read.
        for domain in &msg.domains {
            for empty in Change::refuse_everyone(domain) {
                self.change(Origin::Owner(source), empty)?;
            }
        }
        let state = SourceState {
            name: msg.name,
            domains: msg.domains,
            stats: SourceStats::default(),
            max_staleness: msg.max_staleness,
            proved: None,
        };
        self.served.states.insert(source, state);
        (msg.start)(source);
        Ok(source)
    }
}

impl Handler<Apply> for PolicyActor {
    type Result = Result<(), ConfigError>;

    fn handle(&mut self, msg: Apply, _: &mut Self::Context) -> Self::Result {
        // Every change is applied even if one fails, so a failure can never leave a later
        // removal undone; the first error is reported. A domain taken over by hand refuses
        // the source's changes (`Superseded`), as it should.
        let mut first_error = None;
        for change in msg.changes {
            match self.change(Origin::Owner(msg.source), change) {
                Ok(_) | Err(ConfigError::Superseded) => {}
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        let Some(state) = self.served.states.get_mut(&msg.source) else {
            return first_error.map_or(Ok(()), Err);
        };
        if let Some(seq) = msg.seq {
            // The position in force, even lower than before (a renumbered log's snapshot).
            state.stats.applied_seq = seq;
            #[cfg(feature = "metrics")]
            crate::metrics::source_position(&state.name, seq);
        }
        // A proof counts only if everything it covers is in force.
        if let (Some(sent), None) = (msg.proof, &first_error) {
            let until = crate::policy::deadline(sent, state.max_staleness);
            state.proved = state.proved.max(Some(sent));
            // The wall-clock time of the proof in force (the latest), for the timestamp gauge.
            #[cfg(feature = "metrics")]
            if let Some(proved) = state.proved {
                let ago = Instant::now().saturating_duration_since(proved);
                let at = std::time::SystemTime::now().checked_sub(ago);
                crate::metrics::source_proved(&state.name, at.unwrap_or(std::time::UNIX_EPOCH));
            }
            let trust = Change::Trust { until };
            match self.change(Origin::Owner(msg.source), trust) {
                Ok(_) | Err(ConfigError::Superseded) => {}
                Err(error) => first_error = Some(error),
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Handler<Report> for PolicyActor {
    type Result = ();

    fn handle(&mut self, msg: Report, _: &mut Self::Context) {
        let Some(state) = self.served.states.get_mut(&msg.source) else {
            return;
        };
        let stats = &mut state.stats;
        stats.connected = msg.connected;
        match msg.error {
            Some(error) => {
                stats.last_error = Some(error);
                stats.last_error_at = Some(std::time::SystemTime::now());
            }
            // Connected and read without an error: recovered (the time stays).
            None if msg.connected => stats.last_error = None,
            None => {}
        }
        stats.rejected_rows += msg.rejected;
        stats.reconnects += u64::from(msg.reconnected);
        let progress = msg.progress;
        stats.reads += progress.reads;
        stats.snapshots_forced += progress.forced;
        stats.digest_checks += progress.digest_checks;
        if progress.snapshot_reason.is_some() {
            stats.last_snapshot_reason = progress.snapshot_reason;
            stats.last_snapshot_at = Some(std::time::SystemTime::now());
        }
        if progress.rejected_row.is_some() {
            stats.last_rejected_row = progress.rejected_row;
        }
    }
}

impl Handler<Unserve> for PolicyActor {
    type Result = ();

    fn handle(&mut self, msg: Unserve, _: &mut Self::Context) {
        let Some(state) = self.served.states.remove(&msg.0) else {
            return;
        };
        // The source lets go of the domains it still owns; what it installed stays.
        for domain in state.domains {
            for mechanism in [MechanismKind::Curve, MechanismKind::Plain] {
                let release = Change::Release {
                    domain: domain.clone(),
                    mechanism,
                };
                let _ = self.change(Origin::Owner(msg.0), release);
            }
        }
    }
}
