//! Tunables of a running authenticator, with defaults chosen against libzmq's limits.

use std::num::NonZeroUsize;
use std::time::Duration;

/// Hashed-PLAIN verifications that may wait, per argon2 worker, unless
/// [`Settings::with_hash_queue`] says otherwise.
const HASH_QUEUE_PER_WORKER: usize = 32;

/// How the authenticator bounds the work it takes on.
///
/// libzmq gives a handshake `ZMQ_HANDSHAKE_IVL` (30 s by default) before it gives up, so the
/// provider deadline stays well under it: a client whose provider hangs gets a clear `500`
/// instead of a silent timeout.
///
/// Start from [`Settings::default()`] and change what you need with the chained `with_*`
/// methods; read a value back with the method of its name. New tunables are added as new
/// methods (the type is `#[non_exhaustive]` and its fields are private), so code written this
/// way keeps compiling. A count that makes no sense (zero threads, zero requests in flight) is
/// raised to 1 by its `with_*` method, with a warning in the log, so every `Settings` value
/// is one the authenticator can run with.
///
/// ```
/// use std::time::Duration;
/// use actix_zap::Settings;
///
/// let settings = Settings::default()
///     .with_provider_deadline(Duration::from_secs(2))
///     .with_max_in_flight(256)
///     .with_hash_threads(2);
/// assert_eq!(settings.provider_deadline(), Duration::from_secs(2));
/// assert_eq!(settings.hash_queue(), 2 * 32); // 32 waiting verifications per worker
/// assert_eq!(Settings::default().with_provider_threads(0).provider_threads(), 1);
/// ```
///
/// # Guessing and floods
///
/// Failed PLAIN attempts are counted per (peer address, username) pair and per peer address
/// (an IPv6 peer by its /64, an `ipc://` peer by its user id), and the counts decay (see
/// [`Throttle`](crate::policy::Throttle)):
/// - after [`throttle_pair_threshold`](Self::throttle_pair_threshold) failures (default 5),
///   that username is refused at once from that address, even with the right password;
/// - after [`throttle_address_threshold`](Self::throttle_address_threshold) failures of the
///   address (default 20, over all usernames and unknown CURVE keys), every username with a
///   remembered failure from it is refused at once; usernames without one are still
///   verified;
/// - one failure of each count is forgotten every [`throttle_decay`](Self::throttle_decay)
///   (default 30 s), and the table holds at most
///   [`throttle_capacity`](Self::throttle_capacity) entries (default 65,536).
///
/// Each address may have at most [`verifications_per_address`](Self::verifications_per_address)
/// argon2 verifications (default: half the hash threads, at least 1) and
/// [`lookups_per_address`](Self::lookups_per_address)
/// provider lookups (default 16) in flight. Beyond its cap, a request waits in its address's
/// queue for that work ([`address_queue`](Self::address_queue) places, default 32, first come
/// first served, at most until its [`provider_deadline`](Self::provider_deadline)), and runs
/// when one of the address's requests is answered; it is decided again when its turn comes, so
/// a guess queued behind the ones that reached a threshold is throttled, not verified.
/// Throttled attempts, and attempts beyond the cap and the queue, are refused at once with
/// `400` (`Too many failures`, `Too many attempts in flight`), before any argon2 or provider
/// work, and never counted as failures.
///
/// **Many users behind one address** (a NAT, a proxy, a shared host, one Unix user running
/// many clients) share the address's count, caps and queues: once their typing errors together
/// pass the address threshold, each of them who mistyped is refused at once until that failure
/// decays (a user who did not mistype is still verified). Simultaneous logins beyond the caps
/// wait their turn — after a server restart, all of a NAT's clients reconnect at once — and
/// only those beyond the cap plus the queue are refused. **libzmq does not reconnect after a
/// `400`**: the refused client's socket stays down until the application reconnects it (a
/// `300` would make it retry). For large NATs raise the queue or the caps (or the address
/// threshold; or allow-list and separate the NAT's traffic by domain); `throttle_capacity` 0
/// turns the failure counts off.
///
/// The authenticator takes them when it starts, through
/// [`AuthenticatorBuilder::settings`](crate::AuthenticatorBuilder::settings).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settings {
    pub(crate) provider_deadline: Duration,
    pub(crate) provider_threads: usize,
    pub(crate) provider_queue: usize,
    pub(crate) max_in_flight: usize,
    pub(crate) stall_warning: Option<Duration>,
    pub(crate) hash_threads: usize,
    /// `None`: [`HASH_QUEUE_PER_WORKER`] per worker.
    hash_queue: Option<usize>,
    pub(crate) subscriber_queue: usize,
    throttle_pair_threshold: u32,
    throttle_address_threshold: u32,
    throttle_decay: Duration,
    throttle_capacity: usize,
    /// `None`: half the hash threads, at least 1.
    verifications_per_address: Option<usize>,
    lookups_per_address: usize,
    address_queue: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            provider_deadline: Duration::from_secs(5),
            provider_threads: 4,
            provider_queue: 256,
            max_in_flight: 1024,
            stall_warning: Some(Duration::from_millis(500)),
            hash_threads: std::thread::available_parallelism().map_or(2, NonZeroUsize::get),
            hash_queue: None,
            subscriber_queue: 1024,
            throttle_pair_threshold: 5,
            throttle_address_threshold: 20,
            throttle_decay: Duration::from_secs(30),
            throttle_capacity: 65_536,
            verifications_per_address: None,
            lookups_per_address: 16,
            address_queue: 32,
        }
    }
}

