//! Observing decisions: typed events for subscribers, and counters per mechanism and status.
//!
//! Events never carry a secret: no password, no secret key; a PLAIN username appears only as
//! the user id of an admitted client.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix::{Message, Recipient};

use crate::zap::{Reply, Request, StatusCode};

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
    /// `NULL`, `PLAIN`, `CURVE`, `GSSAPI`, another name, or `malformed`.
    pub mechanism: String,
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
    pub replies: BTreeMap<(String, StatusCode), u64>,
    /// Requests dropped without a reply (no request id to echo).
    pub dropped: u64,
    /// Requests received and not yet answered, right now.
    pub in_flight: usize,
    /// Answers discarded because a newer request of the same session (routing id) arrived
    /// before them: a server socket that connects out reuses its session across reconnects.
    pub superseded: u64,
    /// External credential sources (e.g. the PostgreSQL store) by name: connection, the
    /// change-log position in force, staleness, last error.
    pub sources: BTreeMap<String, crate::sources::SourceStats>,
}

impl Stats {
    /// Counts one reply.
    pub(crate) fn count_reply(&mut self, mechanism: &str, status: StatusCode) {
        *self
            .replies
            .entry((mechanism.to_owned(), status))
            .or_default() += 1;
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

/// The mechanism label of a request, without allocating for the usual ones.
pub(crate) fn mechanism_label(frames: &[Vec<u8>]) -> &'static str {
    match frames.get(5).map(Vec::as_slice) {
        _ if frames.len() < 6 => "malformed",
        Some(b"NULL") => "NULL",
        Some(b"PLAIN") => "PLAIN",
        Some(b"CURVE") => "CURVE",
        Some(b"GSSAPI") => "GSSAPI",
        _ => "other",
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

    pub(crate) fn dropped(&mut self) {
        self.stats.dropped += 1;
    }

    /// Counts the reply and tells the subscribers.
    pub(crate) fn record(&mut self, frames: &[Vec<u8>], reply: &Reply, latency: Duration) {
        let label = mechanism_label(frames);
        self.stats.count_reply(label, reply.status);
        if self.subscribers.is_empty() {
            return;
        }
        let (domain, address, mechanism) = match Request::parse(frames) {
            Ok(r) => (
                r.domain.into_owned(),
                r.address.into_owned(),
                r.mechanism.name().into_owned(),
            ),
            Err(_) => (String::new(), String::new(), label.to_owned()),
        };
        let event = DecisionEvent {
            time: SystemTime::now(),
            domain,
            address,
            mechanism,
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
        [
            "1.0", "1", "dom", "10.0.0.1", "", mechanism, "user", "hunter2",
        ]
        .iter()
        .map(|f| f.as_bytes().to_vec())
        .collect()
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
        observers.record(&frames("PLAIN"), &ok, Duration::from_micros(5));
        observers.record(&frames("PLAIN"), &no, Duration::from_micros(5));
        observers.record(&frames("PLAIN")[..3], &no, Duration::ZERO);
        let stats = observers.stats();
        assert_eq!(stats.replies[&("PLAIN".to_string(), StatusCode::Ok)], 1);
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
        assert_eq!(events[2].mechanism, "malformed");
        assert!(events.iter().all(|e| !format!("{e:?}").contains("hunter2")));
    }

    #[test]
    fn a_panicking_callback_is_contained_and_unsubscribe_works() {
        let mut observers = Observers::default();
        let id = observers.subscribe(Subscriber::Callback(Arc::new(|_: &DecisionEvent| {
            panic!("subscriber bug")
        })));
        let ok = Reply::ok(b"1", "u", crate::zap::Metadata::empty());
        observers.record(&frames("NULL"), &ok, Duration::ZERO);
        assert!(observers.unsubscribe(id));
        assert!(!observers.unsubscribe(id));
    }
}
