//! Observing decisions: the subscribers and counters the policy actor keeps, fed from the
//! facts of each request (the vocabulary, [`DecisionEvent`] and [`Stats`], is in
//! [`messages`](crate::messages)).

use std::borrow::Cow;
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use crate::keys::CurvePublicKey;
use crate::messages::{DecisionEvent, EventMechanism, Stats, Subscriber, SubscriptionId};
use crate::policy::Attempt;
use crate::zap::mark::MarkMechanism;
use crate::zap::{Mechanism, Reply, Request};

/// What the decision log and the observers say about a request, read from it once when it
/// arrives and carried to its reply (also across a provider consultation).
#[derive(Debug, Clone)]
pub(crate) struct RequestFacts<'a> {
    /// The ZAP domain; empty when the frames did not parse.
    pub(crate) domain: Cow<'a, str>,
    /// The peer address; empty when the frames did not parse.
    pub(crate) address: Cow<'a, str>,
    pub(crate) mechanism: EventMechanism,
    /// What the client presented to be known by (never a password): what the log and the
    /// events name, what the throttle counts a PLAIN reply by (with the address), and the
    /// name an admission's session mark carries — without parsing the frames again.
    pub(crate) client: Presented<'a>,
}

/// What a client presented to be known by: the key or username an operator trusts or looks
/// up. Public keys are no secret; passwords never get here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Presented<'a> {
    /// A CURVE client's long-term public key.
    Key(CurvePublicKey),
    /// A PLAIN client's username, as sent (shown with bytes that are not UTF-8 replaced).
    Username(Cow<'a, [u8]>),
    /// A GSSAPI client's principal, as sent (not shown: as before, the log names none).
    Principal(Cow<'a, [u8]>),
    /// Nothing to name (NULL, other mechanisms, requests that did not parse).
    Nothing,
}

impl<'a> Presented<'a> {
    fn of(mechanism: &Mechanism<'a>) -> Self {
        match mechanism {
            Mechanism::Curve { public_key } => Presented::Key(*public_key),
            Mechanism::Plain { username, .. } => Presented::Username(Cow::Borrowed(username)),
            Mechanism::Gssapi { principal } => Presented::Principal(Cow::Borrowed(principal)),
            _ => Presented::Nothing,
        }
    }

    fn into_owned(self) -> Presented<'static> {
        match self {
            Presented::Key(key) => Presented::Key(key),
            Presented::Username(name) => Presented::Username(Cow::Owned(name.into_owned())),
            Presented::Principal(name) => Presented::Principal(Cow::Owned(name.into_owned())),
            Presented::Nothing => Presented::Nothing,
        }
    }
}

/// The decision log's words for it, as pyzmq logs it (` client_key=Z85`, ` username="…"`,
/// escaped: the text is the peer's), or nothing.
impl std::fmt::Display for Presented<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Z85 has no quote, backslash or blank: nothing to escape.
            Presented::Key(key) => write!(f, " client_key={key}"),
            Presented::Username(name) => write!(f, " username={:?}", String::from_utf8_lossy(name)),
            Presented::Principal(_) | Presented::Nothing => Ok(()),
        }
    }
}

impl<'a> RequestFacts<'a> {
    /// The facts of a parsed request (still borrowing its frames).
    pub(crate) fn of(request: Request<'a>) -> Self {
        RequestFacts {
            mechanism: EventMechanism::from(&request.mechanism),
            client: Presented::of(&request.mechanism),
            domain: request.domain,
            address: request.address,
        }
    }

    /// The mechanism and name a session mark records for an admission of this request:
    /// NULL with no name, or the key, username or principal the client presented.
    pub(crate) fn admission(&self) -> Option<(MarkMechanism, Vec<u8>)> {
        Some(match (self.mechanism, &self.client) {
            (EventMechanism::Null, _) => (MarkMechanism::Null, Vec::new()),
            (EventMechanism::Plain, Presented::Username(name)) => {
                (MarkMechanism::Plain, name.to_vec())
            }
            (EventMechanism::Curve, Presented::Key(key)) => {
                (MarkMechanism::Curve, key.as_bytes().to_vec())
            }
            (EventMechanism::Gssapi, Presented::Principal(name)) => {
                (MarkMechanism::Gssapi, name.to_vec())
            }
            _ => return None,
        })
    }

    /// What the throttle counts a reply to this request by.
    pub(crate) fn attempt(&self) -> Attempt<'_> {
        match self.mechanism {
            EventMechanism::Plain => Attempt::Plain {
                address: &self.address,
                username: match &self.client {
                    Presented::Username(name) => name,
                    _ => &[],
                },
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
            client: Presented::Nothing,
        }
    }