/// `value`, or 1 (with a warning) when it is 0.
fn at_least_one(setting: &str, value: usize) -> usize {
    if value == 0 {
        log::warn!(
            target: "actix_zap::Settings",
            "Settings: {setting} 0 makes no sense, 1 is used instead"
        );
        return 1;
    }
    value
}

impl Settings {
    /// How long a provider (synchronous or asynchronous), a user-id mapping or a hashed PLAIN
    /// verification may take before the client gets `500 Provider timed out`. Default 5 s.
    pub fn provider_deadline(&self) -> Duration {
        self.provider_deadline
    }

    /// Sets [`provider_deadline`](Self::provider_deadline). Keep it well under the server
    /// sockets' handshake interval (`ZMQ_HANDSHAKE_IVL`, 30 s by default). Zero is taken as
    /// it is: every request that needs a provider or a hash is then answered `500`.
    #[must_use = "with_* methods return the changed settings"]
    pub fn with_provider_deadline(mut self, deadline: Duration) -> Self {
        self.provider_deadline = deadline;
        self
    }

    /// Worker threads for synchronous providers. Default 4.
    ///
    /// A pool of `n` threads answers at most `n / latency` lookups a second (4 threads and a
    /// 20 ms provider: 200 a second). After a server restart every client handshakes at once,
    /// as fast as libzmq completes them (CURVE: about 1,000 a second per I/O thread on the
    /// 2-core machine of BENCHMARKS.md), so give the pool at least that rate times the
    /// provider's latency, with headroom. Measured there, 5,000 CURVE clients reconnecting at
    /// once against a 20 ms synchronous provider: with the default 4 threads, thousands get
    /// `300` from the full queue and wait 30 s to retry; with 32 threads and
    /// [`provider_queue`](Self::provider_queue) raised to
    /// [`max_in_flight`](Self::max_in_flight), or 64 threads with the default queue, all are
    /// admitted in about 5 s with no `300`. An async provider needs none of this.
    pub fn provider_threads(&self) -> usize {
        self.provider_threads
    }

    /// Sets [`provider_threads`](Self::provider_threads); 0 is raised to 1.
    #[must_use = "with_* methods return the changed settings"]
    pub fn with_provider_threads(mut self, threads: usize) -> Self {
        self.provider_threads = at_least_one("provider_threads", threads);
        self
    }

