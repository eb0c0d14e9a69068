//! The timestamp in certificate banners, in UTC, from `std` alone.
//!
//! CZMQ and pyzmq write local time; `std` has no time-zone database and the crate takes no
//! date dependency, so we write UTC. The banner is a comment, so no reader depends on it.

use std::time::{SystemTime, UNIX_EPOCH};

/// A UTC calendar date and time of day, precise to the microsecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UtcTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub micros: u32,
}

/// Converts days since 1970-01-01 into (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl UtcTime {
    /// The UTC time of `when`; times before 1970 (a broken clock) are shown as 1970-01-01.
    pub(crate) fn from_system_time(when: SystemTime) -> Self {
        let since = when.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
        let rem = (secs % 86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        Self {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem / 60 % 60,
            second: rem % 60,
            micros: since.subsec_micros(),
        }
    }

    /// `YYYY-MM-DD HH:MM:SS`, as CZMQ's `zclock_timestr` formats it.
    pub(crate) fn czmq(&self) -> String {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// `YYYY-MM-DDTHH:MM:SS.ffffffZ`: RFC 3339 in UTC, to the microsecond (the JSON form of
    /// feature `serde`).
    #[cfg(feature = "serde")]
    pub(crate) fn rfc3339(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second, self.micros
        )
    }

    /// `YYYY-MM-DD HH:MM:SS.ffffff`, as Python's `str(datetime)` formats it (which leaves the
    /// fraction out when it is zero).
    pub(crate) fn pyzmq(&self) -> String {
        if self.micros == 0 {
            self.czmq()
        } else {
            format!("{}.{:06}", self.czmq(), self.micros)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, micros: u32) -> UtcTime {
        UtcTime::from_system_time(
            UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros.into()),
        )
    }

    #[test]
    fn known_dates() {
        assert_eq!(at(0, 0).czmq(), "1970-01-01 00:00:00");
        assert_eq!(at(951_782_400, 0).czmq(), "2000-02-29 00:00:00");
        assert_eq!(at(1_709_164_799, 0).czmq(), "2024-02-28 23:59:59");
        assert_eq!(at(1_709_164_800, 0).czmq(), "2024-02-29 00:00:00");
        assert_eq!(at(1_735_689_599, 0).czmq(), "2024-12-31 23:59:59");
        assert_eq!(at(4_102_444_800, 0).czmq(), "2100-01-01 00:00:00");
        assert_eq!(at(253_402_300_799, 0).czmq(), "9999-12-31 23:59:59");
    }

    #[test]
    fn pyzmq_shows_microseconds_like_python() {
        assert_eq!(at(1_709_164_800, 42).pyzmq(), "2024-02-29 00:00:00.000042");
        assert_eq!(at(1_709_164_800, 0).pyzmq(), "2024-02-29 00:00:00");
    }

    #[cfg(feature = "serde")]
    #[test]
    fn rfc3339_is_utc_to_the_microsecond() {
        assert_eq!(
            at(1_709_164_800, 42).rfc3339(),
            "2024-02-29T00:00:00.000042Z"
        );
        assert_eq!(at(0, 0).rfc3339(), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn every_day_of_four_centuries_is_consistent() {
        let mut previous = civil_from_days(-1);
        for days in 0..146_097 {
            let (y, m, d) = civil_from_days(days);
            let (py, pm, pd) = previous;
            let next_day = (y, m, d) == (py, pm, pd + 1);
            let next_month = (y, m, d) == (py, pm + 1, 1) && pd >= 28;
            let next_year = (y, m, d) == (py + 1, 1, 1) && (pm, pd) == (12, 31);
            assert!(
                next_day || next_month || next_year,
                "{previous:?} -> {y}-{m}-{d}"
            );
            previous = (y, m, d);
        }
    }
}
