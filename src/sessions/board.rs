//! The board of one context: what its authenticator and its session-enforcing sockets share.
//!
//! The authenticator writes: each narrowing is logged here, the sessions it ends are published
//! to every socket, and their connections are shut down — all before the change answers `Ok`.
//! The sockets write: a session is bound here at its first message (so the authenticator
//! holds only sessions that are live and bound: memory grows with connections, not with
//! admissions); when its connection goes it is still judged, for the messages of it the socket
//! may hold, until the socket forgets it.
//!
//! The board's mutex is never taken on a socket's delivery path: a socket learns of ended
//! sessions from its inbox (a channel plus an atomic generation it compares before every
//! delivery). It is taken by the authenticator when the policy narrows, and by a socket when a
//! session shows its first message or its connection goes.
//!
//! A board belongs to a context, not to an authenticator: it outlives a `stop()`/`start()`, so
//! a restarted authenticator keeps judging the sessions bound before.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::os::unix::io::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::SystemTime;

use crossbeam_channel::{Receiver, Sender};

use crate::policy::{covers, Narrowing, Policy};
use crate::zap::mark::SessionMark;

/// How many narrowings the board remembers for sessions that show their first message after
/// them; a session admitted before the oldest one remembered is ended at its first message
/// (fail closed: its client reconnects and is decided again).
pub const LOGGED_NARROWINGS: usize = 4096;

/// The most sessions ended at their first message that wait to be told as decision events.
const LATE_EVENTS: usize = 1024;

/// A connection: its descriptor number and the kernel's cookie of the socket behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Descriptor {
    pub(crate) fd: RawFd,
    pub(crate) cookie: u64,
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    /// A narrowing took away what it was admitted on.
    Revoked(Narrowing),
    /// Its key's expiry came (CURVE key sets).
    Expired,
    /// It showed its first message after a narrowing of its scope that the board no longer
    /// remembers, or that it could not judge: ended to be safe (its client is decided again).
    Unjudged,
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndReason::Revoked(narrowing) => write!(f, "revoked by {narrowing:?}"),
            EndReason::Expired => f.write_str("its key expired"),
            EndReason::Unjudged => {
                f.write_str("admitted before a narrowing it cannot be judged by")
            }
        }
    }
}

/// A session the authenticator ended.
#[derive(Debug, Clone)]
pub struct EndedSession {
    /// Its admission.
    pub mark: SessionMark,
    /// Why.
    pub reason: EndReason,
    /// Whether its connection was shut down (false: it was not bound to a live descriptor).
    pub shut_down: bool,
}

/// What a socket's inbox receives.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ended {
    pub(crate) serial: u64,
}

/// The publishing side of one socket's inbox.
struct Outbox {
    generation: Arc<AtomicU64>,
    sender: Sender<Ended>,
}

/// The reading side, owned by the socket.
pub(crate) struct Inbox {
    pub(crate) id: u64,
    generation: Arc<AtomicU64>,
    receiver: Receiver<Ended>,
}

impl Inbox {
    /// The inbox's generation: it changes after sessions were published to it.
    #[inline]
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Every session published so far and not yet read.
    pub(crate) fn drain(&self) -> impl Iterator<Item = Ended> + '_ {
        self.receiver.try_iter()
    }
}

struct Bound {
    mark: SessionMark,
    socket: u64,
    descriptor: Option<Descriptor>,
    /// Its connection went, but its socket may still hold messages of it: narrowings judge it
    /// until the socket forgets it; it is no longer counted as bound.
    gone: bool,
}

#[derive(Default)]
struct Tracker {
    bound: HashMap<u64, Bound>,
    outboxes: HashMap<u64, Outbox>,
    /// (generation after it, narrowing), oldest first.
    log: VecDeque<(u64, Narrowing)>,
    /// The policy after the latest narrowing, to judge sessions first seen after it; kept only
    /// while some socket is registered.
    policy: Option<Arc<Policy>>,
    /// Sessions ended at their first message, not yet told as decision events.
    late: Vec<EndedSession>,
}

/// What one context's authenticator and sockets share.
#[derive(Default)]
pub(crate) struct Board {
    /// Narrowings so far; a mark records it at admission.
    generation: AtomicU64,
    next_socket: AtomicU64,
    /// Sessions ended at their first message (by a narrowing since their admission).
    ended_at_first_message: AtomicU64,
    tracker: Mutex<Tracker>,
}

