//! What a credential store's follower and the policy actor say to each other: the store
//! is looked at once ([`CheckSource`]), registers its domains ([`Serve`]), hands over the changes it read with the proof that it was
//! up to date ([`Apply`]), reports its connection ([`Report`]) and lets go ([`Unserve`]). A
//! follower holds a [`StoreLink`] of recipients, never the actor itself.

use std::time::{Duration, Instant};

use actix::prelude::*;

use super::error::ConfigError;
use super::SourceStats;
use crate::policy::{Change, OwnerId};

/// Identifies a source within one policy actor: its id as the owner of its domains.
pub(crate) type SourceId = OwnerId;

/// Starts a source's task on the authenticator's thread, given the source's id.
pub(crate) type StartSource = Box<dyn FnOnce(SourceId) + Send>;

/// Runs a source's look at its store ([`PostgresSource::check`]) on the authenticator's
/// runtime, where its connection can run (the caller of `serve` may have no such runtime),
/// before the source is registered; answers whether the store can be followed.
///
/// [`PostgresSource::check`]: crate::postgres::PostgresSource
#[derive(Message)]
#[rtype(result = "Result<(), ConfigError>")]
pub(crate) struct CheckSource(pub(crate) CheckFuture);

/// Makes, on the authenticator's thread, the future of a [`CheckSource`].
pub(crate) type CheckFuture =
    Box<dyn FnOnce() -> futures::future::LocalBoxFuture<'static, Result<(), ConfigError>> + Send>;

/// Registers a source and its domains, then runs `start` on the actor's thread (so a
/// source can be started from any thread); answers the source's id.
#[derive(Message)]
#[rtype(result = "Result<SourceId, ConfigError>")]
pub(crate) struct Serve {
    pub(crate) name: String,
    pub(crate) domains: Vec<String>,
    /// Take the domains over from a watch or another store that owns them.
    pub(crate) take_over: bool,
    /// How long after a proof ([`Apply::proof`]) the domains may decide.
    pub(crate) max_staleness: Duration,
    pub(crate) start: StartSource,
}

/// Changes from a source, applied in order as one step; `seq` is then in force.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), ConfigError>")]
pub(crate) struct Apply {
    pub(crate) source: SourceId,
    pub(crate) seq: Option<i64>,
    pub(crate) changes: Vec<Change>,
    /// When the read was sent that proved everything the store had committed before it is
    /// in force once these changes are: the domains are trusted until then plus
    /// `max_staleness` (if every change was applied). `None`: no proof.
    pub(crate) proof: Option<Instant>,
}

/// A source's state changed (connection, error).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Report {
    pub(crate) source: SourceId,
    pub(crate) connected: bool,
    pub(crate) error: Option<String>,
    pub(crate) rejected: u64,
    pub(crate) reconnected: bool,
    /// What the source did since its last report.
    pub(crate) progress: Progress,
}

/// What a source did since its last report: counts to add, and the latest of what it says.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// Reads of the store (catch-ups, snapshots, digest comparisons).
    pub(crate) reads: u64,
    /// Snapshots forced (its position could not be verified, or the digests differed).
    pub(crate) forced: u64,
    /// Why the latest snapshot was read.
    pub(crate) snapshot_reason: Option<String>,
    /// Digest comparisons (anti-entropy) made.
    pub(crate) digest_checks: u64,
    /// The latest row refused, naming it.
    pub(crate) rejected_row: Option<String>,
}

/// The source stops serving (its handle stopped it): the policy stays as it is.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Unserve(pub(crate) SourceId);

/// Asks for one source's state as [`Stats::sources`](crate::messages::Stats::sources) shows
/// it (`None`: not served any more); its handle asks for the last error.
#[derive(Debug, Message)]
#[rtype(result = "Option<SourceStats>")]
pub(crate) struct StatsOf(pub(crate) SourceId);

/// Where a follower sends what it reads: the policy actor's recipients for its messages
/// (and where its handle asks for its state).
#[derive(Clone)]
pub(crate) struct StoreLink {
    pub(crate) apply: Recipient<Apply>,
    pub(crate) report: Recipient<Report>,
    pub(crate) unserve: Recipient<Unserve>,
    pub(crate) state: Recipient<StatsOf>,
}
