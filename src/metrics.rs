//! What the authenticator records through the [`metrics`](https://docs.rs/metrics) facade
//! (feature `metrics`): the names and labels, as constants an application can match on (e.g.
//! to set histogram buckets in its exporter).
//!
//! The crate never installs a recorder: the application does (for Prometheus,
//! `metrics-exporter-prometheus`), **before** starting the authenticator, so that the
//! descriptions given at its start reach it. Without one, each record still builds its labels
//! (the domain's text is copied) and calls the no-op recorder.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `actix_zap_decisions_total` | counter | `domain`, `mechanism`, `status` | ZAP replies sent: what [`Stats::replies`](crate::messages::Stats::replies) counts |
//! | `actix_zap_decision_duration_seconds` | histogram | `mechanism` | from a request reaching the policy to its reply being ready (a provider's or argon2's time included) |
//! | `actix_zap_requests_in_flight` | gauge | — | requests read from the ZAP endpoint and not answered yet |
//! | `actix_zap_queue_depth` | gauge | `queue` | jobs waiting for a worker: `provider` (blocking credential providers), `argon2` (hashed PLAIN passwords) |
//! | `actix_zap_sessions_ended_total` | counter | `domain` | established sessions the authenticator ended (see [`sessions`](crate::sessions)) |
//! | `actix_zap_source_position` | gauge | `source` | the change-log sequence number in force of a credential store source |
//! | `actix_zap_source_last_proof_timestamp_seconds` | gauge | `source` | Unix time of the read that last proved the source up to date (alert on `time() - this`) |
//!
//! Label values:
//! - `domain`: the ZAP domain the server socket set (`ZMQ_ZAP_DOMAIN`, chosen by the
//!   application, never by a client); empty for a request that did not parse and for the
//!   replies the ZAP socket gives itself (`300` beyond the in-flight bound while stopping,
//!   `500` when the policy actor is gone).
//! - `mechanism`: `NULL`, `PLAIN`, `CURVE`, `GSSAPI`, `other` (a name libzmq never sends) or
//!   `malformed` (fewer than 6 frames).
//! - `status`: `200`, `300`, `400` or `500`.
//! - `queue`: `provider` or `argon2`.
//! - `source`: the source's name (`PostgresSource::named`, by default its schema).
//!
//! No label ever holds a peer address, a username, a key or a user id: each would make a
//! series per client, and an attacker could grow the exporter's memory at will.
//!
//! The source gauges are a position and a time, not an age: a gauge is only set when
//! something happens, and an age set then would stand still while the source fell behind.
//!
//! The recording itself happens in the actor shell, where the
//! [`Stats`](crate::messages::Stats) are counted (never in the sans-IO
//! [`policy`](crate::policy)), through the functions below: each records into whatever
//! recorder is current at the call (the application's, or a test's local one). No handle is
//! kept, so a recorder installed after the authenticator started is used from then on.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::messages::EventMechanism;
use crate::zap::StatusCode;

/// ZAP replies sent (counter; `domain`, `mechanism`, `status`).
pub const DECISIONS: &str = "actix_zap_decisions_total";
/// Decision latency in seconds (histogram; `mechanism`).
pub const DECISION_SECONDS: &str = "actix_zap_decision_duration_seconds";
/// Requests read and not answered (gauge).
pub const IN_FLIGHT: &str = "actix_zap_requests_in_flight";
/// Jobs waiting for a worker (gauge; `queue`: `provider` or `argon2`).
pub const QUEUE_DEPTH: &str = "actix_zap_queue_depth";
/// Sessions the authenticator ended (counter; `domain`).
pub const SESSIONS_ENDED: &str = "actix_zap_sessions_ended_total";
/// A source's change-log position in force (gauge; `source`).
pub const SOURCE_POSITION: &str = "actix_zap_source_position";
/// Unix time of a source's last proof of being up to date (gauge; `source`).
pub const SOURCE_LAST_PROOF: &str = "actix_zap_source_last_proof_timestamp_seconds";

/// Gives every metric its description and unit (sent to the recorder current now: the
/// authenticator's start).
pub(crate) fn describe() {
    use ::metrics::Unit;
    ::metrics::describe_counter!(DECISIONS, Unit::Count, "ZAP replies sent");
    ::metrics::describe_histogram!(
        DECISION_SECONDS,
        Unit::Seconds,
        "From a ZAP request reaching the policy to its reply being ready"
    );
    ::metrics::describe_gauge!(IN_FLIGHT, Unit::Count, "ZAP requests read and not answered");
    ::metrics::describe_gauge!(QUEUE_DEPTH, Unit::Count, "Jobs waiting for a worker");
    ::metrics::describe_counter!(
        SESSIONS_ENDED,
        Unit::Count,
        "Established sessions the authenticator ended"
    );
    ::metrics::describe_gauge!(
        SOURCE_POSITION,
        Unit::Count,
        "Change-log sequence number in force of a credential source"
    );
    ::metrics::describe_gauge!(
        SOURCE_LAST_PROOF,
        Unit::Seconds,
        "Unix time of the read that last proved a credential source up to date"
    );
}

/// One reply sent, for `domain` (empty when unknown).
pub(crate) fn decision(domain: &str, mechanism: EventMechanism, status: StatusCode) {
    // The 3-byte frame is ASCII digits.
    let status = std::str::from_utf8(status.as_bytes()).unwrap_or("???");
    ::metrics::counter!(
        DECISIONS,
        "domain" => domain.to_owned(),
        "mechanism" => mechanism.as_str(),
        "status" => status
    )
    .increment(1);
}

/// How long a decision took.
pub(crate) fn latency(mechanism: EventMechanism, latency: Duration) {
    ::metrics::histogram!(DECISION_SECONDS, "mechanism" => mechanism.as_str()).record(latency);
}

/// Requests in flight now.
pub(crate) fn in_flight(count: usize) {
    ::metrics::gauge!(IN_FLIGHT).set(count as f64);
}

/// A job joined (`+1.0`) or left (`-1.0`) a pool's queue. Counted up and down rather than set
/// from the channel's length: the workers take jobs on their own threads, and increments from
/// several threads add up in any order, where lengths read apart could be set out of order.
pub(crate) fn queue_moved(queue: &'static str, by: f64) {
    ::metrics::gauge!(QUEUE_DEPTH, "queue" => queue).increment(by);
}

/// A session the authenticator ended.
pub(crate) fn session_ended(domain: &str) {
    ::metrics::counter!(SESSIONS_ENDED, "domain" => domain.to_owned()).increment(1);
}

/// A source's position in force.
pub(crate) fn source_position(source: &str, seq: i64) {
    ::metrics::gauge!(SOURCE_POSITION, "source" => source.to_owned()).set(seq as f64);
}

/// A source was proved up to date by a read sent at `proved` (wall-clock time).
pub(crate) fn source_proved(source: &str, proved: SystemTime) {
    let unix = proved.duration_since(UNIX_EPOCH).unwrap_or_default();
    ::metrics::gauge!(SOURCE_LAST_PROOF, "source" => source.to_owned()).set(unix.as_secs_f64());
}
