//! The JSON form of what the authenticator reports (feature `serde`), decided in this one
//! place: the `Serialize` impls and `serialize_with` helpers that the derives on the reported
//! types ([`Stats`](crate::messages::Stats), [`DecisionEvent`](crate::messages::DecisionEvent),
//! [`PolicySnapshot`](crate::policy::PolicySnapshot), [`SourceStats`](crate::messages::SourceStats),
//! [`Reloaded`](crate::messages::Reloaded), [`HandshakeReport`]) use, and the `Deserialize`
//! impls of what an admin API takes in ([`CurvePublicKey`], [`AddressPattern`]).
//!
//! - Maps whose keys are not strings become arrays of objects: `Stats::replies` is
//!   `[{"mechanism": "CURVE", "status": 400, "count": 3}]`, so that JSON, whose object keys
//!   are strings, loses nothing; maps keyed by a domain or a source's name stay objects.
//! - Times are RFC 3339 in UTC, to the microsecond: `"2024-02-29T00:00:00.000042Z"`.
//! - Durations are milliseconds (a number, to the microsecond), in fields named `…_ms`.
//! - CURVE public keys are their Z85 text; address patterns and IPC rules their text
//!   (`"10.0.0.0/8"`, `"ipc:uid=1000"`); paths their text (lossy UTF-8).
//! - ZAP statuses are numbers: `200`, `300`, `400`, `500`.
//! - Enumerations are tagged by a `"mode"` or `"kind"` text, in `snake_case`; mechanisms by
//!   their name (`"CURVE"`).
//!
//! Nothing secret has a form: the reported types hold no password, PHC string, secret key,
//! cache tag, session mark or connection string, and a test serializes a policy holding all of
//! them to check that none comes out.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::de::Error as _;
use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::certs::time::UtcTime;
use crate::client::{protocol_error_name, HandshakeOutcome, HandshakeReport, Mechanism};
use crate::keys::CurvePublicKey;
use crate::messages::{EventMechanism, SubscriptionId};
use crate::policy::{
    AddressPattern, AddressRules, AddressSet, CurveSummary, GssapiPolicy, IpcRule, IpcRules,
    MechanismKind, OwnerId,
};
use crate::zap::StatusCode;

/// A time as RFC 3339 in UTC.
pub(crate) fn time<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&UtcTime::from_system_time(*time).rfc3339())
}

/// An optional time as RFC 3339 in UTC, or `null`.
pub(crate) fn opt_time<S: Serializer>(time: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match time {
        Some(at) => self::time(at, s),
        None => s.serialize_none(),
    }
}

/// Milliseconds, to the microsecond (exact in an `f64` for any duration under 285 years).
fn ms(duration: Duration) -> f64 {
    duration.as_micros() as f64 / 1000.0
}

/// A duration in milliseconds.
pub(crate) fn millis<S: Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(ms(*duration))
}

/// An optional duration in milliseconds, or `null`.
pub(crate) fn opt_millis<S: Serializer>(
    duration: &Option<Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match duration {
        Some(duration) => millis(duration, s),
        None => s.serialize_none(),
    }
}

/// A path as text (lossy UTF-8: serde's own form fails on other paths).
pub(crate) fn path<P: AsRef<Path>, S: Serializer>(path: &P, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&path.as_ref().display())
}

/// An optional value as its `Display` text, or `null` (errors, for people and logs alike).
pub(crate) fn opt_text<T: Display, S: Serializer>(
    value: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => s.collect_str(value),
        None => s.serialize_none(),
    }
}

/// Values as their `Display` texts.
pub(crate) fn texts<T: Display, S: Serializer>(values: &[T], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(values.iter().map(ToString::to_string))
}

/// `Stats::replies`: `[{"mechanism", "status", "count"}]`.
pub(crate) fn replies<S: Serializer>(
    replies: &BTreeMap<(EventMechanism, StatusCode), u64>,
    s: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Replies {
        mechanism: EventMechanism,
        status: StatusCode,
        count: u64,
    }
    s.collect_seq(
        replies
            .iter()
            .map(|(&(mechanism, status), &count)| Replies {
                mechanism,
                status,
                count,
            }),
    )
}

/// `Stats::events_dropped`: `[{"subscription", "dropped"}]`.
pub(crate) fn events_dropped<S: Serializer>(
    dropped: &BTreeMap<SubscriptionId, u64>,
    s: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Dropped {
        subscription: SubscriptionId,
        dropped: u64,
    }
    s.collect_seq(dropped.iter().map(|(&subscription, &dropped)| Dropped {
        subscription,
        dropped,
    }))
}

impl Serialize for CurvePublicKey {
    /// The Z85 text.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_z85())
    }
}

impl<'de> Deserialize<'de> for CurvePublicKey {
    /// From the Z85 text ([`CurvePublicKey::from_z85`]); other text is a typed error.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        CurvePublicKey::from_z85(&text).map_err(D::Error::custom)
    }
}

impl Serialize for AddressPattern {
    /// The text it parses from: `10.0.0.0/8`, `fe80::%eth0/64`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AddressPattern {
    /// From its text ([`AddressPattern`]'s `FromStr`); a bad one is a typed error naming it.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(D::Error::custom)
    }
}

impl Serialize for StatusCode {
    /// The number: `200`, `300`, `400` or `500`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.as_u16())
    }
}

