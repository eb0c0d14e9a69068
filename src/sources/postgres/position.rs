//! What a read of the store proves, sans-IO: where the store's change log ended when the read
//! was sent, whether the position in force is still one the store can vouch for, and whether
//! it covers the log's end.
//!
//! A source's domains decide only while a recent read proved the source up to date: a read
//! that found the log ending exactly at the position applied, in the same store, with the row
//! applied last still there (same tag), proves that everything committed before the read was
//! **sent** is in force (a commit before the sending is visible to the statement, which
//! starts after it). The proof is dated from the sending, never from the answer: an answer
//! that took long proves nothing newer than its question. A read that only shows the database
//! answers proves nothing.
//!
//! A position is (store, sequence number, tag of the row applied last). It is trusted only
//! while a read can check it ([`Position::next`]): the same store (cluster, log table and the
//! store's own uuid), a position not beyond the numbers the store ever issued, not below the
//! pruning mark, and the row applied last still there with the same random tag (or, exactly
//! at the mark, pruned). Anything else means the numbers the follower holds count something
//! else now (a log renumbered, restored, rewritten or pruned past it), and it reads a
//! snapshot again ([`Why`]).

use std::time::Instant;

use tokio_postgres::Row;

/// The columns of a check of the position `$1` against the store (as [`LogEnd::read`]
/// expects them), for a statement whose `FROM` has the settings row as `s` and the log's
/// newest row as `l` ([`check_from!`]): the newest row's number and tag, the last number the
/// identity sequence issued, the pruning mark, the cluster's system identifier, the log's
/// OID, the store's uuid, and the tag of the row at `$1`.
macro_rules! check_columns {
    () => {
        "l.seq, l.tag,
         (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END
            FROM {schema}.changes_seq_seq),
         s.pruned_through,
         (SELECT system_identifier FROM pg_control_system()),
         '{schema}.changes'::regclass::oid,
         s.store_id::text,
         (SELECT tag FROM {schema}.changes WHERE seq = $1)"
    };
}

/// The `FROM` that [`check_columns!`] reads: the settings row `s` (exactly one) and the log's
/// newest row `l` (none in an empty log).
macro_rules! check_from {
    () => {
        "{schema}.settings s
         LEFT JOIN LATERAL (SELECT seq, tag FROM {schema}.changes ORDER BY seq DESC LIMIT 1) l
             ON true"
    };
}
pub(super) use {check_columns, check_from};

/// The heartbeat: a check of the position `$1` (columns as [`LogEnd::read`] expects).
pub(super) const HEARTBEAT: &str = concat!("SELECT ", check_columns!(), " FROM ", check_from!());

/// Which store a read came from: the cluster (its system identifier), the change log (its
/// table's OID) and the store's own uuid (made by migrate). A store dropped and migrated
/// again, restored elsewhere, or another cluster, is another store: its sequence numbers
/// count something else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct StoreId {
    pub(super) system: i64,
    pub(super) log: u32,
    pub(super) uuid: u128,
}

/// The end of a store's change log as one read found it, with what the read says about the
/// position it was asked to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LogEnd {
    pub(super) store: StoreId,
    /// The newest sequence number, or the pruning mark if the log was pruned beyond it (a
    /// pruned log does not end earlier).
    pub(super) seq: i64,
    /// The tag of the row at `seq` (`None`: the log ends at the mark, its row pruned).
    pub(super) tag: Option<i64>,
    /// The last number the store's identity sequence gave out: no position beyond it was
    /// ever the store's.
    pub(super) issued: i64,
    /// The pruning mark: rows up to it may be gone.
    pub(super) mark: i64,
    /// The tag of the row at the position checked (`None`: no such row).
    pub(super) at_position: Option<i64>,
    /// When the read was sent.
    pub(super) sent: Instant,
}

impl LogEnd {
    /// The log end from the newest row (number and tag, if any), what the sequence issued,
    /// the mark, the store, and the tag at the position checked.
    pub(super) fn new(
        newest: Option<(i64, i64)>,
        issued: i64,
        mark: i64,
        store: StoreId,
        at_position: Option<i64>,
        sent: Instant,
    ) -> LogEnd {
        let (seq, tag) = match newest {
            Some((seq, tag)) if seq >= mark => (seq, Some(tag)),
            _ => (mark, None),
        };
        LogEnd {
            store,
            seq,
            tag,
            issued,
            mark,
            at_position,
            sent,
        }
    }

