//! What the authenticator tells: decision events for subscribers, counters, and the state
//! of each credential source.
//!
//! Events never carry a secret: no password, no secret key. They do carry what a client
//! presented to be known by — its CURVE public key or its PLAIN username — admitted or
//! refused: that key is what an operator needs to trust a refused client.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix::{Message, Recipient};

use crate::keys::CurvePublicKey;
use crate::zap::{Mechanism, StatusCode};

/// A request's mechanism as events and counters name it.
///
/// Unlike [`MechanismKind`](crate::messages::MechanismKind), which names what a policy can
/// configure, this names what arrived: including `NULL`, names libzmq never sends, and
/// frames that are not a request at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum EventMechanism {
    /// `NULL`.
    Null,
    /// `PLAIN`.
    Plain,
    /// `CURVE`.
    Curve,
    /// `GSSAPI`.
    Gssapi,
    /// Another name in the mechanism frame (libzmq never sends one; it is refused).
    Other,
    /// No mechanism frame: fewer than 6 frames.
    Malformed,
}

impl EventMechanism {
    /// `NULL`, `PLAIN`, `CURVE`, `GSSAPI`, `other` or `malformed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventMechanism::Null => "NULL",
            EventMechanism::Plain => "PLAIN",
            EventMechanism::Curve => "CURVE",
            EventMechanism::Gssapi => "GSSAPI",
            EventMechanism::Other => "other",
            EventMechanism::Malformed => "malformed",
        }
    }

    /// Names the mechanism frame (frame 5) of request frames that did not parse: a bad
    /// version or credentials that do not fit still name their mechanism.
    pub(crate) fn of_frames<F: AsRef<[u8]>>(frames: &[F]) -> Self {
        match frames.get(5).map(AsRef::as_ref) {
            None => EventMechanism::Malformed,
            Some(b"NULL") => EventMechanism::Null,
            Some(b"PLAIN") => EventMechanism::Plain,
            Some(b"CURVE") => EventMechanism::Curve,
            Some(b"GSSAPI") => EventMechanism::Gssapi,
            Some(_) => EventMechanism::Other,
        }
    }
}

impl From<&Mechanism<'_>> for EventMechanism {
    fn from(mechanism: &Mechanism<'_>) -> Self {
        match mechanism {
            Mechanism::Null => EventMechanism::Null,
            Mechanism::Plain { .. } => EventMechanism::Plain,
            Mechanism::Curve { .. } => EventMechanism::Curve,
            Mechanism::Gssapi { .. } => EventMechanism::Gssapi,
            Mechanism::Unknown { .. } => EventMechanism::Other,
        }
    }
}

impl std::fmt::Display for EventMechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One decision, as subscribers see it.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[rtype(result = "()")]
pub struct DecisionEvent {
    /// When the reply was ready.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::serialize::time"))]
    pub time: SystemTime,
    /// The request's ZAP domain (empty for a malformed request).
    pub domain: String,
    /// The peer's address.
    pub address: String,
    /// The request's mechanism.
    pub mechanism: EventMechanism,
    /// The user id of an admitted client; empty otherwise.
    pub user_id: String,
    /// A CURVE client's long-term public key (`Display` gives its Z85 text), admitted or
    /// refused: the key to trust, or to revoke. `None` for other mechanisms and for requests
    /// that did not parse.
    pub client_key: Option<CurvePublicKey>,
    /// The username a PLAIN client sent (never its password), admitted or refused, bytes
    /// that are not UTF-8 replaced by `U+FFFD`. `None` for other mechanisms and for requests
    /// that did not parse.
    pub username: Option<String>,
    /// The status sent.
    pub status: StatusCode,
    /// The status text sent (why).
    pub reason: String,
    /// From the request reaching the policy to the reply being ready.
    #[cfg_attr(
        feature = "serde",
        serde(rename = "latency_ms", serialize_with = "crate::serialize::millis")
    )]
    pub latency: Duration,
    /// `Some` for a session the authenticator ended (the reason starts with `Session ended:`,
    /// the user id names the key, username or principal): how long it lived since its
    /// admission. `None` for a handshake's decision.
    #[cfg_attr(
        feature = "serde",
        serde(rename = "lived_ms", serialize_with = "crate::serialize::opt_millis")
    )]
    pub lived: Option<Duration>,
}

/// Who receives decision events.
#[derive(Clone)]
pub enum Subscriber {
    /// An actor (or anything with a `Recipient`); dropped once its mailbox is gone. At most
    /// [`Settings::subscriber_queue`](crate::Settings::subscriber_queue) events wait for it
    /// (sent, not yet handled); beyond, new events for it are dropped and counted in
    /// [`Stats::events_dropped`].
    Actor(Recipient<DecisionEvent>),
    /// A plain callback, run on the authenticator's thread: keep it quick. A panic in it is
    /// caught and logged.
    Callback(Arc<dyn Fn(&DecisionEvent) + Send + Sync>),
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subscriber::Actor(_) => f.write_str("Subscriber::Actor"),
            Subscriber::Callback(_) => f.write_str("Subscriber::Callback"),
        }
    }
}

/// Identifies a subscription, to end it with `Unsubscribe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubscriptionId(pub(crate) u64);