    /// Synchronous provider calls that may wait for a worker; beyond it, `300`. Default 256.
    ///
    /// At least [`max_in_flight`](Self::max_in_flight) means that a burst is held back by the
    /// ZAP socket (which reads no more than that many requests) rather than refused here, as
    /// long as calls finish (a call whose deadline passed while it queued still holds its
    /// place until a worker skips it). A call still waits at most until its
    /// [`provider_deadline`](Self::provider_deadline), so too few
    /// [threads](Self::provider_threads) then show as `500`s instead of `300`s.
    pub fn provider_queue(&self) -> usize {
        self.provider_queue
    }

    /// Sets [`provider_queue`](Self::provider_queue). 0 is allowed: a call then runs only
    /// when a worker is idle, and gets `300` otherwise.
    #[must_use = "with_* methods return the changed settings"]
    pub fn with_provider_queue(mut self, queue: usize) -> Self {
        self.provider_queue = queue;
        self
    }

    /// Requests being decided at once. Default 1024.
    ///
    /// When that many are, the authenticator stops reading the ZAP endpoint until one is
    /// answered: the next handshakes wait in libzmq, which keeps each handshake's request in
    /// a pipe of its own (no high-water mark), and are read in turn as answers free slots
    /// (libzmq fair-queues the pipes). A burst larger than the bound — a reconnect storm — is
    /// so decided as fast as the slots free, with no `300` (after a `300`, libzmq makes the
    /// client wait for the server's `ZMQ_HANDSHAKE_IVL`, 30 s by default, before it asks
    /// again). [`Stats::held_back`](crate::messages::Stats::held_back) counts the times it
    /// happened.
    ///
    /// What stays bounded: the authenticator holds at most this many requests (the policy
    /// actor's mailbox has room for all of them), and each one it read is answered by its
    /// [`provider_deadline`](Self::provider_deadline), counted from the read (`500` when the
    /// work is not done by then), so a slot frees at least that often and a request that
    /// waits is never dropped silently. libzmq holds one request per waiting handshake. A
    /// backlog is only ever cleared by answers, so if requests keep arriving faster than they
    /// are answered for longer than the server's `ZMQ_HANDSHAKE_IVL`, libzmq closes the
    /// handshakes that waited that long (their clients reconnect), and the requests they left
    /// in its pipes are still read and decided, their answers going nowhere: size this bound
    /// and [`provider_deadline`](Self::provider_deadline) so that `max_in_flight /
    /// provider latency` is above the rate of new handshakes.
    ///
    /// While [`stop`](crate::Authenticator::stop) drains, requests beyond the bound get a
    /// prompt `300 Too many requests` instead, so stopping waits only for those in flight.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// Sets [`max_in_flight`](Self::max_in_flight); 0 (which would decide nothing) is raised
    /// to 1.
    #[must_use = "with_* methods return the changed settings"]
    pub fn with_max_in_flight(mut self, requests: usize) -> Self {
        self.max_in_flight = at_least_one("max_in_flight", requests);
        self
    }

    /// When the authenticator's thread does not run for longer than this while ZAP requests
    /// wait (something blocks the actix thread: a blocking call in async code), a warning is
    /// logged and [`Stats::stalls`](crate::messages::Stats::stalls) counts it. `None`: the
    /// check is off. Default 500 ms.
    pub fn stall_warning(&self) -> Option<Duration> {
        self.stall_warning
    }

    /// Sets [`stall_warning`](Self::stall_warning); `None` turns the check off. A threshold
    /// of a few milliseconds or less reports ordinary scheduling delays.
    #[must_use = "with_* methods return the changed settings"]
    pub fn with_stall_warning(mut self, threshold: Option<Duration>) -> Self {
        self.stall_warning = threshold;
        self
    }

