//! Observing decisions: typed events for subscribers, and counters per mechanism and status.
//!
//! Events never carry a secret: no password, no secret key; a PLAIN username appears only as
//! the user id of an admitted client.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix::{Message, Recipient};

use crate::zap::{Mechanism, Reply, Request, StatusCode};

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

/// What the decision log and the observers say about a request, read from it once when it
/// arrives and carried to its reply (also across a provider consultation).
#[derive(Debug, Clone)]
pub(crate) struct RequestFacts<'a> {
    /// The ZAP domain; empty when the frames did not parse.
    pub(crate) domain: Cow<'a, str>,
    /// The peer address; empty when the frames did not parse.
    pub(crate) address: Cow<'a, str>,
    pub(crate) mechanism: EventMechanism,
}

impl<'a> RequestFacts<'a> {
    /// The facts of a parsed request (still borrowing its frames).
    pub(crate) fn of(request: Request<'a>) -> Self {
        RequestFacts {
            mechanism: EventMechanism::from(&request.mechanism),
            domain: request.domain,
            address: request.address,
        }
    }

    /// The facts of frames that did not parse.
    pub(crate) fn unparsed<F: AsRef<[u8]>>(frames: &[F]) -> Self {
        RequestFacts {
            domain: Cow::Borrowed(""),
            address: Cow::Borrowed(""),
            mechanism: EventMechanism::of_frames(frames),
        }
    }

    /// The same facts, owning their text (to wait for a provider).
    pub(crate) fn into_owned(self) -> RequestFacts<'static> {
        RequestFacts {
            domain: Cow::Owned(self.domain.into_owned()),
            address: Cow::Owned(self.address.into_owned()),
            mechanism: self.mechanism,
        }
    }
}

/// One decision, as subscribers see it.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct DecisionEvent {
    /// When the reply was ready.
    pub time: SystemTime,
    /// The request's ZAP domain (empty for a malformed request).
    pub domain: String,
    /// The peer's address.
    pub address: String,
    /// The request's mechanism.
    pub mechanism: EventMechanism,
    /// The user id of an admitted client; empty otherwise.
    pub user_id: String,
    /// The status sent.
    pub status: StatusCode,
    /// The status text sent (why).
    pub reason: String,
    /// From the request reaching the policy to the reply being ready.
    pub latency: Duration,
}

/// Who receives decision events.
#[derive(Clone)]
pub enum Subscriber {
    /// An actor (or anything with a `Recipient`); dropped once its mailbox is gone.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubscriptionId(pub(crate) u64);

/// Counters since the authenticator started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Replies sent, by mechanism (as in [`DecisionEvent::mechanism`]) and status.
    pub replies: BTreeMap<(EventMechanism, StatusCode), u64>,
    /// Messages on the ZAP endpoint dropped without a reply: no routing envelope, or no
    /// request id to echo (libzmq never sends such; something else wrote to the endpoint).
    pub dropped: u64,
    /// Requests received and not yet answered, right now.
    pub in_flight: usize,
    /// Answers discarded because a newer request of the same session (routing id) arrived
    /// before them: a server socket that connects out reuses its session across reconnects.
    pub superseded: u64,
    /// Times the authenticator's thread did not run for longer than
    /// [`Settings::stall_warning`](crate::Settings::stall_warning) while requests waited:
    /// something blocked the actix thread (each one is also logged as a warning).
    pub stalls: u64,
    /// External credential sources (e.g. the PostgreSQL store) by name: connection, the
    /// change-log position in force, staleness, last error.
    pub sources: BTreeMap<String, crate::sources::SourceStats>,
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

/// Subscribers and counters, owned by the policy actor.
#[derive(Default)]
pub(crate) struct Observers {
    subscribers: Vec<(SubscriptionId, Subscriber)>,
    next_id: u64,
    stats: Stats,
}

impl Observers {
    pub(crate) fn subscribe(&mut self, subscriber: Subscriber) -> SubscriptionId {
        self.next_id += 1;
        let id = SubscriptionId(self.next_id);
        self.subscribers.push((id, subscriber));
        id
    }

    pub(crate) fn unsubscribe(&mut self, id: SubscriptionId) -> bool {
        let before = self.subscribers.len();
        self.subscribers.retain(|(i, _)| *i != id);
        before != self.subscribers.len()
    }

    pub(crate) fn stats(&self) -> Stats {
        self.stats.clone()
    }

    /// Counts a stall of the authenticator's thread.
    pub(crate) fn stalled(&mut self) {
        self.stats.stalls += 1;
    }