impl Serialize for EventMechanism {
    /// `NULL`, `PLAIN`, `CURVE`, `GSSAPI`, `other` or `malformed`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Serialize for MechanismKind {
    /// `PLAIN`, `CURVE` or `GSSAPI`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for Mechanism {
    /// The name a greeting carries: `NULL`, `PLAIN`, `CURVE`, `GSSAPI` or the other name.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl Serialize for SubscriptionId {
    /// The number.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl Serialize for OwnerId {
    /// The number.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.get())
    }
}

impl Serialize for IpcRule {
    /// `ipc:any`, `ipc:uid=N` or `ipc:gid=N`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for IpcRules {
    /// The rules, sorted.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.rules())
    }
}

impl Serialize for AddressSet {
    /// The patterns, sorted.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.patterns())
    }
}

impl Serialize for AddressRules {
    /// `{"mode": "open" | "allow" | "deny", "patterns": [...]}` (no patterns when open).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (mode, set) = match self {
            AddressRules::Open => ("open", None),
            AddressRules::Allow(set) => ("allow", Some(set)),
            AddressRules::Deny(set) => ("deny", Some(set)),
        };
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("mode", mode)?;
        map.serialize_entry(
            "patterns",
            &set.map(AddressSet::patterns).unwrap_or_default(),
        )?;
        map.end()
    }
}

impl Serialize for CurveSummary {
    /// `{"mode": "allow_any"}`, `{"mode": "keys", "keys": [Z85, ...]}` or
    /// `{"mode": "provider", "provider": "blocking" | "async"}`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        match self {
            CurveSummary::AllowAny => map.serialize_entry("mode", "allow_any")?,
            CurveSummary::Keys(keys) => {
                map.serialize_entry("mode", "keys")?;
                map.serialize_entry("keys", keys)?;
            }
            CurveSummary::Provider(kind) => {
                map.serialize_entry("mode", "provider")?;
                map.serialize_entry("provider", kind)?;
            }
        }
        map.end()
    }
}

impl Serialize for GssapiPolicy {
    /// `{"mode": "any_principal"}` or `{"mode": "principals", "principals": [...]}` (sorted).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        match self {
            GssapiPolicy::AnyPrincipal => map.serialize_entry("mode", "any_principal")?,
            GssapiPolicy::Principals(principals) => {
                let mut sorted: Vec<&String> = principals.iter().collect();
                sorted.sort();
                map.serialize_entry("mode", "principals")?;
                map.serialize_entry("principals", &sorted)?;
            }
        }
        map.end()
    }
}

impl Serialize for HandshakeOutcome {
    /// `{"name": "refused" | …, "description": text}` with the outcome's own fields beside:
    /// `status` (a number), `waited_ms`, `attempts`, `code` with `code_name`, or `client` and
    /// `server` (mechanism names).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("name", self.name())?;
        match self {
            HandshakeOutcome::Refused { status }
            | HandshakeOutcome::AuthenticatorError { status } => {
                map.serialize_entry("status", status)?
            }
            HandshakeOutcome::Stalled { waited } => {
                map.serialize_entry("waited_ms", &ms(*waited))?
            }
            HandshakeOutcome::Dropped { attempts } | HandshakeOutcome::Unreachable { attempts } => {
                map.serialize_entry("attempts", attempts)?
            }
            HandshakeOutcome::ProtocolError { code } => {
                map.serialize_entry("code", code)?;
                map.serialize_entry("code_name", protocol_error_name(*code))?;
            }
            HandshakeOutcome::MechanismMismatch { client, server } => {
                map.serialize_entry("client", client)?;
                map.serialize_entry("server", server)?;
            }
            HandshakeOutcome::Admitted | HandshakeOutcome::DeadlinePassed => {}
        }
        map.serialize_entry("description", &self.to_string())?;
        map.end()
    }
}

impl Serialize for HandshakeReport {
    /// `{"outcome": {...}, "elapsed_ms", "events": [{"at_ms", "event", "value"}],
    /// "client_mechanism", "server_greeting": {"version": [3, 1], "mechanism", "as_server"} |
    /// null, "greeting_unread": why | null}`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Event {
            at_ms: f64,
            event: u16,
            value: u32,
        }
        #[derive(Serialize)]
        struct Greeting<'a> {
            version: (u8, u8),
            mechanism: &'a Mechanism,
            as_server: bool,
        }
        let events: Vec<Event> = (self.events.iter())
            .map(|&(at, event, value)| Event {
                at_ms: ms(at),
                event,
                value,
            })
            .collect();
        let greeting = self.server_greeting.as_ref().ok().map(|g| Greeting {
            version: g.version,
            mechanism: &g.mechanism,
            as_server: g.as_server,
        });
        let mut report = s.serialize_struct("HandshakeReport", 6)?;
        report.serialize_field("outcome", &self.outcome)?;
        report.serialize_field("elapsed_ms", &ms(self.elapsed))?;
        report.serialize_field("events", &events)?;
        report.serialize_field("client_mechanism", &self.client_mechanism)?;
        report.serialize_field("server_greeting", &greeting)?;
        let unread = self.server_greeting.as_ref().err().map(ToString::to_string);
        report.serialize_field("greeting_unread", &unread)?;
        report.end()
    }
}

#[cfg(test)]
mod tests;