    /// Worker threads for hashed PLAIN passwords (argon2id, which costs milliseconds and
    /// megabytes per verification and never runs on the actix thread). They start on the
    /// first verification. Default: one per core
    /// ([`available_parallelism`](std::thread::available_parallelism), 2 if unknown).
    pub fn hash_threads(&self) -> usize {
        self.hash_threads
    }

    /// Sets [`hash_threads`](Self::hash_threads); 0 is raised to 1.
    #[must_use = "with_* methods return the changed settings"]
    pub fn with_hash_threads(mut self, threads: usize) -> Self {
        self.hash_threads = at_least_one("hash_threads", threads);
        self
    }

    /// Hashed PLAIN verifications that may wait for a worker; beyond it, `300`. Default 32
    /// per [hash thread](Self::hash_threads).
    pub fn hash_queue(&self) -> usize {
        self.hash_queue
            .unwrap_or_else(|| self.hash_threads.saturating_mul(HASH_QUEUE_PER_WORKER))
    }

    /// Sets [`hash_queue`](Self::hash_queue) to this many, whatever the number of workers.
    /// 0 is allowed: a verification then runs only when a worker is idle, and gets `300`
    /// otherwise.
    #[must_use = "with_* methods return the changed settings"]
    pub fn with_hash_queue(mut self, queue: usize) -> Self {
        self.hash_queue = Some(queue);
        self
    }

    /// Decision events that may wait for one actor subscriber (sent, not yet handled);
    /// beyond, new events for it are dropped and counted in
    /// [`Stats::events_dropped`](crate::messages::Stats::events_dropped), so a slow subscriber
    /// costs bounded memory however fast peers are refused. Callbacks run inline and queue
    /// nothing. Default 1,024.
    pub fn subscriber_queue(&self) -> usize {
        self.subscriber_queue
    }

    /// Sets [`subscriber_queue`](Self::subscriber_queue); 0 is raised to 1.
    #[must_use = "with_* methods return the changed settings"]
    pub fn with_subscriber_queue(mut self, events: usize) -> Self {
        self.subscriber_queue = at_least_one("subscriber_queue", events);
        self
    }
}

impl Settings {
    /// Failures of one (peer address, username) pair after which that pair is refused at
    /// once (`400 Too many failures`), whatever the password, until one of them decays.
    /// Default 5.
    pub fn throttle_pair_threshold(&self) -> u32 {
        self.throttle_pair_threshold
    }

    /// Sets [`throttle_pair_threshold`](Self::throttle_pair_threshold); 0 is raised to 1.
    #[must_use = "with_* methods return the changed settings"]
    pub fn with_throttle_pair_threshold(mut self, failures: u32) -> Self {
        self.throttle_pair_threshold = at_least_one("throttle_pair_threshold", failures as usize)
            .try_into()
            .unwrap_or(u32::MAX);
        self
    }

    /// Failures of one peer address (all its usernames, and its unknown CURVE keys) after
    /// which each of its usernames with a remembered failure is refused at once; a username
    /// without one is still verified. Default 20.
    pub fn throttle_address_threshold(&self) -> u32 {
        self.throttle_address_threshold
    }

    /// Sets [`throttle_address_threshold`](Self::throttle_address_threshold); 0 is raised
    /// to 1.
    #[must_use = "with_* methods return the changed settings"]
    pub fn with_throttle_address_threshold(mut self, failures: u32) -> Self {
        self.throttle_address_threshold =
            at_least_one("throttle_address_threshold", failures as usize)
                .try_into()
                .unwrap_or(u32::MAX);
        self
    }

    /// One failure of each count is forgotten per this duration, so a pair at its threshold
    /// gets one more verified attempt per `throttle_decay`. Default 30 s.
    pub fn throttle_decay(&self) -> Duration {
        self.throttle_decay
    }

    /// Sets [`throttle_decay`](Self::throttle_decay). Zero forgets every failure at once:
    /// nothing is throttled (the caps per address still hold).
    #[must_use = "with_* methods return the changed settings"]
    pub fn with_throttle_decay(mut self, decay: Duration) -> Self {
        self.throttle_decay = decay;
        self
    }

