//! The time a decision is taken at — an input of the core, like the frames.
//!
//! The shell reads one [`Now`] per request (and one when work it started comes back) and
//! passes it down; nothing under `policy` reads a clock by itself. Tests and fuzzers pass any
//! time they like, so deadlines and expiries are tested without sleeping.

use std::cell::OnceCell;
use std::time::{Duration, Instant, SystemTime};

/// `after` past `from`: a deadline. A duration the monotonic clock cannot add (hundreds of
/// billions of years) gives a deadline a century away instead of a panic.
pub fn deadline(from: Instant, after: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    from.checked_add(after)
        .or_else(|| from.checked_add(CENTURY))
        .unwrap_or(from)
}

/// When a decision is taken: one monotonic instant, which every deadline is compared with
/// (a store's staleness, the verification cache, a request's deadline), and the wall clock,
/// read at most once and only when a key that carries an expiry asks for it.
///
/// ```
/// use std::time::{Duration, Instant, SystemTime};
/// use actix_zap::policy::Now;
/// let start = Instant::now();
/// let now = Now::fixed(start, SystemTime::UNIX_EPOCH);
/// assert_eq!(now.instant(), start);
/// assert_eq!(now.wall(), SystemTime::UNIX_EPOCH);
/// assert_eq!(now.later(Duration::from_secs(2)).instant(), start + Duration::from_secs(2));
/// ```
#[derive(Debug, Clone)]
pub struct Now {
    instant: OnceCell<Instant>,
    wall: OnceCell<SystemTime>,
}

impl Now {
    /// The time of the first question: each clock is read when first asked for, and then
    /// stays (a decision that meets no deadline and no expiring key reads no clock at all).
    pub fn read() -> Now {
        Now {
            instant: OnceCell::new(),
            wall: OnceCell::new(),
        }
    }

    /// `instant`, with the wall clock read when first asked for.
    pub fn at(instant: Instant) -> Now {
        Now {
            instant: OnceCell::from(instant),
            wall: OnceCell::new(),
        }
    }

    /// Both clocks given (tests, fuzzers, replays): nothing is read.
    pub fn fixed(instant: Instant, wall: SystemTime) -> Now {
        Now {
            instant: OnceCell::from(instant),
            wall: OnceCell::from(wall),
        }
    }

    /// The monotonic instant (read now if it was not given and not read yet).
    pub fn instant(&self) -> Instant {
        *self.instant.get_or_init(Instant::now)
    }

    /// The wall clock (read now if it was not given and not read yet), for expiries, which
    /// are dates.
    pub fn wall(&self) -> SystemTime {
        *self.wall.get_or_init(SystemTime::now)
    }

    /// Whether a date has come: `false` for none, and the wall clock is read only for one
    /// (most keys carry no expiry).
    pub fn reached(&self, date: Option<SystemTime>) -> bool {
        date.is_some_and(|date| self.wall() >= date)
    }

    /// Whether the wall clock was read (or given): tests check that a decision that needs no
    /// date reads none.
    #[cfg(test)]
    pub(crate) fn wall_was_read(&self) -> bool {
        self.wall.get().is_some()
    }

    /// `by` later on both clocks (a wall clock not read yet is read when first asked for).
    /// Any duration is accepted (see [`deadline`]).
    pub fn later(&self, by: Duration) -> Now {
        let instant = deadline(self.instant(), by);
        match self.wall.get() {
            Some(wall) => Now::fixed(instant, wall.checked_add(by).unwrap_or(*wall)),
            None => Now::at(instant),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wall_clock_is_read_once_and_only_when_asked() {
        let now = Now::at(Instant::now());
        assert!(now.wall.get().is_none(), "not read before it is asked for");
        let first = now.wall();
        assert_eq!(now.wall(), first, "read once");
        let fixed = Now::fixed(now.instant(), SystemTime::UNIX_EPOCH);
        assert_eq!(fixed.wall(), SystemTime::UNIX_EPOCH);
        let later = fixed.later(Duration::from_secs(5));
        assert_eq!(
            later.wall(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(5)
        );
        assert_eq!(later.instant(), now.instant() + Duration::from_secs(5));
        // A duration too long for the clock gives a century instead of a panic.
        let century = Duration::from_secs(100 * 365 * 24 * 3600);
        assert_eq!(
            fixed.later(Duration::MAX).instant(),
            now.instant() + century
        );
        // An expiry is reached at its date, not before; no date is never reached, and
        // asking about none reads no clock.
        let epoch = SystemTime::UNIX_EPOCH;
        assert!(fixed.reached(Some(epoch)) && !fixed.reached(None));
        assert!(!fixed.reached(Some(epoch + Duration::from_secs(1))));
        let unread = Now::at(now.instant());
        assert!(!unread.reached(None) && unread.wall.get().is_none());
    }
}