/// Counts every admission of the process: a mark's serial.
pub(crate) fn next_serial() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Board {
    /// The board of `context` (one per live context in the process).
    pub(crate) fn of(context: &zmq::Context) -> Arc<Board> {
        static BOARDS: OnceLock<Mutex<HashMap<usize, Weak<Board>>>> = OnceLock::new();
        let boards = BOARDS.get_or_init(Default::default);
        let mut boards = boards
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        boards.retain(|_, board| board.strong_count() > 0);
        let address = crate::ffi::context_address(context);
        if let Some(board) = boards.get(&address).and_then(Weak::upgrade) {
            return board;
        }
        let board = Arc::new(Board::default());
        boards.insert(address, Arc::downgrade(&board));
        board
    }

    fn tracker(&self) -> MutexGuard<'_, Tracker> {
        // Nothing under this lock can leave the tracker half-changed by a panic.
        self.tracker.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sessions ended at their first message since the last call, for their decision events
    /// (at most [`LATE_EVENTS`] between two calls).
    pub(crate) fn take_late(&self) -> Vec<EndedSession> {
        std::mem::take(&mut self.tracker().late)
    }

    /// Sessions ended at their first message, on a socket's thread.
    pub(crate) fn ended_at_first_message(&self) -> u64 {
        self.ended_at_first_message.load(Ordering::Relaxed)
    }

    /// The count of narrowings so far.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Registers a socket: its inbox receives every session ended from now on.
    pub(crate) fn register(&self) -> Inbox {
        let id = self.next_socket.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = crossbeam_channel::unbounded();
        let generation = Arc::new(AtomicU64::new(0));
        let outbox = Outbox {
            generation: Arc::clone(&generation),
            sender,
        };
        self.tracker().outboxes.insert(id, outbox);
        Inbox {
            id,
            generation,
            receiver,
        }
    }

    /// Forgets a socket (closed) and the sessions bound on it.
    pub(crate) fn deregister(&self, socket: u64) {
        let mut tracker = self.tracker();
        tracker.outboxes.remove(&socket);
        tracker.bound.retain(|_, bound| bound.socket != socket);
        if tracker.outboxes.is_empty() {
            tracker.policy = None;
        }
    }

    /// A session's first message on `socket`: bound, unless a narrowing since its admission
    /// took away what it was admitted on (then it is ended: its connection shut down, and the
    /// reason returned).
    pub(crate) fn bind(
        &self,
        socket: u64,
        mark: &SessionMark,
        descriptor: Option<Descriptor>,
    ) -> Result<(), Box<EndedSession>> {
        let mut tracker = self.tracker();
        if let Some(reason) = tracker.judge(mark, self.generation()) {
            let shut_down = descriptor.is_some_and(|d| crate::ffi::shut_down_if(d.fd, d.cookie));
            self.ended_at_first_message.fetch_add(1, Ordering::Relaxed);
            // Counted here, on the receiving thread, as in `Stats::sessions_ended`.
            #[cfg(feature = "metrics")]
            crate::metrics::session_ended(&mark.domain);
            let ended = EndedSession {
                mark: mark.clone(),
                reason,
                shut_down,
            };
            // Told as a decision event by the authenticator at its next sweep (bounded: a
            // flood of them is counted, and only the first are told).
            if tracker.late.len() < LATE_EVENTS {
                tracker.late.push(ended.clone());
            }
            return Err(Box::new(ended));
        }
        // A later admission on the same descriptor means this one's connection is gone.
        let descriptor = descriptor.filter(|d| {
            !tracker.bound.values().any(|b| {
                b.socket == socket && b.descriptor == Some(*d) && b.mark.serial > mark.serial
            })
        });
        if let Some(d) = descriptor {
            // Older sessions bound to this connection were on an earlier one with its number.
            for b in tracker.bound.values_mut() {
                if b.socket == socket && b.descriptor == Some(d) && b.mark.serial < mark.serial {
                    b.descriptor = None;
                }
            }
        }
        let bound = Bound {
            mark: mark.clone(),
            socket,
            descriptor,
            gone: false,
        };
        tracker.bound.insert(mark.serial, bound);
        Ok(())
    }

    /// A connection of `socket` went: the sessions bound to it are gone. They are still
    /// judged by narrowings — messages of theirs may wait in the socket, to be read after a
    /// narrowing's `Ok` — until the socket [forgets](Self::forget) them.
    pub(crate) fn unbind(&self, socket: u64, descriptor: Descriptor) {
        for bound in self.tracker().bound.values_mut() {
            if bound.socket == socket && bound.descriptor == Some(descriptor) {
                bound.descriptor = None;
                bound.gone = true;
            }
        }
    }

    /// `socket` forgot these sessions (their connections went): messages of theirs it still
    /// reads are judged at a first sight again.
    pub(crate) fn forget(&self, socket: u64, serials: &[u64]) {
        let mut tracker = self.tracker();
        for serial in serials {
            if tracker
                .bound
                .get(serial)
                .is_some_and(|b| b.socket == socket)
            {
                tracker.bound.remove(serial);
            }
        }
    }

    /// Sessions bound, per domain (for inspection).
    pub(crate) fn bound_per_domain(&self) -> BTreeMap<String, usize> {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for bound in self.tracker().bound.values().filter(|b| !b.gone) {
            *counts.entry(bound.mark.domain.clone()).or_default() += 1;
        }
        counts
    }

    /// Sessions bound, over all domains (for the stats).
    pub(crate) fn bound_count(&self) -> usize {
        self.tracker().bound.values().filter(|b| !b.gone).count()
    }

    /// The policy narrowed (`narrowed`, now `policy`): the bound sessions it covers are judged
    /// again; those no longer admitted are published to every socket and their connections
    /// shut down, before this returns. Returns them.
    pub(crate) fn narrow(&self, narrowed: &[Narrowing], policy: &Policy) -> Vec<EndedSession> {
        if narrowed.is_empty() {
            return Vec::new();
        }
        let mut tracker = self.tracker();
        let mut generation = self.generation();
        for narrowing in narrowed {
            generation += 1;
            tracker.log.push_back((generation, narrowing.clone()));
        }
        while tracker.log.len() > LOGGED_NARROWINGS {
            tracker.log.pop_front();
        }
        self.generation.store(generation, Ordering::Release);
        if tracker.outboxes.is_empty() {
            return Vec::new();
        }
        tracker.policy = Some(Arc::new(policy.clone()));
        let mut ended = Vec::new();
        for (serial, bound) in &tracker.bound {
            let revoked = narrowed
                .iter()
                .find(|n| covers(n, &bound.mark) && !policy.still_admits(&bound.mark, n));
            if let Some(narrowing) = revoked {
                ended.push((*serial, EndReason::Revoked(narrowing.clone())));
            }
        }
        tracker.end(ended)
    }

    /// Ends the bound CURVE sessions whose key expired by `now` in the policy in force (a
    /// key's expiry refuses its handshakes from then on; this ends its open sessions too).
    pub(crate) fn expire(&self, policy: &Policy, now: SystemTime) -> Vec<EndedSession> {
        let mut tracker = self.tracker();
        let ended: Vec<_> = (tracker.bound.iter())
            .filter(|(_, bound)| {
                let mark = &bound.mark;
                mark.mechanism == crate::zap::mark::MarkMechanism::Curve
                    && policy
                        .key_expiry(&mark.domain, &mark.name)
                        .is_some_and(|expiry| expiry <= now)
            })
            .map(|(serial, _)| (*serial, EndReason::Expired))
            .collect();
        tracker.end(ended)
    }
}