    /// Most entries (peer addresses plus (address, username) pairs, at most 64 pairs per
    /// address) the failure table holds; when full, the least recently updated address is
    /// forgotten with its pairs. About 100 bytes an entry. Default 65,536.
    pub fn throttle_capacity(&self) -> usize {
        self.throttle_capacity
    }

    /// Sets [`throttle_capacity`](Self::throttle_capacity). 0 keeps nothing: the failure
    /// throttle is off (the caps per address still hold).
    #[must_use = "with_* methods return the changed settings"]
    pub fn with_throttle_capacity(mut self, entries: usize) -> Self {
        self.throttle_capacity = entries;
        self
    }

    /// argon2 verifications (hashed PLAIN passwords, known username or not) one peer
    /// address may have in flight (running or waiting for a worker); beyond, a request waits
    /// in the address's [queue](Self::address_queue), and beyond that gets `400 Too many
    /// attempts in flight` at once. Default: half the [hash threads](Self::hash_threads), at
    /// least 1, so that one address never occupies every worker (on 2 cores: 1).
    pub fn verifications_per_address(&self) -> usize {
        self.verifications_per_address
            .unwrap_or_else(|| (self.hash_threads / 2).max(1))
    }

    /// Sets [`verifications_per_address`](Self::verifications_per_address) to this many,
    /// whatever the number of workers; 0 is raised to 1.
    #[must_use = "with_* methods return the changed settings"]
    pub fn with_verifications_per_address(mut self, verifications: usize) -> Self {
        self.verifications_per_address =
            Some(at_least_one("verifications_per_address", verifications));
        self
    }

    /// CURVE provider lookups and user-id mappings one peer address may have in flight;
    /// beyond, a request waits in the address's [queue](Self::address_queue), and beyond that
    /// gets `400 Too many attempts in flight` at once. Default 16.
    pub fn lookups_per_address(&self) -> usize {
        self.lookups_per_address
    }

    /// Sets [`lookups_per_address`](Self::lookups_per_address); 0 is raised to 1. Many
    /// CURVE clients behind one address reconnecting at once (a restart) wait their turn in
    /// [`address_queue`](Self::address_queue) beyond it.
    #[must_use = "with_* methods return the changed settings"]
    pub fn with_lookups_per_address(mut self, lookups: usize) -> Self {
        self.lookups_per_address = at_least_one("lookups_per_address", lookups);
        self
    }

    /// Requests of one peer address that may wait, for each kind of work (argon2
    /// verifications, provider lookups), while the address has its cap of it in flight;
    /// beyond, `400 Too many attempts in flight` at once. Default 32.
    ///
    /// A waiting request takes no worker, no provider call and no argon2 run: when one of its
    /// address's requests of that kind is answered, the first in line runs (decided again,
    /// throttle first). It waits at most until its
    /// [`provider_deadline`](Self::provider_deadline) (then `500 Provider timed out`, as a
    /// provider that took too long). So one address never has more than its cap running,
    /// whatever it sends, and holds at most `cap + address_queue` of the
    /// [`max_in_flight`](Self::max_in_flight) slots for each kind of work (defaults on 2
    /// cores: 1 + 32 verifications and 16 + 32 lookups, under 8 % of 1,024), so it cannot
    /// stall other addresses' requests behind its own. A queue of `n` verifications is
    /// worked through in about `n` argon2 runs of one worker (32 × 30 ms ≈ 1 s with the
    /// defaults `zapctl` hashes with), well inside the deadline.
    /// [`Stats::address_queued`](crate::messages::Stats::address_queued) counts the requests
    /// waiting now. 0: no queue, a request over the cap is refused at once.
    ///
    /// The queue absorbs a burst; a storm that arrives faster than the cap drains it
    /// (`cap / latency`) for longer than the queue lasts still overflows. Measured on the
    /// 2-core machine of BENCHMARKS.md, 5,000 CURVE clients behind one address reconnecting
    /// at once (~1,000 handshakes a second) against a 20 ms provider: 2,087 admitted with the
    /// defaults, 1,461 without the queue, 4,515 with 64 lookups per address, all 5,000 with a
    /// queue of 1,024 — which then holds every `max_in_flight` slot while the storm lasts, so
    /// other addresses wait: size the queue for the NATs you serve, and `max_in_flight` above
    /// it.
    pub fn address_queue(&self) -> usize {
        self.address_queue
    }

