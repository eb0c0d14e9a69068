//! Guessing is throttled where it comes from: failures are counted per peer address and per
//! (peer address, username), in a table of bounded capacity whose counts decay; and the work
//! an address may have in flight (argon2 verifications, provider lookups) is capped.
//!
//! Sans-IO: time is an input (an [`Instant`] passed in). See [`Throttle`].

use std::collections::hash_map::{Entry, HashMap};
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::{Peer, Refusal};
use crate::zap::{Mechanism, Reply, Request, StatusCode};

/// The most (address, username) pairs kept for one address; beyond, the address's least
/// recently updated pair is forgotten.
pub const PAIRS_PER_ADDRESS: usize = 64;

/// The throttle's thresholds, decay, capacity and caps. The authenticator takes them from
/// its [`Settings`](crate::Settings), which documents each default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ThrottleLimits {
    /// Failures of one (address, username) pair after which that pair is refused at once.
    /// Default 5.
    pub pair_threshold: u32,
    /// Failures of one address after which its usernames with a remembered failure are
    /// refused at once. Default 20.
    pub address_threshold: u32,
    /// One failure of each count is forgotten per `decay`. Default 30 s. Zero forgets at
    /// once (nothing is ever throttled).
    pub decay: Duration,
    /// Most entries (addresses plus pairs) in the table. Default 65,536. Zero keeps nothing
    /// (the failure throttle is off; the caps below still hold).
    pub capacity: usize,
    /// Password verifications (argon2 runs) one address may have in flight (0 is taken as
    /// 1). Default 2 here; the authenticator's default is half its hash threads, at least 1.
    pub verifications_per_address: usize,
    /// Provider lookups (and user-id mappings) one address may have in flight (0 is taken as
    /// 1). Default 16.
    pub lookups_per_address: usize,
    /// Requests of one address that may wait, for each kind of work, while the address has
    /// its cap of that work in flight; beyond, [`Throttle::start`] refuses. Default 32.
    pub address_queue: usize,
}

impl Default for ThrottleLimits {
    fn default() -> Self {
        ThrottleLimits {
            pair_threshold: 5,
            address_threshold: 20,
            decay: Duration::from_secs(30),
            capacity: 65_536,
            verifications_per_address: 2,
            lookups_per_address: 16,
            address_queue: 32,
        }
    }
}

/// A peer address as the throttle groups addresses (see [`Throttle`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// An IPv4 peer, or an IPv4-mapped IPv6 one.
    V4([u8; 4]),
    /// The /64 network of an IPv6 peer.
    V6([u8; 8]),
    /// `ipc://` peers of one user id; `None` when libzmq could not read it.
    Uid(Option<u32>),
    /// An address frame this crate cannot read (empty, or another transport's).
    Unknown,
}

impl Hash for Source {
    /// One write of 16 bytes: the derived hash makes four (discriminant, length, bytes), and
    /// SipHash's cost is mostly per write (~300 instructions saved per table lookup).
    fn hash<H: Hasher>(&self, state: &mut H) {
        let (kind, value): (u64, u64) = match *self {
            Source::V4(ip) => (0, u32::from_be_bytes(ip).into()),
            Source::V6(network) => (1, u64::from_be_bytes(network)),
            Source::Uid(Some(uid)) => (2, uid.into()),
            Source::Uid(None) => (3, 0),
            Source::Unknown => (4, 0),
        };
        state.write_u128(u128::from(kind) << 64 | u128::from(value));
    }
}

impl Source {
    /// The source of a request's address frame.
    ///
    /// ```
    /// use actix_zap::policy::Source;
    /// assert_eq!(Source::of("::ffff:10.0.0.1"), Source::of("10.0.0.1"));
    /// assert_eq!(Source::of("2001:db8::1"), Source::of("2001:db8::ffff:2"));
    /// assert_eq!(Source::of("localhost:1000:1000:41"), Source::of("localhost:1000:100:42"));
    /// assert_ne!(Source::of("localhost:1000:1000:41"), Source::of("localhost:0:0:41"));
    /// ```
    pub fn of(address: &str) -> Source {
        match Peer::parse(address) {
            Peer::Ip {
                ip: IpAddr::V4(ip), ..
            } => Source::V4(ip.octets()),
            Peer::Ip {
                ip: IpAddr::V6(ip), ..
            } => match ip.to_ipv4_mapped() {
                Some(ip) => Source::V4(ip.octets()),
                None => {
                    let octets = ip.octets();
                    let mut network = [0; 8];
                    network.copy_from_slice(&octets[..8]);
                    Source::V6(network)
                }
            },
            Peer::Ipc(peer) => Source::Uid(peer.uid),
            Peer::Unknown => Source::Unknown,
        }
    }
}

/// What the throttle needs of a request to count its reply: the peer address and, for PLAIN,
/// the username. The policy actor carries these with the request from the time it arrives,
/// so that counting a reply parses nothing again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt<'a> {
    /// A PLAIN attempt of `username` from `address`.
    Plain {
        /// The peer address frame.
        address: &'a str,
        /// The username frame.
        username: &'a [u8],
    },
    /// A CURVE attempt from `address`.
    Curve {
        /// The peer address frame.
        address: &'a str,
    },
    /// Any other mechanism: nothing is counted.
    Other,
}

