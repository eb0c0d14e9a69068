//! A small, bounded thread pool for synchronous credential providers.
//!
//! A blocking provider (a database driver, a file lookup) must never run on the actix thread:
//! it would stall every other handshake. Jobs go to a fixed number of worker threads through
//! a bounded queue; when the queue is full the job is refused at once (the client gets a
//! `300` and retries), so memory stays bounded. A call that never returns occupies one worker
//! for good; the caller's deadline still answers the client, and the remaining workers keep
//! serving. Panics are caught in the worker, which lives on.
//!
//! Why not a ready-made pool: actix's `SyncArbiter` queues without bound (a full queue could
//! not be told, so no `300`) and does not catch panics; tokio's blocking pool makes runtime
//! shutdown wait for a call that never returns. The workers here are detached threads that
//! share one multi-consumer channel (`crossbeam-channel`, whose receiver clones), so no lock
//! is needed to take the next job, and `stop()` never waits for a worker.

use std::thread;

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};

use futures::channel::oneshot;

use std::future::Future;
use std::time::Instant;

use futures::future::{ready, LocalBoxFuture};

use crate::policy::{BlockingCall, BlockingRunner, ProviderFailure};
use crate::provider::call_guarded;

type Job = Box<dyn FnOnce() + Send>;

/// Why a job did not produce a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JobError {
    /// The queue was full.
    Overloaded,
    /// The job panicked.
    Panicked,
}

/// Fixed worker threads fed by a bounded queue. Clones share the workers; when the last clone
/// is dropped, idle workers exit.
#[derive(Clone)]
pub(crate) struct BlockingPool {
    /// Bounded to `capacity` waiting jobs: the channel's count of queued jobs is the one that
    /// decides the `300` (`try_send` reports `Full`), so no second counter can drift from it.
    queue: Sender<Job>,
    /// The `queue` label of its depth (`actix_zap_queue_depth`).
    #[cfg(feature = "metrics")]
    name: &'static str,
}

impl BlockingPool {
    /// Starts `workers` threads sharing a queue of `capacity` waiting jobs; `name` is the
    /// queue's in metrics and thread names.
    pub(crate) fn new(
        name: &'static str,
        workers: usize,
        capacity: usize,
    ) -> std::io::Result<Self> {
        let (queue, jobs) = bounded::<Job>(capacity);
        for n in 0..workers.max(1) {
            let jobs = jobs.clone();
            thread::Builder::new()
                .name(format!("zap-{name}-{n}"))
                .spawn(move || work(name, jobs))?;
        }
        Ok(BlockingPool {
            queue,
            #[cfg(feature = "metrics")]
            name,
        })
    }

    /// Queues `job`; the returned future resolves with its value.
    pub(crate) fn run<T, F>(
        &self,
        job: F,
    ) -> Result<oneshot::Receiver<Result<T, JobError>>, JobError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let wrapped: Job = Box::new(move || {
            // Nobody waits any more (the deadline passed while it queued): skip the call.
            if tx.is_canceled() {
                return;
            }
            let result = call_guarded(job).map_err(|_| JobError::Panicked);
            let _ = tx.send(result);
        });
        // Counted before it can be taken (and taken back if refused): the depth never dips
        // below what waits.
        #[cfg(feature = "metrics")]
        crate::metrics::queue_moved(self.name, 1.0);
        match self.queue.try_send(wrapped) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                #[cfg(feature = "metrics")]
                crate::metrics::queue_moved(self.name, -1.0);
                Err(JobError::Overloaded)
            }
        }
    }
}

/// A worker of queue `name`: runs jobs until every sender (every clone of the pool) is gone.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
fn work(name: &'static str, jobs: Receiver<Job>) {
    // A job never unwinds: `run` wraps the user code in `call_guarded`.
    for job in jobs {
        #[cfg(feature = "metrics")]
        crate::metrics::queue_moved(name, -1.0);
        job();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    #[test]
    fn runs_jobs_and_catches_panics() {
        let pool = BlockingPool::new("test", 2, 4).unwrap();
        assert_eq!(block_on(pool.run(|| 41 + 1).unwrap()).unwrap(), Ok(42));
        let panicked = block_on(pool.run(|| -> u8 { panic!("provider bug") }).unwrap()).unwrap();
        assert_eq!(panicked, Err(JobError::Panicked));
        assert_eq!(block_on(pool.run(|| 7).unwrap()).unwrap(), Ok(7));
    }

    #[test]
    fn a_full_queue_refuses_at_once() {
        let pool = BlockingPool::new("test", 1, 1).unwrap();
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        let first = pool
            .run(move || {
                started_tx.send(()).unwrap();
                blocked.recv().unwrap();
            })
            .unwrap();
        started.recv().unwrap(); // the worker is busy now
        let queued = pool.run(|| ()).unwrap();
        assert_eq!(pool.run(|| ()).err(), Some(JobError::Overloaded));
        release.send(()).unwrap();
        assert_eq!(block_on(first).unwrap(), Ok(()));
        assert_eq!(block_on(queued).unwrap(), Ok(()));
    }
}

/// Blocking work runs on a bounded pool (user code on the provider pool, argon2 on the
/// verifier's): a full queue is `Overloaded`, a panic or a lost worker `Panicked` — the one
/// mapping of the pool's failures.
#[derive(Clone)]
pub(super) struct OnPool(pub(super) BlockingPool);

impl BlockingRunner for OnPool {
    fn run<T: Send + 'static>(
        &self,
        call: BlockingCall<T>,
    ) -> LocalBoxFuture<'static, Result<T, ProviderFailure>> {
        match self.0.run(call) {
            Err(_) => Box::pin(ready(Err(ProviderFailure::Overloaded))),
            Ok(answer) => Box::pin(async move {
                match answer.await {
                    Ok(Ok(answer)) => ProviderFailure::from_guarded(Ok(answer)),
                    Ok(Err(JobError::Overloaded)) => Err(ProviderFailure::Overloaded),
                    Ok(Err(JobError::Panicked)) | Err(_) => Err(ProviderFailure::Panicked),
                }
            }),
        }
    }
}

/// `future`'s answer, or `TimedOut` at the deadline.
pub(super) async fn within<T>(
    deadline: Instant,
    future: impl Future<Output = Result<T, ProviderFailure>>,
) -> Result<T, ProviderFailure> {
    let deadline = tokio::time::Instant::from_std(deadline);
    tokio::time::timeout_at(deadline, future)
        .await
        .unwrap_or(Err(ProviderFailure::TimedOut))
}