impl Tracker {
    /// Publishes `ended` to every socket (before any of their connections is shut down, so
    /// that no receive from now on delivers their messages), then shuts their connections
    /// down and forgets them.
    fn end(&mut self, ended: Vec<(u64, EndReason)>) -> Vec<EndedSession> {
        if ended.is_empty() {
            return Vec::new();
        }
        for outbox in self.outboxes.values() {
            for (serial, _) in &ended {
                // A socket that is gone has dropped its receiver; nothing to tell it.
                let _ = outbox.sender.send(Ended { serial: *serial });
            }
            outbox.generation.fetch_add(1, Ordering::AcqRel);
        }
        let mut sessions = Vec::with_capacity(ended.len());
        for (serial, reason) in ended {
            let Some(bound) = self.bound.remove(&serial) else {
                continue;
            };
            let shut_down = bound
                .descriptor
                .is_some_and(|d| crate::ffi::shut_down_if(d.fd, d.cookie));
            sessions.push(EndedSession {
                mark: bound.mark,
                reason,
                shut_down,
            });
        }
        sessions
    }
}

impl Tracker {
    /// Whether a session first seen now must end because of narrowings since its admission.
    fn judge(&self, mark: &SessionMark, generation: u64) -> Option<EndReason> {
        if mark.generation >= generation {
            return None;
        }
        let oldest = self.log.front().map_or(generation + 1, |(g, _)| *g);
        if mark.generation + 1 < oldest {
            return Some(EndReason::Unjudged);
        }
        for (_, narrowing) in self.log.iter().filter(|(g, _)| *g > mark.generation) {
            if !covers(narrowing, mark) {
                continue;
            }
            let Some(policy) = &self.policy else {
                return Some(EndReason::Unjudged);
            };
            if !policy.still_admits(mark, narrowing) {
                return Some(EndReason::Revoked(narrowing.clone()));
            }
        }
        None
    }
}

/// How long the session of `mark` lived (since its admission).
pub fn lived(mark: &SessionMark) -> std::time::Duration {
    SystemTime::now()
        .duration_since(mark.admitted_at)
        .unwrap_or_default()
}
