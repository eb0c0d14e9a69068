//! Observing decisions: the subscribers and counters the policy actor keeps, fed from the
//! facts of each request (the vocabulary, [`DecisionEvent`] and [`Stats`], is in
//! [`messages`](crate::messages)).

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use crate::messages::{DecisionEvent, EventMechanism, Stats, Subscriber, SubscriptionId};
use crate::zap::{Reply, Request};

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
    use crate::zap::StatusCode;
    use std::sync::{Arc, Mutex};

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
