//! Observing decisions: the subscribers and counters the policy actor keeps, fed from the
//! facts of each request (the vocabulary, [`DecisionEvent`] and [`Stats`], is in
//! [`messages`](crate::messages)).

use std::borrow::Cow;
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use crate::messages::{DecisionEvent, EventMechanism, Stats, Subscriber, SubscriptionId};
use crate::policy::Attempt;
use crate::zap::{Mechanism, Reply, Request};

#[derive(Debug, Clone)]
pub(crate) struct RequestFacts<'a> {
    /// The ZAP domain; empty when the frames did not parse.
    pub(crate) domain: Cow<'a, str>,
    /// The peer address; empty when the frames did not parse.
    pub(crate) address: Cow<'a, str>,
    pub(crate) mechanism: EventMechanism,
    /// A PLAIN request's username (empty for other mechanisms): with the address, what the
    /// throttle counts a reply by, without parsing the frames again.
    pub(crate) username: Cow<'a, [u8]>,
}

impl<'a> RequestFacts<'a> {
    /// The facts of a parsed request (still borrowing its frames).
    pub(crate) fn of(request: Request<'a>) -> Self {
        let username = match request.mechanism {
            Mechanism::Plain { username, .. } => username,
            _ => &[],
        };
        RequestFacts {
            mechanism: EventMechanism::from(&request.mechanism),
            domain: request.domain,
            address: request.address,
            username: Cow::Borrowed(username),
        }
    }

    /// What the throttle counts a reply to this request by.
    pub(crate) fn attempt(&self) -> Attempt<'_> {
        match self.mechanism {
            EventMechanism::Plain => Attempt::Plain {
                address: &self.address,
                username: &self.username,
            },
            EventMechanism::Curve => Attempt::Curve {
                address: &self.address,
            },
            _ => Attempt::Other,
        }
    }

    /// The facts of frames that did not parse.
    pub(crate) fn unparsed<F: AsRef<[u8]>>(frames: &[F]) -> Self {
        RequestFacts {
            domain: Cow::Borrowed(""),
            address: Cow::Borrowed(""),
            mechanism: EventMechanism::of_frames(frames),
            username: Cow::Borrowed(&[]),
        }
    }

    /// The same facts, owning their text (to wait for a provider).
    pub(crate) fn into_owned(self) -> RequestFacts<'static> {
        RequestFacts {
            domain: Cow::Owned(self.domain.into_owned()),
            address: Cow::Owned(self.address.into_owned()),
            mechanism: self.mechanism,
            username: Cow::Owned(self.username.into_owned()),
        }
    }
}

/// How often, at most, a subscriber's dropped events are logged.
const DROP_LOG_EVERY: Duration = Duration::from_secs(10);

/// One subscription.
struct Subscription {
    id: SubscriptionId,
    subscriber: Subscriber,
    /// Events sent to an actor subscriber and not yet handled (the policy actor's thread only).
    waiting: Rc<Cell<usize>>,
    /// When its drops were last logged.
    logged: Option<Instant>,
}

/// Subscribers and counters, owned by the policy actor.
pub(crate) struct Observers {
    subscriptions: Vec<Subscription>,
    next_id: u64,
    stats: Stats,
    /// Events that may wait for one actor subscriber.
    queue: usize,
}

impl Observers {
    pub(crate) fn new(queue: usize) -> Self {
        Observers {
            subscriptions: Vec::new(),
            next_id: 0,
            stats: Stats::default(),
            queue,
        }
    }

    pub(crate) fn subscribe(&mut self, subscriber: Subscriber) -> SubscriptionId {
        self.next_id += 1;
        let id = SubscriptionId(self.next_id);
        self.subscriptions.push(Subscription {
            id,
            subscriber,
            waiting: Rc::default(),
            logged: None,
        });
        id
    }

    pub(crate) fn unsubscribe(&mut self, id: SubscriptionId) -> bool {
        let before = self.subscriptions.len();
        self.subscriptions.retain(|s| s.id != id);
        self.stats.events_dropped.remove(&id);
        before != self.subscriptions.len()
    }

    pub(crate) fn stats(&self) -> Stats {
        self.stats.clone()
    }

    /// Counts an argon2 verification started.
    pub(crate) fn verifying(&mut self) {
        self.stats.verifications += 1;
    }

    /// Counts a stall of the authenticator's thread.
    pub(crate) fn stalled(&mut self) {
        self.stats.stalls += 1;
    }

    /// Counts the reply and tells the subscribers.
    pub(crate) fn record(&mut self, facts: &RequestFacts<'_>, reply: &Reply, latency: Duration) {
        self.stats.count_reply(facts.mechanism, reply.status);
        if self.subscriptions.is_empty() {
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
        let (queue, dropped) = (self.queue, &mut self.stats.events_dropped);
        self.subscriptions
            .retain_mut(|subscription| match &subscription.subscriber {
                Subscriber::Actor(recipient) => {
                    if !recipient.connected() {
                        dropped.remove(&subscription.id);
                        return false;
                    }
                    let waiting = &subscription.waiting;
                    if waiting.get() >= queue {
                        *dropped.entry(subscription.id).or_default() += 1;
                        let now = Instant::now();
                        if subscription
                            .logged
                            .is_none_or(|at| now.duration_since(at) >= DROP_LOG_EVERY)
                        {
                            subscription.logged = Some(now);
                            log::warn!(
                                "decision events dropped for subscriber {}: {queue} are waiting \
                             for it (Settings::subscriber_queue); {} dropped so far",
                                subscription.id.0,
                                dropped[&subscription.id]
                            );
                        }
                        return true;
                    }
                    waiting.set(waiting.get() + 1);
                    let sent = recipient.send(event.clone());
                    let waiting = Rc::clone(waiting);
                    // On the policy actor's thread: the count needs no lock.
                    actix::spawn(async move {
                        let _ = sent.await;
                        waiting.set(waiting.get() - 1);
                    });
                    true
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
        let mut observers = Observers::new(16);
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
        let mut observers = Observers::new(16);
        let id = observers.subscribe(Subscriber::Callback(Arc::new(|_: &DecisionEvent| {
            panic!("subscriber bug")
        })));
        let ok = Reply::ok(b"1", "u", crate::zap::Metadata::empty());
        record(&mut observers, &frames("NULL"), &ok);
        assert!(observers.unsubscribe(id));
        assert!(!observers.unsubscribe(id));
    }
}