impl<'a> Attempt<'a> {
    /// The attempt a parsed request makes.
    pub fn of(request: &'a Request<'_>) -> Attempt<'a> {
        match request.mechanism {
            Mechanism::Plain { username, .. } => Attempt::Plain {
                address: &request.address,
                username,
            },
            Mechanism::Curve { .. } => Attempt::Curve {
                address: &request.address,
            },
            _ => Attempt::Other,
        }
    }
}

/// Failures as of `since`, one forgotten per decay after it.
#[derive(Debug, Clone, Copy)]
struct Count {
    failures: u32,
    since: Instant,
}

impl Count {
    fn new(now: Instant) -> Count {
        Count {
            failures: 0,
            since: now,
        }
    }

    /// Whole decays since `since`, and the failures left at `now`.
    fn settle(&self, now: Instant, decay: Duration) -> (u32, u32) {
        if self.failures == 0 || decay.is_zero() {
            return (0, 0);
        }
        let elapsed = now.saturating_duration_since(self.since);
        let forgotten = elapsed.as_nanos() / decay.as_nanos();
        let forgotten = u32::try_from(forgotten).unwrap_or(u32::MAX);
        (forgotten, self.failures.saturating_sub(forgotten))
    }

    /// Failures remembered at `now`.
    fn at(&self, now: Instant, decay: Duration) -> u32 {
        self.settle(now, decay).1
    }

    /// One more failure at `now`, counting at most `most`.
    fn add(&mut self, now: Instant, decay: Duration, most: u32) {
        let (forgotten, left) = self.settle(now, decay);
        if left == 0 {
            self.since = now;
        } else {
            // Keep the part of a decay already run: the next failure is forgotten on time.
            self.since += decay * forgotten;
        }
        self.failures = left.saturating_add(1).min(most.max(1));
    }
}

/// One address's counts.
#[derive(Debug)]
struct Tally {
    address: Count,
    /// Username tag and count, least recently updated first.
    pairs: Vec<(u64, Count)>,
    /// The sequence number of its last update (its place in the eviction order).
    updated: u64,
}

impl Tally {
    fn pair(&self, tag: u64) -> Option<&Count> {
        self.pairs.iter().find(|(t, _)| *t == tag).map(|(_, c)| c)
    }

    /// Drops decayed pairs; whether anything is still remembered.
    fn prune(&mut self, now: Instant, decay: Duration) -> bool {
        self.pairs.retain(|(_, count)| count.at(now, decay) > 0);
        self.address.at(now, decay) > 0 || !self.pairs.is_empty()
    }
}

/// What a request's work is, for the per-address caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Work {
    /// An argon2 verification of a hashed PLAIN password (a dummy one included).
    Verification,
    /// A CURVE provider lookup or user-id mapping (user code).
    Lookup,
}

/// Work started for one address: hand it back to [`Throttle::end`] when the request is
/// answered.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "hand the ticket back to Throttle::end when the work is done"]
pub struct Ticket {
    source: Source,
    work: Work,
}

/// A request waiting for its address's work in flight to finish: [`Throttle::end`] hands it
/// a [`Ticket`] when its turn comes, or [`Throttle::cancel`] takes it out of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Waiter {
    source: Source,
    work: Work,
    id: u64,
}

/// What [`Throttle::start`] makes of a request's work.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a ticket must be handed back, a waiter given its turn or cancelled"]
pub enum Start {
    /// Run it now, holding this ticket.
    Now(Ticket),
    /// Its address has its cap of this work in flight: the request waits its turn.
    Queued(Waiter),
    /// The cap and the queue are full: refuse the request ([`Refusal::AddressBusy`]).
    Refused(Refusal),
}

/// One kind of work of one address: how many run, and who waits (first come, first served).
#[derive(Debug, Default)]
struct Lane {
    running: usize,
    waiting: VecDeque<u64>,
}

/// Work in flight for one address.
#[derive(Debug, Default)]
struct Busy {
    verifications: Lane,
    lookups: Lane,
}

impl Busy {
    fn lane(&mut self, work: Work) -> &mut Lane {
        match work {
            Work::Verification => &mut self.verifications,
            Work::Lookup => &mut self.lookups,
        }
    }

    fn idle(&self) -> bool {
        [&self.verifications, &self.lookups]
            .iter()
            .all(|lane| lane.running == 0 && lane.waiting.is_empty())
    }
}