    /// The same facts, owning their text (to wait for a provider).
    pub(crate) fn into_owned(self) -> RequestFacts<'static> {
        RequestFacts {
            domain: Cow::Owned(self.domain.into_owned()),
            address: Cow::Owned(self.address.into_owned()),
            mechanism: self.mechanism,
            client: self.client.into_owned(),
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
        #[cfg(feature = "metrics")]
        {
            crate::metrics::decision(&facts.domain, facts.mechanism, reply.status);
            crate::metrics::latency(facts.mechanism, latency);
        }
        if self.subscriptions.is_empty() {
            return;
        }
        let event = DecisionEvent {
            time: SystemTime::now(),
            domain: facts.domain.clone().into_owned(),
            address: facts.address.clone().into_owned(),
            mechanism: facts.mechanism,
            user_id: reply.user_id.clone(),
            client_key: match facts.client {
                Presented::Key(key) => Some(key),
                _ => None,
            },
            username: match &facts.client {
                Presented::Username(name) => Some(String::from_utf8_lossy(name).into_owned()),
                _ => None,
            },
            status: reply.status,
            reason: reply.text.to_string(),
            latency,
            lived: None,
        };
        self.tell(event);
    }

    /// Counts a session the authenticator ended and tells the subscribers: who (its name as
    /// the user id: key Z85, username or principal), why, and how long it lived.
    pub(crate) fn session_ended(&mut self, ended: &crate::sessions::EndedSession) {
        self.stats.sessions_ended += 1;
        #[cfg(feature = "metrics")]
        crate::metrics::session_ended(&ended.mark.domain);
        self.tell_session_ended(ended);
    }

    /// Tells the subscribers of a session ended (counted already: one ended at its first
    /// message, on the receiving thread).
    pub(crate) fn tell_session_ended(&mut self, ended: &crate::sessions::EndedSession) {
        if self.subscriptions.is_empty() {
            return;
        }
        let mark = &ended.mark;
        let event = DecisionEvent {
            time: SystemTime::now(),
            domain: mark.domain.clone(),
            address: mark.address.clone(),
            mechanism: mark_mechanism(mark.mechanism),
            user_id: name_of(mark),
            client_key: <[u8; 32]>::try_from(mark.name.as_slice())
                .ok()
                .filter(|_| mark.mechanism == crate::zap::mark::MarkMechanism::Curve)
                .map(crate::keys::CurvePublicKey::from_bytes),
            username: (mark.mechanism == crate::zap::mark::MarkMechanism::Plain)
                .then(|| String::from_utf8_lossy(&mark.name).into_owned()),
            status: crate::zap::StatusCode::Denied,
            reason: format!("Session ended: {}", ended.reason),
            latency: Duration::ZERO,
            lived: Some(crate::sessions::lived(mark)),
        };
        self.tell(event);
    }

    /// Hands one event to every subscriber (bounded per actor subscriber).
    fn tell(&mut self, event: DecisionEvent) {
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
                                target: "actix_zap::actors::PolicyActor",
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
                        log::warn!(
                            target: "actix_zap::actors::PolicyActor",
                            "a decision-event callback panicked"
                        );
                    }
                    true
                }
            });
    }
}

fn mark_mechanism(mechanism: crate::zap::mark::MarkMechanism) -> EventMechanism {
    use crate::zap::mark::MarkMechanism;
    match mechanism {
        MarkMechanism::Null => EventMechanism::Null,
        MarkMechanism::Plain => EventMechanism::Plain,
        MarkMechanism::Curve => EventMechanism::Curve,
        MarkMechanism::Gssapi => EventMechanism::Gssapi,
    }
}

/// A session's name as events show it: a key's Z85 text, a username or principal as text.
fn name_of(mark: &crate::zap::mark::SessionMark) -> String {
    match <[u8; 32]>::try_from(mark.name.as_slice()) {
        Ok(key) if mark.mechanism == crate::zap::mark::MarkMechanism::Curve => {
            crate::keys::CurvePublicKey::from_bytes(key).to_z85()
        }
        _ => String::from_utf8_lossy(&mark.name).into_owned(),
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
    fn events_and_log_words_name_the_key_or_username_never_the_password() {
        let mut observers = Observers::new(16);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        observers.subscribe(Subscriber::Callback(Arc::new(move |e: &DecisionEvent| {
            sink.lock().unwrap().push(e.clone())
        })));
        let key = crate::keys::CurvePublicKey::from_bytes([7; 32]);
        let mut curve = frames("CURVE");
        curve.truncate(6);
        curve.push(key.as_bytes().to_vec());
        let mut odd_name = frames("PLAIN");
        odd_name[6] = b"bob\"\n\xff".to_vec();
        let no = Reply::refusal(b"1", StatusCode::Denied, "Unknown key");
        let mut words = Vec::new();
        for frames in [&curve, &odd_name, &frames("NULL")[..6].to_vec()] {
            let facts = match Request::parse(frames) {
                Ok(request) => RequestFacts::of(request),
                Err(_) => RequestFacts::unparsed(frames),
            };
            words.push(facts.client.to_string());
            observers.record(&facts.into_owned(), &no, Duration::ZERO);
        }
        assert_eq!(
            words,
            [
                format!(" client_key={}", key.to_z85()),
                " username=\"bob\\\"\\n\u{fffd}\"".to_string(),
                String::new(),
            ]
        );
        let events = seen.lock().unwrap();
        assert_eq!(
            (events[0].client_key, events[0].username.as_deref()),
            (Some(key), None)
        );
        assert_eq!(
            (events[1].client_key, events[1].username.as_deref()),
            (None, Some("bob\"\n\u{fffd}"))
        );
        assert_eq!(
            (events[2].client_key, events[2].username.as_deref()),
            (None, None)
        );
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
