//! Domains served by an external source (a credential store such as PostgreSQL): which source
//! serves which domain, the deltas it sends, and its state as [`Stats`](crate::messages::Stats) shows it.
//!
//! A source registers its domains once ([`Serve`]): each then has an empty CURVE key set and
//! an empty hashed PLAIN table (everyone refused, never a fallback to `"*"`) until the source
//! installs what it read. Afterwards it sends batches of [`Delta`]s, applied in order through
//! the policy's own methods, each bumping the epoch. A user who configures a served domain's
//! mechanism by hand (any configuration message, a delta message, or a watch) takes it over:
//! the source's later deltas for it are ignored.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use log::{debug, warn};

use crate::actors::PolicyActor;
use crate::certs::CertStore;
use crate::error::ConfigError;
use crate::keys::CurvePublicKey;
use crate::messages::MechanismKind;
use crate::policy::{CurveEntry, CurvePolicy, HashedPassword, HashedTable};

/// The state of one external source, in [`Stats::sources`](crate::messages::Stats::sources).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Connected to its database (or whatever it follows) now.
    pub connected: bool,
    /// The last change-log sequence number whose changes are in force (0: none yet).
    pub applied_seq: i64,
    /// Time since the source last heard from its database (`None`: never).
    pub staleness: Option<Duration>,
    /// Its domains refuse everyone because it was out of touch longer than allowed.
    pub failed_closed: bool,
    /// The last error (connection, query or a malformed row), if any.
    pub last_error: Option<String>,
    /// Rows refused as malformed (bad key, bad or too costly hash) so far.
    pub rejected_rows: u64,
    /// Reconnections so far.
    pub reconnects: u64,
}

/// One change from a source, for one domain.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub enum Delta {
    /// The domain's CURVE key set, whole (a snapshot).
    InstallCurve(String, CertStore),
    /// The domain's hashed PLAIN table, whole (a snapshot).
    InstallPlain(String, HashedTable),
    /// A key added or changed.
    UpsertCurve(String, CurveEntry),
    /// A key removed, disabled, or replaced by a malformed row.
    RemoveCurve(String, CurvePublicKey),
    /// A user added or changed.
    UpsertPlain(String, String, HashedPassword),
    /// A user removed, disabled, or replaced by a malformed row.
    RemovePlain(String, String),
}

impl Delta {
    fn target(&self) -> (&str, MechanismKind) {
        match self {
            Delta::InstallCurve(d, _) | Delta::UpsertCurve(d, _) | Delta::RemoveCurve(d, _) => {
                (d, MechanismKind::Curve)
            }
            Delta::InstallPlain(d, _) | Delta::UpsertPlain(d, ..) | Delta::RemovePlain(d, _) => {
                (d, MechanismKind::Plain)
            }
        }
    }
}

/// Identifies a source within one policy actor.
pub(crate) type SourceId = u64;

/// Which source serves which domain, and each source's state.
#[derive(Default)]
pub(crate) struct Served {
    owners: HashMap<(String, MechanismKind), SourceId>,
    states: HashMap<SourceId, (String, SourceStats, Option<Instant>)>,
    next: SourceId,
}

impl Served {
    /// Ends a source's hold on a domain's mechanism (a configuration by hand).
    pub(crate) fn release(&mut self, domain: &str, mechanism: MechanismKind) {
        if let Some(source) = self.owners.remove(&(domain.to_owned(), mechanism)) {
            debug!("domain {domain:?} ({mechanism:?}) is configured by hand now, not by source {source}");
        }
    }

    /// Each source's state by name, staleness as of now.
    pub(crate) fn stats(&self) -> BTreeMap<String, SourceStats> {
        self.states
            .values()
            .map(|(name, stats, contact)| {
                let mut stats = stats.clone();
                stats.staleness = contact.map(|at| at.elapsed());
                (name.clone(), stats)
            })
            .collect()
    }
}

/// Starts a source's task on the authenticator's thread, given the source's id.
pub(crate) type StartSource = Box<dyn FnOnce(SourceId) + Send>;

/// Registers a source and its domains, then runs `start` on the actor's thread (so a
/// source can be started from any thread); answers the source's id.
#[derive(Message)]
#[rtype(result = "Result<SourceId, ConfigError>")]
pub(crate) struct Serve {
    pub(crate) name: String,
    pub(crate) domains: Vec<String>,
    pub(crate) start: StartSource,
}

/// Changes from a source, applied in order as one step; `seq` is then in force.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), ConfigError>")]
pub(crate) struct Apply {
    pub(crate) source: SourceId,
    pub(crate) seq: Option<i64>,
    pub(crate) deltas: Vec<Delta>,
}