    /// The log end in the eight columns from `first` of `row` (as [`check_columns!`]
    /// selects them), from a read sent at `sent`.
    pub(super) fn read(row: &Row, first: usize, sent: Instant) -> Result<LogEnd, String> {
        let column = |e: tokio_postgres::Error| format!("reading the log's end: {e}");
        let newest_seq: Option<i64> = row.try_get(first).map_err(column)?;
        let newest_tag: Option<i64> = row.try_get(first + 1).map_err(column)?;
        let issued: i64 = row.try_get(first + 2).map_err(column)?;
        let mark: i64 = row.try_get(first + 3).map_err(column)?;
        let system: i64 = row.try_get(first + 4).map_err(column)?;
        let log: u32 = row.try_get(first + 5).map_err(column)?;
        let uuid: String = row.try_get(first + 6).map_err(column)?;
        let at_position: Option<i64> = row.try_get(first + 7).map_err(column)?;
        let uuid = parse_uuid(&uuid).ok_or_else(|| format!("the store's uuid {uuid:?}"))?;
        let store = StoreId { system, log, uuid };
        let newest = newest_seq.zip(newest_tag);
        Ok(LogEnd::new(newest, issued, mark, store, at_position, sent))
    }
}

/// A uuid's text (`8-4-4-4-12` hexadecimal digits) as a number.
fn parse_uuid(text: &str) -> Option<u128> {
    let digits: String = text.chars().filter(|c| *c != '-').collect();
    (digits.len() == 32 && digits.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u128::from_str_radix(&digits, 16).ok())
        .flatten()
}

/// The change-log position in force: the store it counts in, the sequence number applied,
/// and the tag of the row at that number (`None`: no row there when it was read — an empty
/// log, or a log ending at its pruning mark).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Position {
    pub(super) store: StoreId,
    pub(super) applied: i64,
    pub(super) tag: Option<i64>,
}

impl Position {
    /// The position a read's end stands for once what it read is in force.
    pub(super) fn at(end: &LogEnd) -> Position {
        Position {
            store: end.store,
            applied: end.seq,
            tag: end.tag,
        }
    }
}

/// Why a follower reads a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Why {
    /// It holds no position: its first read.
    Start,
    /// A change it read was refused by the policy, so its position is not in force.
    Refused,
    /// The read came from another store (or the store was dropped and made again).
    AnotherStore,
    /// Its position lies beyond every number the store issued: the log was renumbered
    /// (`TRUNCATE … RESTART IDENTITY`, a store restored from a backup).
    BeyondIssued { applied: i64, issued: i64 },
    /// The log was pruned past its position: changes it never read may be gone.
    Pruned { applied: i64, mark: i64 },
    /// The row it applied last is gone, above the pruning mark: deleted behind the store's
    /// back.
    RowGone { applied: i64, mark: i64 },
    /// The row at its position has another tag: another change took that number.
    TagDiffers { applied: i64 },
    /// The log ends before its position (a store restored from a backup).
    LogBehind { applied: i64, end: i64 },
    /// The store's digest of the served domains' rows differs from the one it keeps of
    /// the rows it applied (anti-entropy): rows were changed without a log entry.
    DigestMismatch,
}

impl Why {
    /// Whether the snapshot is forced: something the follower held turned out untrustworthy
    /// (every reason but its first read).
    pub(super) fn forced(&self) -> bool {
        !matches!(self, Why::Start)
    }
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::Start => write!(f, "first read"),
            Why::Refused => write!(f, "a change from the store was refused"),
            Why::AnotherStore => write!(f, "another store"),
            Why::BeyondIssued { applied, issued } => write!(
                f,
                "position {applied} beyond the log's issued end {issued} (log renumbered or restored)"
            ),
            Why::Pruned { applied, mark } => {
                write!(f, "log pruned through {mark}, past position {applied}")
            }
            Why::RowGone { applied, mark } => write!(
                f,
                "the applied row {applied} is gone above the pruning mark {mark}"
            ),
            Why::TagDiffers { applied } => {
                write!(f, "the applied row {applied} has another tag (log rewritten)")
            }
            Why::LogBehind { applied, end } => {
                write!(f, "log ends at {end}, before position {applied}")
            }
            Why::DigestMismatch => write!(f, "digest mismatch"),
        }
    }
}