    /// Sets [`address_queue`](Self::address_queue); 0 refuses at once over the cap.
    #[must_use = "with_* methods return the changed settings"]
    pub fn with_address_queue(mut self, requests: usize) -> Self {
        self.address_queue = requests;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_queue_follows_the_workers_until_it_is_set() {
        let settings = Settings::default().with_hash_threads(3);
        assert_eq!(settings.hash_queue(), 3 * HASH_QUEUE_PER_WORKER);
        let settings = settings.with_hash_queue(5).with_hash_threads(7);
        assert_eq!((settings.hash_threads(), settings.hash_queue()), (7, 5));
        assert_eq!(Settings::default().with_hash_queue(0).hash_queue(), 0);
    }

    #[test]
    fn counts_that_make_no_sense_are_raised_to_one() {
        let settings = Settings::default()
            .with_provider_threads(0)
            .with_max_in_flight(0)
            .with_hash_threads(0)
            .with_provider_queue(0);
        assert_eq!(settings.provider_threads(), 1);
        assert_eq!(settings.max_in_flight(), 1);
        assert_eq!(settings.hash_threads(), 1);
        assert_eq!(settings.provider_queue(), 0);
    }

    #[test]
    fn the_defaults_are_unchanged() {
        let settings = Settings::default();
        assert_eq!(settings.provider_deadline(), Duration::from_secs(5));
        assert_eq!(settings.provider_threads(), 4);
        assert_eq!(settings.provider_queue(), 256);
        assert_eq!(settings.max_in_flight(), 1024);
        assert_eq!(settings.stall_warning(), Some(Duration::from_millis(500)));
        let cores = std::thread::available_parallelism().map_or(2, NonZeroUsize::get);
        assert_eq!(settings.hash_threads(), cores);
        assert_eq!(settings.hash_queue(), cores * 32);
        assert_eq!(settings.subscriber_queue(), 1024);
        assert_eq!(settings.throttle_pair_threshold(), 5);
        assert_eq!(settings.throttle_address_threshold(), 20);
        assert_eq!(settings.throttle_decay(), Duration::from_secs(30));
        assert_eq!(settings.throttle_capacity(), 65_536);
        assert_eq!(settings.verifications_per_address(), (cores / 2).max(1));
        let eight = Settings::default().with_hash_threads(8);
        assert_eq!(eight.verifications_per_address(), 4);
        assert_eq!(
            eight
                .with_verifications_per_address(6)
                .verifications_per_address(),
            6
        );
        assert_eq!(settings.lookups_per_address(), 16);
        assert_eq!(settings.address_queue(), 32);
        assert_eq!(Settings::default().with_address_queue(0).address_queue(), 0);
    }

    #[test]
    fn throttle_settings_raise_zero_where_it_makes_no_sense() {
        let settings = Settings::default()
            .with_throttle_pair_threshold(0)
            .with_throttle_address_threshold(0)
            .with_verifications_per_address(0)
            .with_lookups_per_address(0)
            .with_throttle_capacity(0)
            .with_throttle_decay(Duration::ZERO);
        assert_eq!(settings.throttle_pair_threshold(), 1);
        assert_eq!(settings.throttle_address_threshold(), 1);
        assert_eq!(settings.verifications_per_address(), 1);
        assert_eq!(settings.lookups_per_address(), 1);
        assert_eq!(settings.throttle_capacity(), 0);
        assert_eq!(settings.throttle_decay(), Duration::ZERO);
    }
}
