//! Noticing a stalled actix thread: a blocking call in async code on the authenticator's
//! thread holds every handshake, and nothing else would say so.
//!
//! The policy actor ticks every `threshold / 2`. A tick that comes more than `threshold`
//! late means the thread did not run for that long. That is reported only if requests waited
//! through it: one was taken in since the previous tick (its reply could not be written), or
//! one is taken in before the next tick (it sat in the socket or the mailbox). A stall with
//! no traffic harms no one and is not reported.

use std::time::{Duration, Instant};

/// The pure bookkeeping (no timer, no log): the actor feeds it ticks and requests.
#[derive(Debug)]
pub(crate) struct Watchdog {
    threshold: Duration,
    period: Duration,
    last_tick: Instant,
    /// Requests taken in since the last tick.
    requests: u64,
    /// A stall seen at the last tick, with no request yet to have waited through it.
    unclaimed: Option<Duration>,
}

impl Watchdog {
    pub(crate) fn new(threshold: Duration, now: Instant) -> Self {
        Watchdog {
            threshold,
            period: (threshold / 2).max(Duration::from_millis(1)),
            last_tick: now,
            requests: 0,
            unclaimed: None,
        }
    }

    /// How often the actor should call [`tick`](Self::tick).
    pub(crate) fn period(&self) -> Duration {
        self.period
    }

    /// The stall threshold.
    pub(crate) fn threshold(&self) -> Duration {
        self.threshold
    }

    /// The periodic tick ran at `now`. Returns how long the thread did not run, when that
    /// exceeds the threshold and requests waited through it.
    pub(crate) fn tick(&mut self, now: Instant) -> Option<Duration> {
        let late = now
            .saturating_duration_since(self.last_tick)
            .saturating_sub(self.period);
        self.last_tick = now;
        let requests = std::mem::take(&mut self.requests);
        self.unclaimed = None;
        if late <= self.threshold {
            return None;
        }
        if requests > 0 {
            return Some(late);
        }
        // Requests that waited may not have been taken in yet: the first one claims it.
        self.unclaimed = Some(late);
        None
    }

    /// A request was taken in. Returns the stall it waited through, if the tick before it
    /// was late and no request has claimed that stall yet.
    pub(crate) fn request(&mut self) -> Option<Duration> {
        self.requests += 1;
        self.unclaimed.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn on_time_ticks_and_stalls_without_requests_are_quiet() {
        let start = Instant::now();
        let mut dog = Watchdog::new(100 * MS, start);
        assert_eq!(dog.period(), 50 * MS);
        assert_eq!(dog.tick(start + 50 * MS), None);
        dog.request();
        assert_eq!(dog.tick(start + 120 * MS), None); // 20 ms late: under the threshold
        assert_eq!(dog.tick(start + 1_000 * MS), None); // stalled, but nobody waited...
        assert_eq!(dog.tick(start + 1_050 * MS), None); // ...and nobody came
        assert_eq!(dog.request(), None);
    }

    #[test]
    fn a_stall_is_reported_when_requests_waited_before_or_after_the_late_tick() {
        let start = Instant::now();
        let mut dog = Watchdog::new(100 * MS, start);
        // Taken in before the stall; its reply waited.
        assert_eq!(dog.request(), None);
        assert_eq!(dog.tick(start + 550 * MS), Some(500 * MS));
        // Sat in the socket: taken in after the late tick, and reported once.
        assert_eq!(dog.tick(start + 1_100 * MS), None);
        assert_eq!(dog.request(), Some(500 * MS));
        assert_eq!(dog.request(), None);
    }
}