/// What a read of the log end calls for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Next {
    /// Everything committed before this instant is in force: trust the domains from it.
    Proved(Instant),
    /// Read the changes after the position in force.
    CatchUp,
    /// Read a snapshot: the position in force cannot be trusted.
    Snapshot(Why),
}

impl Position {
    /// What `end` (a read that checked this position) calls for.
    pub(super) fn next(&self, end: &LogEnd) -> Next {
        let applied = self.applied;
        if self.store != end.store {
            return Next::Snapshot(Why::AnotherStore);
        }
        if applied > end.issued {
            return Next::Snapshot(Why::BeyondIssued {
                applied,
                issued: end.issued,
            });
        }
        if end.mark > applied {
            return Next::Snapshot(Why::Pruned {
                applied,
                mark: end.mark,
            });
        }
        match (self.tag, end.at_position) {
            (Some(held), Some(found)) if held == found => {}
            (_, Some(_)) => return Next::Snapshot(Why::TagDiffers { applied }),
            // No row at the position: pruned exactly through it (or never one: an empty
            // log, a log ending at its mark), or deleted behind the store's back.
            (_, None) if applied == end.mark => {}
            (_, None) => {
                return Next::Snapshot(Why::RowGone {
                    applied,
                    mark: end.mark,
                })
            }
        }
        match end.seq.cmp(&applied) {
            std::cmp::Ordering::Equal => Next::Proved(end.sent),
            std::cmp::Ordering::Greater => Next::CatchUp,
            std::cmp::Ordering::Less => Next::Snapshot(Why::LogBehind {
                applied,
                end: end.seq,
            }),
        }
    }
}

/// How far beyond the last number a read saw issued a notification's number may lie and
/// still be taken as a hint: far more changes than a store commits between two heartbeats.
const AHEAD: i64 = 1 << 32;

/// Whether a notification's payload is a plausible hint of a change after `applied` (the
/// position in force, if any), given `issued`, the last number a read saw the store issue:
/// the decimal form of a sequence number (digits only, no sign, no leading zero) in
/// `(applied, issued + 2³²]`. Anything else is ignored: a notification is only a hint to
/// read, and whoever may connect can send one. (A log renumbered to small numbers notifies
/// numbers at or below the position: the next heartbeat finds it.)
pub(super) fn plausible_hint(payload: &str, applied: Option<i64>, issued: i64) -> bool {
    let canonical = !payload.is_empty()
        && payload.len() <= 19
        && payload.bytes().all(|b| b.is_ascii_digit())
        && (payload == "0" || !payload.starts_with('0'));
    let Some(seq) = canonical.then(|| payload.parse::<i64>().ok()).flatten() else {
        return false;
    };
    applied.is_none_or(|applied| seq > applied) && seq <= issued.saturating_add(AHEAD)
}

/// Reads that notifications call for are paced: a burst of [`Pace::BURST`] at once, then one
/// per [`Pace::GAP`] (a token bucket, kept as the instant it would be full again). A
/// notification after a quiet spell is read at once, so is a second change moments after a
/// first; a flood costs at most one read per gap.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Pace {
    /// When the bucket is full again, if it is not now.
    full_at: Option<Instant>,
}

impl Pace {
    /// How many reads may follow each other at once.
    pub(super) const BURST: u32 = 4;
    /// Past the burst, the time between two reads.
    pub(super) const GAP: std::time::Duration = std::time::Duration::from_millis(5);

    /// When a read called for at `now` may be sent.
    pub(super) fn allowed_at(&self, now: Instant) -> Instant {
        let burst = Self::GAP * (Self::BURST - 1);
        match self.full_at.and_then(|full| full.checked_sub(burst)) {
            Some(at) if at > now => at,
            _ => now,
        }
    }

