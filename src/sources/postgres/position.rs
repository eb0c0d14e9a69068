//! What a read of the store proves, sans-IO: where the store's change log ended when the read
//! was sent, and whether the position in force covers it.
//!
//! A source's domains decide only while a recent read proved the source up to date: a read
//! that found the log ending exactly at the position applied, in the same store, proves that
//! everything committed before the read was **sent** is in force (a commit before the sending
//! is visible to the statement, which starts after it). The proof is dated from the sending,
//! never from the answer: an answer that took long proves nothing newer than its question.
//! A read that only shows the database answers proves nothing.

use std::time::Instant;

use tokio_postgres::Row;

/// The end of the change log, as SQL: the newest sequence number, or the pruning mark if the
/// log was pruned beyond it (a pruned log does not end earlier).
macro_rules! log_end {
    () => {
        "greatest((SELECT coalesce(max(seq), 0) FROM {schema}.changes),
                  (SELECT pruned_through FROM {schema}.settings))"
    };
}

/// Which store, as SQL columns: the cluster's system identifier and the change log's OID.
macro_rules! store_id {
    () => {
        "(SELECT system_identifier FROM pg_control_system()),
         '{schema}.changes'::regclass::oid"
    };
}
pub(super) use {log_end, store_id};

/// The heartbeat: where the log ends, in which store (columns as [`LogEnd::read`] expects).
pub(super) const HEARTBEAT: &str = concat!("SELECT ", log_end!(), ", ", store_id!());

/// Which store a read came from: the cluster (its system identifier) and the change log (its
/// table's OID). A store dropped and migrated again, or another cluster, is another store:
/// its sequence numbers count something else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct StoreId {
    pub(super) system: i64,
    pub(super) log: u32,
}

/// The end of a store's change log, as one read found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LogEnd {
    pub(super) store: StoreId,
    /// The newest sequence number (or pruning mark).
    pub(super) seq: i64,
    /// When the read was sent.
    pub(super) sent: Instant,
}

impl LogEnd {
    /// The log end in columns `first`, `first + 1` (system identifier) and `first + 2` (OID)
    /// of `row`, from a read sent at `sent`.
    pub(super) fn read(
        row: &Row,
        first: usize,
        sent: Instant,
    ) -> Result<LogEnd, tokio_postgres::Error> {
        Ok(LogEnd {
            seq: row.try_get(first)?,
            store: StoreId {
                system: row.try_get(first + 1)?,
                log: row.try_get(first + 2)?,
            },
            sent,
        })
    }
}

/// The change-log position in force, and the store it counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Position {
    pub(super) store: StoreId,
    pub(super) applied: i64,
}

/// What a read of the log end calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    /// Everything committed before this instant is in force: trust the domains from it.
    Proved(Instant),
    /// Read the changes after the position in force.
    CatchUp,
    /// Read a snapshot: no position, another store, or a store that went back (its log ends
    /// before the position: restored from a backup), whose sequence numbers cannot be trusted.
    Snapshot,
}

impl Position {
    /// What `end` calls for, given the position in force (if any).
    pub(super) fn next(position: Option<Position>, end: &LogEnd) -> Next {
        match position {
            Some(position) if position.store == end.store => match end.seq.cmp(&position.applied) {
                std::cmp::Ordering::Equal => Next::Proved(end.sent),
                std::cmp::Ordering::Greater => Next::CatchUp,
                std::cmp::Ordering::Less => Next::Snapshot,
            },
            _ => Next::Snapshot,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const STORE: StoreId = StoreId {
        system: 7,
        log: 16_384,
    };

    #[test]
    fn only_a_log_ending_at_the_position_of_the_same_store_proves_and_from_its_sending() {
        let sent = Instant::now();
        let end = |store, seq| LogEnd { store, seq, sent };
        let at = |applied| {
            Some(Position {
                store: STORE,
                applied,
            })
        };
        assert_eq!(Position::next(at(10), &end(STORE, 10)), Next::Proved(sent));
        assert_eq!(Position::next(at(10), &end(STORE, 11)), Next::CatchUp);
        // The store went back (restored): its numbers mean something else now.
        assert_eq!(Position::next(at(10), &end(STORE, 9)), Next::Snapshot);
        // Another store (dropped and migrated again, another cluster) proves nothing.
        for other in [StoreId { log: 1, ..STORE }, StoreId { system: 8, ..STORE }] {
            assert_eq!(Position::next(at(10), &end(other, 10)), Next::Snapshot);
        }
        assert_eq!(Position::next(None, &end(STORE, 0)), Next::Snapshot);
        // The proof is the read's sending, whenever its answer came.
        let later = LogEnd {
            sent: sent + Duration::from_secs(3),
            ..end(STORE, 10)
        };
        assert_eq!(Position::next(at(10), &later), Next::Proved(later.sent));
    }
}