/// Guessing is throttled where it comes from: failures are counted per peer address and per
/// (peer address, username), in a table of bounded capacity whose counts decay; and the work
/// an address may have in flight (argon2 verifications, provider lookups) is capped.
///
/// Sans-IO, like the rest of the core: time is an input (an [`Instant`] passed in), so
/// thresholds and decay are tested without sleeping. The caller (the policy actor) asks
/// [`Throttle::check`] before it decides a request, [`Throttle::start`] before it starts work
/// for one, and tells [`Throttle::record`] every reply that may count.
///
/// # What counts, and what is refused
///
/// - A PLAIN request refused as `Invalid username`, `Invalid password` or `Empty password`
///   is a failure of its (address, username) **pair** and of its **address**. A PLAIN
///   admission forgets its pair's failures (not the address's).
/// - A CURVE request refused as `Unknown key` (not in the key set, expired, revoked, or
///   refused by a provider) is a failure of its **address**.
/// - After [`pair_threshold`](ThrottleLimits::pair_threshold) failures of a pair, that pair
///   is refused at once ([`Refusal::Throttled`], `400 Too many failures`), whatever the
///   password, until one of them is forgotten.
/// - After [`address_threshold`](ThrottleLimits::address_threshold) failures of an address,
///   every username with a failure from that address still remembered is refused at once;
///   a username without one is still verified (and never waits behind the guesses: refused
///   attempts take no argon2 and no queue).
/// - Nothing is counted or refused per username alone: nobody can lock a user out from
///   elsewhere. Counts are not per domain: a username is one pair whichever domain it is
///   tried in, and an address is one address.
/// - Counts decay: one failure is forgotten every [`decay`](ThrottleLimits::decay). A pair
///   that reached its threshold gets one more verified attempt per `decay`.
/// - Throttled attempts are not failures: they cost nothing, so they do not prolong the
///   throttle.
///
/// CURVE requests are never refused by the counts (a key-set miss costs nothing; a provider
/// is protected by the cap below).
///
/// # Peer addresses
///
/// An IPv4 peer is its address (an IPv4-mapped IPv6 address, as a dual-stack listener
/// reports IPv4 peers, is the IPv4 address); an IPv6 peer is its /64 network (one host
/// holds a /64 on most networks; the zone is ignored); an `ipc://` peer is its user id (its
/// address carries a pid, which changes with every process); an address frame this crate
/// cannot read is one source for all.
///
/// # Capacity
///
/// The table holds at most [`capacity`](ThrottleLimits::capacity) entries, an entry being an
/// address or an (address, username) pair, and at most [`PAIRS_PER_ADDRESS`] pairs per
/// address. When full, the least recently updated address is evicted with its pairs (and
/// when an address has too many pairs, its least recently updated pair): eviction only ever
/// resets the evicted peer's own counters. Usernames are kept as keyed 64-bit hashes, never
/// as text. An entry costs about 100 bytes: under 10 MiB at the default capacity.
///
/// # Work in flight
///
/// [`start`](Throttle::start) caps the verifications and the provider lookups each address
/// has in flight. Over the cap a request waits in a short queue of its address and kind of
/// work ([`address_queue`](ThrottleLimits::address_queue) places), and [`end`](Throttle::end)
/// hands each finished request's ticket to the first in line: one address never has more than
/// its cap running, so a flood from it cannot take the argon2 workers or the provider pool
/// from others, while many clients behind one address (a NAT reconnecting after a restart)
/// are served in turn instead of refused. Beyond the queue the request is refused at once
/// ([`Refusal::AddressBusy`], `400`), before any work. The caller bounds the wait (the
/// authenticator: by the request's provider deadline, then [`cancel`](Throttle::cancel)).
///
/// ```
/// use std::time::{Duration, Instant};
/// use actix_zap::policy::{Refusal, Throttle, ThrottleLimits};
/// use actix_zap::zap::{Reply, Request, RequestBuilder};
/// let mut throttle = Throttle::new(ThrottleLimits::default()); // 5 failures per pair
/// let frames = RequestBuilder::plain("alice", "guess").address("192.0.2.7").frames();
/// let request = Request::parse(&frames).unwrap();
/// let start = Instant::now();
/// assert_eq!(throttle.check(&request, start), None);
/// for _ in 0..5 {
///     throttle.record(&request, &Refusal::InvalidPassword.reply(b"1"), start);
/// }
/// assert_eq!(throttle.check(&request, start), Some(Refusal::Throttled));
/// // One failure is forgotten per decay (30 s by default): one more attempt is verified.
/// assert_eq!(throttle.check(&request, start + Duration::from_secs(30)), None);
/// ```
pub struct Throttle {
    limits: ThrottleLimits,
    tallies: HashMap<Source, Tally>,
    /// (sequence, source) in update order; an item whose sequence is not its tally's last
    /// update is stale and skipped.
    order: VecDeque<(u64, Source)>,
    next: u64,
    /// Addresses plus pairs in `tallies`.
    entries: usize,
    /// Keys the username hashes (random per throttle).
    tags: RandomState,
    busy: HashMap<Source, Busy>,
    /// Requests waiting in all the queues of `busy`.
    queued: usize,
    /// The next waiter's id.
    next_waiter: u64,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("limits", &self.limits)
            .field("addresses", &self.tallies.len())
            .field("entries", &self.entries)
            .field("busy", &self.busy.len())
            .field("queued", &self.queued)
            .finish()
    }
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle::new(ThrottleLimits::default())
    }
}

impl Throttle {
    /// An empty table with these limits.
    pub fn new(limits: ThrottleLimits) -> Self {
        Throttle {
            limits,
            tallies: HashMap::new(),
            order: VecDeque::new(),
            next: 0,
            entries: 0,
            tags: RandomState::new(),
            busy: HashMap::new(),
            queued: 0,
            next_waiter: 0,
        }
    }

    /// The limits.
    pub fn limits(&self) -> &ThrottleLimits {
        &self.limits
    }

    /// Entries (addresses plus pairs) in the table, decayed ones included until
    /// [`sweep`](Self::sweep) drops them.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// True when no failure is counted: [`check`](Self::check) then costs one comparison.
    pub fn is_empty(&self) -> bool {
        self.tallies.is_empty()
    }

