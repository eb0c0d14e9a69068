//! Knowing when a change is in force here: a source publishes the position it applied (the
//! store's uuid and the change-log sequence number), and its handle waits for a position, under
//! a deadline kept by the authenticator's own runtime (so any executor may wait).

use std::time::Instant;

use futures::future::{select, Either};

use super::{Position, SourceHandle, StoreUuid};
use crate::messages::store::{SourceId, StatsOf};

/// Why a [`SourceHandle::synced`] wait ended without the position in force.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The deadline came first. `applied` is what this source had applied then (`None`: no
    /// snapshot yet), and `last_error` the source's last error in
    /// [`Stats::sources`](crate::messages::Stats::sources), if any (a database out of reach,
    /// a role without rights, a store that is not migrated).
    #[error(
        "not in force by the deadline (this source applied {}){}",
        match .applied { Some(p) => p.to_string(), None => "nothing yet".into() },
        match .last_error { Some(e) => format!("; its last error: {e}"), None => String::new() }
    )]
    Timeout {
        /// The position in force at the deadline.
        applied: Option<Position>,
        /// The source's last error.
        last_error: Option<String>,
    },
    /// At the deadline this source followed another store than the position's (another
    /// database, schema or cluster; or the store was dropped and migrated again): it will
    /// never apply that position.
    #[error("this source follows store {following}, not store {wanted}")]
    OtherStore {
        /// The store this source follows.
        following: StoreUuid,
        /// The position's store.
        wanted: StoreUuid,
    },
    /// The source was stopped, or its authenticator.
    #[error("the source has stopped")]
    Stopped,
}

/// Where a source runs, known once its authenticator started it.
pub(super) struct Started {
    pub(super) id: SourceId,
    pub(super) arbiter: actix::ArbiterHandle,
}

impl SourceHandle {
    /// Waits until this authenticator decides with the change at `position` in force: its
    /// source applied that position or a later one of the same store (a write's position
    /// from [`Store`](super::Store)'s writes, e.g. [`Store::remove_key`](super::Store::remove_key)).
    /// Answers the position in force then.
    ///
    /// At `deadline` it answers [`SyncError::OtherStore`] if the source follows another
    /// store, else [`SyncError::Timeout`] with the source's last error; at once
    /// [`SyncError::Stopped`] if the source or its authenticator stops. The deadline is kept
    /// on the authenticator's runtime: any executor may wait (`futures::executor::block_on`
    /// too).
    pub async fn synced(
        &self,
        position: Position,
        deadline: Instant,
    ) -> Result<Position, SyncError> {
        self.wait(Some(position), deadline).await
    }

    /// Waits until the source's first snapshot is in force (as [`synced`](Self::synced)).
    pub async fn synced_first(&self, deadline: Instant) -> Result<Position, SyncError> {
        self.wait(None, deadline).await
    }

    /// The position in force now (`None`: no snapshot yet).
    pub fn applied(&self) -> Option<Position> {
        *self.synced.borrow()
    }

    async fn wait(
        &self,
        wanted: Option<Position>,
        deadline: Instant,
    ) -> Result<Position, SyncError> {
        let reached = |applied: &Option<Position>| applied.as_ref().is_some_and(reached_by(wanted));
        // Until the position is in force, the source stops, or the deadline.
        let mut synced = self.synced.clone();
        let waiting = std::pin::pin!(synced.wait_for(reached));
        let expired = std::pin::pin!(self.expiry(deadline));
        let ended = match select(waiting, expired).await {
            Either::Left((Ok(applied), _)) => Some((*applied).ok_or(SyncError::Stopped)),
            Either::Left((Err(_), _)) => Some(Err(SyncError::Stopped)),
            Either::Right(((), _)) => None,
        };
        if let Some(ended) = ended {
            return ended;
        }
        let applied = *self.synced.borrow();
        if let Some(position) = applied.filter(reached_by(wanted)) {
            return Ok(position);
        }
        if self.synced.has_changed().is_err() {
            return Err(SyncError::Stopped);
        }
        if let (Some(applied), Some(wanted)) = (applied, wanted) {
            if applied.store != wanted.store {
                return Err(SyncError::OtherStore {
                    following: applied.store,
                    wanted: wanted.store,
                });
            }
        }
        Err(SyncError::Timeout {
            applied,
            last_error: self.last_error().await,
        })
    }

    /// Resolves at `deadline`, by a timer on the authenticator's runtime (which ends early
    /// when nobody waits any more); at once if that runtime is gone.
    fn expiry(&self, deadline: Instant) -> impl std::future::Future<Output = ()> {
        let (mut expired, expiry) = futures::channel::oneshot::channel::<()>();
        if let Some(started) = self.started.get() {
            let at = tokio::time::Instant::from_std(deadline);
            started.arbiter.spawn(async move {
                let reached = tokio::select! {
                    () = tokio::time::sleep_until(at) => true,
                    () = expired.cancellation() => false,
                };
                if reached {
                    let _ = expired.send(());
                }
            });
        }
        async move {
            let _ = expiry.await;
        }
    }

    /// The source's last error, as its authenticator's stats say.
    async fn last_error(&self) -> Option<String> {
        let started = self.started.get()?;
        let stats = self.state.send(StatsOf(started.id)).await.ok()??;
        stats.last_error
    }
}

/// Whether a position in force covers `wanted` (any position covers `None`).
fn reached_by(wanted: Option<Position>) -> impl Fn(&Position) -> bool {
    move |applied| {
        wanted.is_none_or(|wanted| applied.store == wanted.store && applied.seq >= wanted.seq)
    }
}