/// Counters since the authenticator started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Stats {
    /// Replies sent, by mechanism (as in [`DecisionEvent::mechanism`]) and status.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::serialize::replies"))]
    pub replies: BTreeMap<(EventMechanism, StatusCode), u64>,
    /// Messages on the ZAP endpoint dropped without a reply: no routing envelope, or no
    /// request id to echo (libzmq never sends such; something else wrote to the endpoint).
    pub dropped: u64,
    /// Requests received and not yet answered, right now.
    pub in_flight: usize,
    /// Answers discarded because a newer request of the same session (routing id) arrived
    /// before them: a server socket that connects out reuses its session across reconnects.
    pub superseded: u64,
    /// Times the authenticator stopped reading the ZAP endpoint because
    /// [`Settings::max_in_flight`](crate::Settings::max_in_flight) requests were being
    /// decided while more waited (counted once per stretch): the next handshakes waited in
    /// libzmq for a slot instead of being refused. Often: raise the bound, or look at what
    /// holds the requests (a slow provider).
    pub held_back: u64,
    /// Times the authenticator's thread did not run for longer than
    /// [`Settings::stall_warning`](crate::Settings::stall_warning) while requests waited:
    /// something blocked the actix thread (each one is also logged as a warning).
    pub stalls: u64,
    /// External credential sources (e.g. the PostgreSQL store) by name: connection, the
    /// change-log position in force, staleness, last error.
    pub sources: BTreeMap<String, SourceStats>,
    /// Decision events dropped per actor subscriber because
    /// [`Settings::subscriber_queue`](crate::Settings::subscriber_queue) of them were waiting
    /// for it already (a subscriber slower than the decisions).
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serialize::events_dropped")
    )]
    pub events_dropped: BTreeMap<SubscriptionId, u64>,
    /// argon2 verifications of hashed PLAIN passwords handed to the workers (a full queue
    /// refuses some: [`Settings::hash_queue`](crate::Settings::hash_queue)): one per attempt
    /// whose password had to be checked, an unknown username's dummy verification included;
    /// an outcome that stands after a policy change is not checked again.
    pub verifications: u64,
    /// Entries (peer addresses and (address, username) pairs) in the failure throttle's
    /// table right now (see [`Throttle`](crate::policy::Throttle)).
    pub throttle_entries: usize,
    /// Established sessions ended by narrowings since the authenticator started (see
    /// [`sessions`](crate::sessions)); each is also a decision event (for a session ended at
    /// its first message, judged on the receiving thread, up to a second later).
    pub sessions_ended: u64,
    /// Sessions bound right now (seen by a session socket of this context, not ended).
    pub sessions_bound: usize,
    /// Requests waiting right now for their peer address's verifications or provider lookups
    /// in flight to finish, over the address's cap
    /// ([`Settings::address_queue`](crate::Settings::address_queue)).
    pub address_queued: usize,
}

impl Stats {
    /// Counts one reply.
    pub(crate) fn count_reply(&mut self, mechanism: EventMechanism, status: StatusCode) {
        *self.replies.entry((mechanism, status)).or_default() += 1;
    }

    /// Replies with this status, over all mechanisms.
    pub fn count(&self, status: StatusCode) -> u64 {
        self.replies
            .iter()
            .filter(|((_, s), _)| *s == status)
            .map(|(_, n)| n)
            .sum()
    }
}

/// The state of one external source, in [`Stats::sources`](crate::messages::Stats::sources).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SourceStats {
    /// Connected to its database (or whatever it follows) now.
    pub connected: bool,
    /// The last change-log sequence number whose changes are in force (0: none yet). It
    /// goes down when a snapshot of a store whose log was renumbered is applied.
    pub applied_seq: i64,
    /// Time since the last proof that the source was up to date: since the sending of the
    /// last read that found nothing committed beyond what it had applied (`None`: none yet).
    #[cfg_attr(
        feature = "serde",
        serde(
            rename = "staleness_ms",
            serialize_with = "crate::serialize::opt_millis"
        )
    )]
    pub staleness: Option<Duration>,
    /// Its domains refuse everyone: no read proved them up to date within the source's
    /// `max_staleness` (true before the first read too).
    pub failed_closed: bool,
    /// The last error (connection, query or a malformed row), with its cause and, for a
    /// connection, the database's host, port, user and name (never a password); cleared
    /// once the source has connected and read the store again without one.
    pub last_error: Option<String>,
    /// When the last error happened (kept when [`last_error`](Self::last_error) clears).
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serialize::opt_time")
    )]
    pub last_error_at: Option<SystemTime>,
    /// Rows refused as malformed (bad key, bad metadata, bad or too costly hash) so far,
    /// counted at each read that brought them.
    pub rejected_rows: u64,
    /// The latest row refused as malformed, naming its domain and key or user.
    pub last_rejected_row: Option<String>,
    /// Reads of the store so far: snapshots, change-log catch-ups and digest comparisons
    /// (heartbeats not counted). Notifications are only hints: a flood of them costs at most
    /// one read every few milliseconds.
    pub reads: u64,
    /// Snapshots read because the position in force could not be verified (another store,
    /// a log renumbered, rewritten or pruned past it) or the anti-entropy digests differed.
    pub snapshots_forced: u64,
    /// Why the latest snapshot was read (`"first read"` for the first one).
    pub last_snapshot_reason: Option<String>,
    /// When the latest snapshot was read (its reason reported).
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serialize::opt_time")
    )]
    pub last_snapshot_at: Option<SystemTime>,
    /// Anti-entropy comparisons of the store's digest with the source's so far.
    pub digest_checks: u64,
    /// Reconnections so far.
    pub reconnects: u64,
    /// Domains taken over by hand (`"domain (MECHANISM)"`): the source no longer changes them.
    pub taken_over: Vec<String>,
}