    /// A read was sent at `now`.
    pub(super) fn read(&mut self, now: Instant) {
        let from = self.full_at.map_or(now, |full| full.max(now));
        self.full_at = Some(from + Self::GAP);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const STORE: StoreId = StoreId {
        system: 7,
        log: 16_384,
        uuid: 0x1234,
    };
    const TAG: i64 = -4_242;

    fn end(seq: i64, at_position: Option<i64>, sent: Instant) -> LogEnd {
        LogEnd {
            store: STORE,
            seq,
            tag: Some(1),
            issued: seq,
            mark: 0,
            at_position,
            sent,
        }
    }

    fn at(applied: i64) -> Position {
        Position {
            store: STORE,
            applied,
            tag: Some(TAG),
        }
    }

    #[test]
    fn only_a_checked_position_at_the_log_end_proves_and_from_its_sending() {
        let sent = Instant::now();
        assert_eq!(at(10).next(&end(10, Some(TAG), sent)), Next::Proved(sent));
        assert_eq!(at(10).next(&end(11, Some(TAG), sent)), Next::CatchUp);
        // The proof is the read's sending, whenever its answer came.
        let later = end(10, Some(TAG), sent + Duration::from_secs(3));
        assert_eq!(at(10).next(&later), Next::Proved(later.sent));
    }

    #[test]
    fn another_store_is_read_from_a_snapshot() {
        let sent = Instant::now();
        for other in [
            StoreId { log: 1, ..STORE },
            StoreId { system: 8, ..STORE },
            StoreId { uuid: 9, ..STORE },
        ] {
            let end = LogEnd {
                store: other,
                ..end(10, Some(TAG), sent)
            };
            assert_eq!(at(10).next(&end), Next::Snapshot(Why::AnotherStore));
        }
    }

    #[test]
    fn a_position_beyond_what_the_store_issued_is_read_from_a_snapshot() {
        // `TRUNCATE changes RESTART IDENTITY` then a few changes: the log's numbers start
        // again, below the position (and the row there, if any, is another).
        let renumbered = LogEnd {
            issued: 3,
            mark: 1,
            ..end(3, None, Instant::now())
        };
        assert_eq!(
            at(10).next(&renumbered),
            Next::Snapshot(Why::BeyondIssued {
                applied: 10,
                issued: 3
            })
        );
        // The 9·10¹⁸ a writer once could insert is beyond too.
        let issued = end(10, Some(TAG), Instant::now());
        assert!(matches!(
            at(9_000_000_000_000_000_000).next(&issued),
            Next::Snapshot(Why::BeyondIssued { .. })
        ));
    }

    #[test]
    fn a_log_pruned_past_the_position_is_read_from_a_snapshot() {
        let pruned = LogEnd {
            mark: 12,
            ..end(15, None, Instant::now())
        };
        assert_eq!(
            at(10).next(&pruned),
            Next::Snapshot(Why::Pruned {
                applied: 10,
                mark: 12
            })
        );
    }

    #[test]
    fn the_applied_row_pruned_exactly_at_the_mark_still_counts() {
        let sent = Instant::now();
        let pruned = LogEnd {
            mark: 10,
            ..end(10, None, sent)
        };
        assert_eq!(at(10).next(&pruned), Next::Proved(sent));
        let more = LogEnd { seq: 12, ..pruned };
        assert_eq!(at(10).next(&more), Next::CatchUp);
        // An empty store: position 0, no row, no mark.
        let empty = Position { tag: None, ..at(0) };
        assert_eq!(empty.next(&end(0, None, sent)), Next::Proved(sent));
    }

    #[test]
    fn the_applied_row_gone_above_the_mark_is_read_from_a_snapshot() {
        // Deleted with the triggers disabled: the mark did not move.
        let gone = end(15, None, Instant::now());
        assert_eq!(
            at(10).next(&gone),
            Next::Snapshot(Why::RowGone {
                applied: 10,
                mark: 0
            })
        );
    }

    #[test]
    fn the_applied_row_with_another_tag_is_read_from_a_snapshot() {
        let sent = Instant::now();
        let rewritten = end(15, Some(TAG + 1), sent);
        assert_eq!(
            at(10).next(&rewritten),
            Next::Snapshot(Why::TagDiffers { applied: 10 })
        );
        // A position held without a row (at the mark) finds one there now: another change
        // took that number.
        let no_row = Position {
            tag: None,
            ..at(10)
        };
        let found = LogEnd {
            mark: 10,
            ..end(15, Some(TAG), sent)
        };
        assert_eq!(
            no_row.next(&found),
            Next::Snapshot(Why::TagDiffers { applied: 10 })
        );
    }

    #[test]
    fn a_log_ending_before_the_position_is_read_from_a_snapshot() {
        // Not reachable from a consistent read (the row at the position is part of the log),
        // but never trusted either.
        let behind = LogEnd {
            issued: 20,
            ..end(8, Some(TAG), Instant::now())
        };
        assert_eq!(
            at(10).next(&behind),
            Next::Snapshot(Why::LogBehind {
                applied: 10,
                end: 8
            })
        );
    }

    #[test]
    fn only_the_first_read_is_not_forced_and_every_reason_says_what_it_found() {
        assert!(!Why::Start.forced());
        for why in [
            Why::Refused,
            Why::AnotherStore,
            Why::BeyondIssued {
                applied: 1,
                issued: 0,
            },
            Why::Pruned {
                applied: 1,
                mark: 2,
            },
            Why::RowGone {
                applied: 1,
                mark: 0,
            },
            Why::TagDiffers { applied: 1 },
            Why::LogBehind { applied: 1, end: 0 },
            Why::DigestMismatch,
        ] {
            assert!(why.forced(), "{why}");
            assert!(!why.to_string().is_empty());
        }
        assert_eq!(Why::DigestMismatch.to_string(), "digest mismatch");
    }

    #[test]
    fn the_log_end_is_the_newest_row_or_the_mark_beyond_it() {
        let sent = Instant::now();
        let end = LogEnd::new(Some((9, 5)), 9, 3, STORE, Some(TAG), sent);
        assert_eq!((end.seq, end.tag), (9, Some(5)));
        let pruned = LogEnd::new(Some((9, 5)), 12, 12, STORE, None, sent);
        assert_eq!((pruned.seq, pruned.tag), (12, None));
        let at_mark = LogEnd::new(Some((12, 5)), 12, 12, STORE, None, sent);
        assert_eq!((at_mark.seq, at_mark.tag), (12, Some(5)));
        let empty = LogEnd::new(None, 0, 0, STORE, None, sent);
        assert_eq!((empty.seq, empty.tag), (0, None));
        assert_eq!(
            parse_uuid("0e8c6d0a-3f7e-4b0a-9c1d-2a3b4c5d6e7f"),
            Some(0x0e8c6d0a_3f7e_4b0a_9c1d_2a3b4c5d6e7f)
        );
        assert_eq!(parse_uuid("not a uuid"), None);
    }

    #[test]
    fn reads_come_at_once_in_a_burst_then_one_per_gap() {
        let start = Instant::now();
        let mut pace = Pace::default();
        assert_eq!(pace.allowed_at(start), start);
        for _ in 0..Pace::BURST {
            assert_eq!(pace.allowed_at(start), start, "the burst is at once");
            pace.read(start);
        }
        let next = pace.allowed_at(start);
        assert_eq!(next, start + Pace::GAP, "then one per gap");
        pace.read(next);
        assert_eq!(pace.allowed_at(next), next + Pace::GAP);
        // After a quiet spell the whole burst is back.
        let later = start + Pace::GAP * (2 * Pace::BURST + 2);
        assert_eq!(pace.allowed_at(later), later);
        // A flood for one second costs at most the burst plus one read per gap.
        let mut pace = Pace::default();
        let (mut now, mut reads) = (start, 0);
        while now < start + std::time::Duration::from_secs(1) {
            now = pace.allowed_at(now);
            pace.read(now);
            reads += 1;
        }
        assert!(reads <= Pace::BURST + 200 + 1, "{reads}");
    }

    #[test]
    fn only_plausible_numbers_are_hints() {
        assert!(plausible_hint("11", Some(10), 11));
        assert!(plausible_hint("12", Some(10), 11), "issued since the read");
        assert!(plausible_hint("5", None, 0), "no position: anything new");
        for junk in [
            "",
            "x",
            "-1",
            "+11",
            " 11",
            "11 ",
            "011",
            "1e3",
            "11.0",
            "99999999999999999999",
            "9223372036854775807",
        ] {
            assert!(!plausible_hint(junk, Some(10), 11), "{junk:?}");
        }
        assert!(!plausible_hint("10", Some(10), 11), "already applied");
        assert!(!plausible_hint("3", Some(10), 11), "below the position");
        assert!(
            !plausible_hint("9000000000000000000", Some(10), 11),
            "far beyond"
        );
        assert!(plausible_hint(&(11 + AHEAD).to_string(), Some(10), 11));
        assert!(!plausible_hint(&(12 + AHEAD).to_string(), Some(10), 11));
    }
}