/// A source's state changed (connection, contact, error).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Report {
    pub(crate) source: SourceId,
    pub(crate) connected: bool,
    /// It heard from its database just now.
    pub(crate) contact: bool,
    pub(crate) failed_closed: Option<bool>,
    pub(crate) error: Option<String>,
    pub(crate) rejected: u64,
    pub(crate) reconnected: bool,
}

/// The source stops serving (its handle stopped it): the policy stays as it is.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Unserve(pub(crate) SourceId);

impl Handler<Serve> for PolicyActor {
    type Result = Result<SourceId, ConfigError>;

    fn handle(&mut self, msg: Serve, ctx: &mut Self::Context) -> Self::Result {
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
        self.served.next += 1;
        let source = self.served.next;
        for domain in &msg.domains {
            for mechanism in [MechanismKind::Curve, MechanismKind::Plain] {
                // The source replaces a watch or a configuration by hand, as a new watch does.
                self.stop_watch(domain, mechanism, ctx);
                self.served
                    .owners
                    .insert((domain.clone(), mechanism), source);
            }
            self.curve_ticket(domain);
            self.install_curve(domain, CurvePolicy::Keys(Arc::default()))?;
            self.policy
                .configure_hashed_plain(domain, HashedTable::new())?;
            self.verifier.forget_domain(domain);
        }
        let stats = SourceStats::default();
        self.served.states.insert(source, (msg.name, stats, None));
        (msg.start)(source);
        Ok(source)
    }
}

impl Handler<Apply> for PolicyActor {
    type Result = Result<(), ConfigError>;

    fn handle(&mut self, msg: Apply, _: &mut Self::Context) -> Self::Result {
        // Every delta is applied even if one fails, so a failure can never leave a later
        // removal undone; the first error is reported.
        let mut first_error = None;
        for delta in msg.deltas {
            let (domain, mechanism) = delta.target();
            if self.served.owners.get(&(domain.to_owned(), mechanism)) != Some(&msg.source) {
                continue; // configured by hand since, or never served
            }
            if let Err(error) = self.apply_delta(delta) {
                first_error.get_or_insert(error);
            }
        }
        if let (Some(seq), Some((_, stats, _))) = (msg.seq, self.served.states.get_mut(&msg.source))
        {
            stats.applied_seq = stats.applied_seq.max(seq);
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl PolicyActor {
    /// One delta, through the policy's epoch-bumping methods.
    fn apply_delta(&mut self, delta: Delta) -> Result<(), ConfigError> {
        match delta {
            Delta::InstallCurve(domain, store) => {
                self.curve_ticket(&domain);
                self.install_curve(&domain, CurvePolicy::Keys(Arc::new(store)))?;
            }
            Delta::InstallPlain(domain, table) => {
                self.policy.configure_hashed_plain(&domain, table)?;
                self.verifier.forget_domain(&domain);
            }
            Delta::UpsertCurve(domain, entry) => {
                self.policy.upsert_curve_keys(&domain, [entry])?;
            }
            Delta::RemoveCurve(domain, key) => {
                self.policy.remove_curve_keys(&domain, [&key]);
            }
            Delta::UpsertPlain(domain, name, hash) => {
                self.verifier.forget_user(&domain, name.as_bytes());
                self.policy
                    .upsert_hashed_users(&domain, [(name.into_bytes(), hash)])?;
            }
            Delta::RemovePlain(domain, name) => {
                self.verifier.forget_user(&domain, name.as_bytes());
                self.policy.remove_hashed_users(&domain, [name.as_bytes()]);
            }
        }
        Ok(())
    }
}

impl Handler<Report> for PolicyActor {
    type Result = ();

    fn handle(&mut self, msg: Report, _: &mut Self::Context) {
        let Some((name, stats, contact)) = self.served.states.get_mut(&msg.source) else {
            return;
        };
        stats.connected = msg.connected;
        if msg.contact {
            *contact = Some(Instant::now());
        }
        if let Some(failed) = msg.failed_closed {
            if failed && !stats.failed_closed {
                warn!(
                    "source {name:?} lost touch longer than allowed: its domains refuse everyone"
                );
            }
            stats.failed_closed = failed;
        }
        if msg.error.is_some() {
            stats.last_error = msg.error;
        }
        stats.rejected_rows += msg.rejected;
        stats.reconnects += u64::from(msg.reconnected);
    }
}

impl Handler<Unserve> for PolicyActor {
    type Result = ();

    fn handle(&mut self, msg: Unserve, _: &mut Self::Context) {
        self.served.owners.retain(|_, source| *source != msg.0);
        self.served.states.remove(&msg.0);
    }
}