    /// The username's keyed hash, in one write (its only input needs no length prefix).
    fn tag(&self, username: &[u8]) -> u64 {
        let mut hasher = self.tags.build_hasher();
        hasher.write(username);
        hasher.finish()
    }

    /// Before a request is decided: the refusal for a PLAIN attempt that its failures
    /// throttle, else `None`. Only PLAIN requests are checked, and only while the table
    /// holds an entry for their address.
    #[inline]
    pub fn check(&self, request: &Request<'_>, now: Instant) -> Option<Refusal> {
        let Mechanism::Plain { username, .. } = request.mechanism else {
            return None;
        };
        if self.tallies.is_empty() {
            return None;
        }
        self.check_plain(&request.address, username, now)
    }

    /// [`check`](Self::check) for a PLAIN attempt of `username` from `address`.
    pub fn check_plain(&self, address: &str, username: &[u8], now: Instant) -> Option<Refusal> {
        let tally = self.tallies.get(&Source::of(address))?;
        let decay = self.limits.decay;
        let pair = tally.pair(self.tag(username))?.at(now, decay);
        if pair == 0 {
            return None;
        }
        let throttled = pair >= self.limits.pair_threshold
            || tally.address.at(now, decay) >= self.limits.address_threshold;
        throttled.then_some(Refusal::Throttled)
    }

    /// Whether `reply` is a failure the throttle counts (an unknown username, a wrong or
    /// empty password, an unknown key): only such replies, and PLAIN admissions while the
    /// table is not empty, need to be [`record`](Self::record)ed.
    pub fn counts(reply: &Reply) -> bool {
        reply.status == StatusCode::Denied
            && [
                Refusal::InvalidUsername,
                Refusal::InvalidPassword,
                Refusal::EmptyPassword,
                Refusal::UnknownKey,
            ]
            .iter()
            .any(|refusal| reply.text == refusal.text())
    }

    /// After a request is answered: counts a failure (see [`counts`](Self::counts)), or
    /// forgets the pair of a PLAIN admission. Other replies change nothing.
    pub fn record(&mut self, request: &Request<'_>, reply: &Reply, now: Instant) {
        self.record_attempt(Attempt::of(request), reply, now);
    }

    /// [`record`](Self::record) for an attempt whose request is no longer at hand.
    pub fn record_attempt(&mut self, attempt: Attempt<'_>, reply: &Reply, now: Instant) {
        match attempt {
            Attempt::Plain { address, username } if reply.status == StatusCode::Ok => {
                self.admitted(address, username)
            }
            Attempt::Plain { address, username } if Throttle::counts(reply) => {
                self.failed(Source::of(address), Some(username), now)
            }
            Attempt::Curve { address } if Throttle::counts(reply) => {
                self.failed(Source::of(address), None, now)
            }
            _ => {}
        }
    }

    /// A failed PLAIN attempt of `username` from `address` at `now`.
    pub fn failed_plain(&mut self, address: &str, username: &[u8], now: Instant) {
        self.failed(Source::of(address), Some(username), now);
    }

    /// A failure of `address` alone (an unknown CURVE key) at `now`.
    pub fn failed_address(&mut self, address: &str, now: Instant) {
        self.failed(Source::of(address), None, now);
    }

    /// A PLAIN admission of `username` from `address`: its pair's failures are forgotten.
    pub fn admitted(&mut self, address: &str, username: &[u8]) {
        if self.tallies.is_empty() {
            return;
        }
        let tag = self.tag(username);
        if let Some(tally) = self.tallies.get_mut(&Source::of(address)) {
            let before = tally.pairs.len();
            tally.pairs.retain(|(t, _)| *t != tag);
            self.entries -= before - tally.pairs.len();
        }
    }