    /// Counts the reply and tells the subscribers.
    pub(crate) fn record(&mut self, facts: &RequestFacts<'_>, reply: &Reply, latency: Duration) {
        self.stats.count_reply(facts.mechanism, reply.status);
        if self.subscribers.is_empty() {
            return;
        }
        let event = DecisionEvent {
            time: SystemTime::now(),
            domain: facts.domain.clone().into_owned(),
            address: facts.address.clone().into_owned(),
            mechanism: facts.mechanism,
            user_id: reply.user_id.clone(),
            status: reply.status,
            reason: reply.text.to_string(),
            latency,
        };
        self.subscribers.retain(|(_, subscriber)| match subscriber {
            Subscriber::Actor(recipient) => {
                recipient.do_send(event.clone());
                recipient.connected()
            }
            Subscriber::Callback(callback) => {
                if crate::provider::call_guarded(|| callback(&event)).is_err() {
                    log::warn!("a decision-event callback panicked");
                }
                true
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn frames(mechanism: &str) -> Vec<Vec<u8>> {
        request(mechanism)
            .iter()
            .map(|f| f.as_bytes().to_vec())
            .collect()
    }

    fn request(mechanism: &str) -> Vec<&str> {
        vec![
            "1.0", "1", "dom", "10.0.0.1", "", mechanism, "user", "hunter2",
        ]
    }

    fn record(observers: &mut Observers, frames: &[Vec<u8>], reply: &Reply) {
        match Request::parse(frames) {
            Ok(request) => observers.record(&RequestFacts::of(request), reply, Duration::ZERO),
            Err(_) => observers.record(&RequestFacts::unparsed(frames), reply, Duration::ZERO),
        }
    }

    #[test]
    fn counts_by_mechanism_and_status_and_tells_callbacks() {
        let mut observers = Observers::default();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        observers.subscribe(Subscriber::Callback(Arc::new(move |e: &DecisionEvent| {
            sink.lock().unwrap().push(e.clone())
        })));
        let ok = Reply::ok(b"1", "user", crate::zap::Metadata::empty());
        let no = Reply::refusal(b"1", StatusCode::Denied, "Invalid password");
        record(&mut observers, &frames("PLAIN"), &ok);
        record(&mut observers, &frames("PLAIN"), &no);
        record(&mut observers, &frames("PLAIN")[..3], &no);
        let stats = observers.stats();
        assert_eq!(stats.replies[&(EventMechanism::Plain, StatusCode::Ok)], 1);
        assert_eq!(stats.count(StatusCode::Denied), 2);
        let events = seen.lock().unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(
            (
                events[1].domain.as_str(),
                events[1].address.as_str(),
                events[1].reason.as_str()
            ),
            ("dom", "10.0.0.1", "Invalid password")
        );
        assert_eq!(events[1].mechanism, EventMechanism::Plain);
        assert_eq!(events[2].mechanism, EventMechanism::Malformed);
        assert!(events.iter().all(|e| !format!("{e:?}").contains("hunter2")));
    }

    #[test]
    fn events_name_null_other_and_malformed_requests() {
        let named = |m: &str| match Request::parse(&frames(m)) {
            Ok(request) => RequestFacts::of(request).mechanism,
            Err(_) => RequestFacts::unparsed(&frames(m)).mechanism,
        };
        assert_eq!(named("NULL"), EventMechanism::Null); // 2 credential frames: unparsed
        assert_eq!(named("KERBEROS5"), EventMechanism::Other);
        assert_eq!(named("GSSAPI"), EventMechanism::Gssapi);
        let mut bad_version = frames("CURVE");
        bad_version[0] = b"2.0".to_vec();
        assert_eq!(
            EventMechanism::of_frames(&bad_version),
            EventMechanism::Curve
        );
        assert_eq!(
            EventMechanism::of_frames(&bad_version[..5]),
            EventMechanism::Malformed
        );
        assert_eq!(EventMechanism::Malformed.to_string(), "malformed");
    }

    #[test]
    fn a_panicking_callback_is_contained_and_unsubscribe_works() {
        let mut observers = Observers::default();
        let id = observers.subscribe(Subscriber::Callback(Arc::new(|_: &DecisionEvent| {
            panic!("subscriber bug")
        })));
        let ok = Reply::ok(b"1", "u", crate::zap::Metadata::empty());
        record(&mut observers, &frames("NULL"), &ok);
        assert!(observers.unsubscribe(id));
        assert!(!observers.unsubscribe(id));
    }
}