    fn failed(&mut self, source: Source, username: Option<&[u8]>, now: Instant) {
        if self.limits.capacity == 0 {
            return;
        }
        let tag = username.map(|username| self.tag(username));
        let ThrottleLimits {
            pair_threshold,
            address_threshold,
            decay,
            ..
        } = self.limits;
        let seq = self.next;
        self.next += 1;
        let mut added = 0;
        let tally = match self.tallies.entry(source) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                added += 1;
                entry.insert(Tally {
                    address: Count::new(now),
                    pairs: Vec::new(),
                    updated: seq,
                })
            }
        };
        tally.updated = seq;
        tally.address.add(now, decay, address_threshold);
        if let Some(tag) = tag {
            let mut count = match tally.pairs.iter().position(|(t, _)| *t == tag) {
                Some(at) => tally.pairs.remove(at).1,
                None => {
                    if tally.pairs.len() >= PAIRS_PER_ADDRESS {
                        tally.pairs.remove(0);
                    } else {
                        added += 1;
                    }
                    Count::new(now)
                }
            };
            count.add(now, decay, pair_threshold);
            tally.pairs.push((tag, count));
        }
        self.entries += added;
        self.order.push_back((seq, source));
        self.evict(source);
        self.compact();
    }

    /// Evicts the least recently updated addresses (never `keeping`, just updated) until
    /// the table fits; if `keeping` alone does not fit, its oldest pairs go.
    fn evict(&mut self, keeping: Source) {
        while self.entries > self.limits.capacity {
            let Some((seq, source)) = self.order.pop_front() else {
                break;
            };
            let current = self.tallies.get(&source).is_some_and(|t| t.updated == seq);
            if !current {
                continue;
            }
            if source == keeping {
                self.order.push_front((seq, source));
                let excess = self.entries - self.limits.capacity;
                if let Some(tally) = self.tallies.get_mut(&source) {
                    let dropped = excess.min(tally.pairs.len());
                    tally.pairs.drain(..dropped);
                    self.entries -= dropped;
                }
                break;
            }
            if let Some(tally) = self.tallies.remove(&source) {
                self.entries -= 1 + tally.pairs.len();
            }
        }
    }

    /// Drops stale items from the eviction order once they outnumber the current ones.
    fn compact(&mut self) {
        if self.order.len() > 2 * self.tallies.len() + 64 {
            let tallies = &self.tallies;
            self.order
                .retain(|(seq, source)| tallies.get(source).is_some_and(|t| t.updated == *seq));
        }
    }

    /// Drops what has decayed by `now` (addresses and pairs with no failure left), so that
    /// an idle table empties. The actor calls it periodically; O(entries).
    pub fn sweep(&mut self, now: Instant) {
        let decay = self.limits.decay;
        self.tallies.retain(|_, tally| tally.prune(now, decay));
        self.entries = self.tallies.values().map(|t| 1 + t.pairs.len()).sum();
        let tallies = &self.tallies;
        self.order
            .retain(|(seq, source)| tallies.get(source).is_some_and(|t| t.updated == *seq));
    }

    /// Before work starts for a request from `address`: a ticket to run it now; else, while
    /// the address has its cap of this work in flight, a place in its queue for that work
    /// (at most [`address_queue`](ThrottleLimits::address_queue) wait); else the refusal.
    pub fn start(&mut self, address: &str, work: Work) -> Start {
        let source = Source::of(address);
        // A cap of 0 would leave a queue that nothing ever serves.
        let cap = match work {
            Work::Verification => self.limits.verifications_per_address,
            Work::Lookup => self.limits.lookups_per_address,
        }
        .max(1);
        let busy = self.busy.entry(source).or_default();
        let lane = busy.lane(work);
        if lane.running < cap {
            lane.running += 1;
            return Start::Now(Ticket { source, work });
        }
        if lane.waiting.len() < self.limits.address_queue {
            let id = self.next_waiter;
            self.next_waiter += 1;
            lane.waiting.push_back(id);
            self.queued += 1;
            return Start::Queued(Waiter { source, work, id });
        }
        Start::Refused(Refusal::AddressBusy)
    }

    /// The work of `ticket` is done (the request was answered). If a request of the same
    /// address waits for this kind of work, the first in line is returned with the ticket,
    /// to run now; hand it on to that waiter, or back here if the waiter is gone.
    pub fn end(&mut self, ticket: Ticket) -> Option<(Waiter, Ticket)> {
        let Entry::Occupied(mut entry) = self.busy.entry(ticket.source) else {
            return None;
        };
        let lane = entry.get_mut().lane(ticket.work);
        if let Some(id) = lane.waiting.pop_front() {
            self.queued -= 1;
            let Ticket { source, work } = ticket;
            return Some((Waiter { source, work, id }, ticket));
        }
        lane.running = lane.running.saturating_sub(1);
        if entry.get().idle() {
            entry.remove();
        }
        None
    }

    /// Takes `waiter` out of its queue (its request is answered without waiting any longer,
    /// at its deadline); false if it is not in it (its turn came already).
    pub fn cancel(&mut self, waiter: Waiter) -> bool {
        let Entry::Occupied(mut entry) = self.busy.entry(waiter.source) else {
            return false;
        };
        let lane = entry.get_mut().lane(waiter.work);
        let Some(at) = lane.waiting.iter().position(|id| *id == waiter.id) else {
            return false;
        };
        lane.waiting.remove(at);
        self.queued -= 1;
        if entry.get().idle() {
            entry.remove();
        }
        true
    }

    /// Work in flight for the source of `address`: (verifications, lookups).
    pub fn in_flight(&self, address: &str) -> (usize, usize) {
        self.busy
            .get(&Source::of(address))
            .map_or((0, 0), |b| (b.verifications.running, b.lookups.running))
    }

    /// Requests of the source of `address` waiting their turn: (verifications, lookups).
    pub fn waiting(&self, address: &str) -> (usize, usize) {
        self.busy.get(&Source::of(address)).map_or((0, 0), |b| {
            (b.verifications.waiting.len(), b.lookups.waiting.len())
        })
    }

    /// Requests waiting their turn, over all addresses.
    pub fn queued(&self) -> usize {
        self.queued
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zap::RequestBuilder;

    const SECOND: Duration = Duration::from_secs(1);

    fn limits() -> ThrottleLimits {
        ThrottleLimits {
            pair_threshold: 3,
            address_threshold: 5,
            decay: 10 * SECOND,
            capacity: 100,
            verifications_per_address: 2,
            lookups_per_address: 1,
            address_queue: 0,
        }
    }

    fn fail(throttle: &mut Throttle, address: &str, user: &str, now: Instant, times: usize) {
        for _ in 0..times {
            throttle.failed_plain(address, user.as_bytes(), now);
        }
    }

    fn throttled(throttle: &Throttle, address: &str, user: &str, now: Instant) -> bool {
        let frames = RequestBuilder::plain(user, "pw").address(address).frames();
        let request = Request::parse(&frames).unwrap();
        match throttle.check(&request, now) {
            Some(refusal) => {
                assert_eq!(refusal, Refusal::Throttled);
                assert_eq!(refusal.status(), StatusCode::Denied);
                true
            }
            None => false,
        }
    }

    #[test]
    fn a_pair_is_throttled_at_its_threshold_and_nothing_else_is() {
        let mut throttle = Throttle::new(limits());
        let t = Instant::now();
        assert!(throttle.is_empty());
        fail(&mut throttle, "10.0.0.1", "alice", t, 2);
        assert!(!throttled(&throttle, "10.0.0.1", "alice", t));
        fail(&mut throttle, "10.0.0.1", "alice", t, 1);
        assert!(throttled(&throttle, "10.0.0.1", "alice", t));
        // Another address, another username from the same address: not throttled (nothing
        // is throttled per username alone, and the address is under its threshold).
        assert!(!throttled(&throttle, "10.0.0.2", "alice", t));
        assert!(!throttled(&throttle, "10.0.0.1", "bob", t));
        // Only PLAIN is checked.
        let frames = RequestBuilder::null().address("10.0.0.1").frames();
        assert_eq!(throttle.check(&Request::parse(&frames).unwrap(), t), None);
        assert_eq!(throttle.len(), 2, "one address, one pair");
    }

    #[test]
    fn past_the_address_threshold_only_usernames_with_failures_are_refused() {
        let mut throttle = Throttle::new(limits());
        let t = Instant::now();
        for user in ["a", "b", "c", "d", "e"] {
            fail(&mut throttle, "10.0.0.1", user, t, 1);
        }
        // Each pair has one failure (under 3), but the address has 5.
        for user in ["a", "b", "c", "d", "e"] {
            assert!(throttled(&throttle, "10.0.0.1", user, t), "{user}");
        }
        assert!(!throttled(&throttle, "10.0.0.1", "newcomer", t));
        assert!(!throttled(&throttle, "10.0.0.9", "a", t));
        // An admission forgets its pair (not the address).
        throttle.admitted("10.0.0.1", b"a");
        assert!(!throttled(&throttle, "10.0.0.1", "a", t));
        assert!(throttled(&throttle, "10.0.0.1", "b", t));
        assert_eq!(throttle.len(), 1 + 4);
    }

    #[test]
    fn counts_decay_one_failure_per_period() {
        let mut throttle = Throttle::new(limits());
        let t = Instant::now();
        fail(&mut throttle, "10.0.0.1", "alice", t, 3);
        assert!(throttled(&throttle, "10.0.0.1", "alice", t + 9 * SECOND));
        assert!(!throttled(&throttle, "10.0.0.1", "alice", t + 10 * SECOND));
        // A failure 15 s in: 2 left + 1 = 3 again; the half period already run counts, so
        // one is forgotten at 20 s, not at 25 s.
        fail(&mut throttle, "10.0.0.1", "alice", t + 15 * SECOND, 1);
        assert!(throttled(&throttle, "10.0.0.1", "alice", t + 19 * SECOND));
        assert!(!throttled(&throttle, "10.0.0.1", "alice", t + 20 * SECOND));
        // The pair never counts past its threshold: 3 failures more, then one period frees it.
        fail(&mut throttle, "10.0.0.1", "alice", t + 20 * SECOND, 10);
        assert!(!throttled(&throttle, "10.0.0.1", "alice", t + 30 * SECOND));
        // The pair's 3 are forgotten by 50 s, the address's 5 (its threshold) by 70 s: then a
        // sweep empties the table.
        throttle.sweep(t + 50 * SECOND);
        assert_eq!(throttle.len(), 1);
        throttle.sweep(t + 69 * SECOND);
        assert!(!throttle.is_empty());
        throttle.sweep(t + 70 * SECOND);
        assert!(throttle.is_empty());
        assert_eq!(throttle.len(), 0);
    }

    #[test]
    fn a_zero_decay_or_capacity_throttles_nothing() {
        let t = Instant::now();
        let mut forgetful = Throttle::new(ThrottleLimits {
            decay: Duration::ZERO,
            ..limits()
        });
        fail(&mut forgetful, "10.0.0.1", "alice", t, 10);
        assert!(!throttled(&forgetful, "10.0.0.1", "alice", t));
        let mut off = Throttle::new(ThrottleLimits {
            capacity: 0,
            ..limits()
        });
        fail(&mut off, "10.0.0.1", "alice", t, 10);
        assert!(off.is_empty());
    }

    #[test]
    fn ipv6_peers_are_grouped_by_64_and_mapped_ipv4_is_ipv4() {
        let mut throttle = Throttle::new(limits());
        let t = Instant::now();
        fail(&mut throttle, "2001:db8:1:2::1", "alice", t, 3);
        assert!(throttled(&throttle, "2001:db8:1:2:ffff::9", "alice", t));
        assert!(throttled(&throttle, "2001:db8:1:2::1%eth0", "alice", t));
        assert!(!throttled(&throttle, "2001:db8:1:3::1", "alice", t));
        fail(&mut throttle, "::ffff:192.0.2.1", "bob", t, 3);
        assert!(throttled(&throttle, "192.0.2.1", "bob", t));
        assert!(
            !throttled(&throttle, "192.0.2.2", "bob", t),
            "IPv4 is not grouped"
        );
    }

    #[test]
    fn ipc_peers_are_grouped_by_uid_whatever_their_pid() {
        let mut throttle = Throttle::new(limits());
        let t = Instant::now();
        fail(&mut throttle, "localhost:1000:1000:4242", "alice", t, 3);
        assert!(throttled(&throttle, "localhost:1000:1000:4243", "alice", t));
        assert!(throttled(&throttle, "localhost:1000:20:", "alice", t));
        assert!(!throttled(
            &throttle,
            "localhost:1001:1000:4242",
            "alice",
            t
        ));
        assert!(!throttled(&throttle, "localhost", "alice", t));
        assert_eq!(Source::of("localhost"), Source::Uid(None));
        assert_eq!(Source::of(""), Source::Unknown);
    }

    #[test]
    fn the_least_recently_updated_address_is_evicted_when_full() {
        let mut throttle = Throttle::new(ThrottleLimits {
            capacity: 6,
            ..limits()
        });
        let t = Instant::now();
        fail(&mut throttle, "10.0.0.1", "alice", t, 3); // 2 entries
        fail(&mut throttle, "10.0.0.2", "alice", t, 3); // 4
        fail(&mut throttle, "10.0.0.3", "alice", t, 3); // 6: full
        fail(&mut throttle, "10.0.0.1", "alice", t, 1); // 10.0.0.1 is the newest now
        assert_eq!(throttle.len(), 6);
        fail(&mut throttle, "10.0.0.4", "alice", t, 3); // evicts 10.0.0.2, the oldest
        assert_eq!(throttle.len(), 6);
        assert!(throttled(&throttle, "10.0.0.1", "alice", t));
        assert!(!throttled(&throttle, "10.0.0.2", "alice", t), "evicted");
        assert!(throttled(&throttle, "10.0.0.3", "alice", t));
        assert!(throttled(&throttle, "10.0.0.4", "alice", t));
        // An address with a second pair needs 3 entries: the oldest other address goes.
        fail(&mut throttle, "10.0.0.4", "bob", t, 3);
        assert_eq!(throttle.len(), 5);
        assert!(!throttled(&throttle, "10.0.0.3", "alice", t), "evicted");
        assert!(throttled(&throttle, "10.0.0.1", "alice", t));
        assert!(throttled(&throttle, "10.0.0.4", "bob", t));
    }

    #[test]
    fn an_address_keeps_a_bounded_number_of_pairs() {
        let mut throttle = Throttle::new(ThrottleLimits {
            capacity: 1_000,
            pair_threshold: 1,
            address_threshold: 1_000,
            ..limits()
        });
        let t = Instant::now();
        for n in 0..PAIRS_PER_ADDRESS + 10 {
            fail(&mut throttle, "10.0.0.1", &format!("user{n}"), t, 1);
        }
        assert_eq!(throttle.len(), 1 + PAIRS_PER_ADDRESS);
        // The oldest pairs went (the address's own), the newest stay.
        assert!(!throttled(&throttle, "10.0.0.1", "user0", t));
        let newest = format!("user{}", PAIRS_PER_ADDRESS + 9);
        assert!(throttled(&throttle, "10.0.0.1", &newest, t));
    }

    #[test]
    fn a_capacity_smaller_than_an_address_keeps_its_newest_pairs() {
        let mut throttle = Throttle::new(ThrottleLimits {
            capacity: 2,
            pair_threshold: 1,
            ..limits()
        });
        let t = Instant::now();
        fail(&mut throttle, "10.0.0.1", "alice", t, 1);
        fail(&mut throttle, "10.0.0.1", "bob", t, 1);
        assert_eq!(throttle.len(), 2);
        assert!(throttled(&throttle, "10.0.0.1", "bob", t));
        assert!(!throttled(&throttle, "10.0.0.1", "alice", t));
    }

    #[test]
    fn the_eviction_order_stays_bounded_however_often_one_address_fails() {
        let mut throttle = Throttle::new(limits());
        let t = Instant::now();
        for n in 0..10_000u32 {
            throttle.failed_address("10.0.0.1", t + Duration::from_millis(n.into()));
        }
        assert!(throttle.order.len() <= 2 + 64, "{}", throttle.order.len());
        assert_eq!(throttle.len(), 1);
    }

    #[test]
    fn replies_are_recorded_by_what_they_say() {
        let mut throttle = Throttle::new(limits());
        let t = Instant::now();
        let plain = RequestBuilder::plain("alice", "x")
            .address("10.0.0.1")
            .frames();
        let plain = Request::parse(&plain).unwrap();
        let curve = RequestBuilder::curve(crate::keys::CurvePublicKey::from_bytes([9; 32]))
            .address("10.0.0.2")
            .frames();
        let curve = Request::parse(&curve).unwrap();
        for refusal in [
            Refusal::AddressDenied,
            Refusal::Throttled,
            Refusal::AddressBusy,
            Refusal::VerificationFailed,
            Refusal::VerifierOverloaded,
        ] {
            assert!(!Throttle::counts(&refusal.reply(b"1")), "{refusal}");
            throttle.record(&plain, &refusal.reply(b"1"), t);
        }
        assert!(throttle.is_empty());
        for refusal in [
            Refusal::InvalidUsername,
            Refusal::InvalidPassword,
            Refusal::EmptyPassword,
        ] {
            throttle.record(&plain, &refusal.reply(b"1"), t);
        }
        assert!(throttled(&throttle, "10.0.0.1", "alice", t));
        // An unknown key counts for its address only.
        for _ in 0..5 {
            throttle.record(&curve, &Refusal::UnknownKey.reply(b"1"), t);
        }
        assert_eq!(throttle.len(), 3);
        fail(&mut throttle, "10.0.0.2", "bob", t, 1);
        assert!(throttled(&throttle, "10.0.0.2", "bob", t), "address past 5");
        // An admission forgets the pair.
        let ok = Reply::ok(b"1", "alice", crate::zap::Metadata::empty());
        throttle.record(&plain, &ok, t);
        assert!(!throttled(&throttle, "10.0.0.1", "alice", t));
    }

    #[test]
    fn work_in_flight_is_capped_per_address() {
        let mut throttle = Throttle::new(limits());
        let ticket = |start: Start| match start {
            Start::Now(ticket) => ticket,
            other => panic!("{other:?}"),
        };
        let first = ticket(throttle.start("10.0.0.1", Work::Verification));
        let second = ticket(throttle.start("10.0.0.1", Work::Verification));
        assert_eq!(
            throttle.start("10.0.0.1", Work::Verification),
            Start::Refused(Refusal::AddressBusy)
        );
        assert_eq!(Refusal::AddressBusy.status(), StatusCode::Denied);
        // Another address, another kind of work: their own caps.
        let other = ticket(throttle.start("10.0.0.2", Work::Verification));
        let lookup = ticket(throttle.start("10.0.0.1", Work::Lookup));
        assert_eq!(
            throttle.start("::ffff:10.0.0.1", Work::Lookup),
            Start::Refused(Refusal::AddressBusy)
        );
        assert_eq!(throttle.in_flight("10.0.0.1"), (2, 1));
        assert_eq!(throttle.end(first), None);
        let third = ticket(throttle.start("10.0.0.1", Work::Verification));
        for ticket in [second, third, other, lookup] {
            assert_eq!(throttle.end(ticket), None);
        }
        assert!(throttle.busy.is_empty());
    }

    #[test]
    fn over_the_cap_requests_wait_in_order_and_take_over_the_tickets() {
        let mut throttle = Throttle::new(ThrottleLimits {
            address_queue: 2,
            ..limits()
        });
        let Start::Now(running) = throttle.start("10.0.0.1", Work::Lookup) else {
            panic!("the first runs")
        };
        let waiter = |start: Start| match start {
            Start::Queued(waiter) => waiter,
            other => panic!("{other:?}"),
        };
        let first = waiter(throttle.start("10.0.0.1", Work::Lookup));
        let second = waiter(throttle.start("10.0.0.1", Work::Lookup));
        // Beyond cap + queue: refused at once.
        assert_eq!(
            throttle.start("10.0.0.1", Work::Lookup),
            Start::Refused(Refusal::AddressBusy)
        );
        assert_eq!(
            (throttle.waiting("10.0.0.1"), throttle.queued()),
            ((0, 2), 2)
        );
        // Other addresses and other work are not held by this queue.
        assert!(matches!(
            throttle.start("10.0.0.2", Work::Lookup),
            Start::Now(_)
        ));
        // The running request ends: the first in line takes its ticket; one still runs.
        let (turn, ticket) = throttle.end(running).expect("a waiter's turn");
        assert_eq!(turn, first);
        assert_eq!(throttle.in_flight("10.0.0.1"), (0, 1));
        assert_eq!(throttle.queued(), 1);
        // A place frees in the queue.
        let third = waiter(throttle.start("10.0.0.1", Work::Lookup));
        // The second gives up (its deadline): it is taken out, and the third is next.
        assert!(throttle.cancel(second));
        assert!(!throttle.cancel(second));
        assert!(!throttle.cancel(first), "its turn came already");
        let (turn, ticket) = throttle.end(ticket).expect("a waiter's turn");
        assert_eq!(turn, third);
        assert_eq!(throttle.end(ticket), None);
        assert_eq!(throttle.in_flight("10.0.0.1"), (0, 0));
        assert_eq!(throttle.queued(), 0);
        assert!(!throttle.busy.contains_key(&Source::of("10.0.0.1")));
    }

    #[test]
    fn a_cap_of_zero_runs_one_so_that_a_queue_is_served() {
        let mut throttle = Throttle::new(ThrottleLimits {
            lookups_per_address: 0,
            address_queue: 1,
            ..limits()
        });
        let Start::Now(ticket) = throttle.start("10.0.0.1", Work::Lookup) else {
            panic!("one runs")
        };
        let Start::Queued(waiter) = throttle.start("10.0.0.1", Work::Lookup) else {
            panic!("one waits")
        };
        assert_eq!(throttle.end(ticket).map(|(w, _)| w), Some(waiter));
    }
}
