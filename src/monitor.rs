//! A socket's monitor events, read on a thread of their own with blocking receives.
//!
//! libzmq sends monitor events *blocking* from its I/O thread: a monitor that is not yet
//! connected, or not drained, stalls every handshake on the context. So the reader connects
//! its PAIR socket before returning and drains it on a dedicated thread until libzmq sends
//! `MONITOR_STOPPED` (the monitored socket closed, or [`remove`] ran). Blocking receives
//! matter: polling the PAIR with a receive timeout was seen to lose events on libzmq 4.3.4.
//!
//! A socket has exactly one monitor: starting one replaces (and stops) the previous one.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How many events wait unread at most; later ones are dropped and counted
/// ([`Events::dropped`]). The reader never blocks: a blocked reader would stall libzmq's I/O
/// thread, and every socket of the context with it.
pub const QUEUE: usize = 1024;

/// (event, value) pairs as they arrive: the `ZMQ_EVENT_*` id and its value (a ZAP status,
/// a ZMTP error code, an errno, a file descriptor or a reconnect interval, by event). At most
/// [`QUEUE`] wait; beyond, events are dropped and counted.
#[derive(Debug)]
pub struct Events {
    receiver: Receiver<(u16, u32)>,
    dropped: Arc<AtomicU64>,
}

impl Events {
    /// The next event, waiting at most `wait`.
    pub fn recv_timeout(&self, wait: Duration) -> Result<(u16, u32), RecvTimeoutError> {
        self.receiver.recv_timeout(wait)
    }

    /// The next event, if one is waiting.
    pub fn try_recv(&self) -> Result<(u16, u32), TryRecvError> {
        self.receiver.try_recv()
    }

    /// Events dropped so far because [`QUEUE`] of them were waiting unread.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// `ZMQ_EVENT_MONITOR_STOPPED`: the last event a monitor sends.
const MONITOR_STOPPED: u16 = zmq::SocketEvent::MONITOR_STOPPED as u16;

/// Monitors `socket` for the `events` mask through `endpoint` (a unique inproc name) and
/// returns the (event, value) pairs as they come, with the reading thread.
///
/// The thread ends when libzmq sends `MONITOR_STOPPED` (always added to the mask): when the
/// socket closes, when another monitor replaces this one, or after [`remove`]. The monitor is
/// installed last, once its reader is connected and running: a failure (no thread, no socket)
/// leaves no monitor behind, which would block libzmq's I/O thread on its first event.
pub fn spawn(
    context: &zmq::Context,
    socket: &zmq::Socket,
    endpoint: &str,
    events: i32,
) -> zmq::Result<(Events, JoinHandle<()>)> {
    spawn_queued(context, socket, endpoint, events, QUEUE)
}

/// [`spawn`], with at most `queue` events waiting unread instead of [`QUEUE`] (a tool that
/// counts every handshake of a burst wants a deeper one).
pub fn spawn_queued(
    context: &zmq::Context,
    socket: &zmq::Socket,
    endpoint: &str,
    events: i32,
    queue: usize,
) -> zmq::Result<(Events, JoinHandle<()>)> {
    spawn_with(context, socket, endpoint, events, queue, start_reader)
}

/// Starts a monitor's reading thread.
fn start_reader(reader: Box<dyn FnOnce() + Send>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("zmq-monitor".into())
        .spawn(reader)
}

/// [`spawn`], with the reader's thread started by `start` (tests make it fail).
fn spawn_with(
    context: &zmq::Context,
    socket: &zmq::Socket,
    endpoint: &str,
    events: i32,
    queue: usize,
    start: impl FnOnce(Box<dyn FnOnce() + Send>) -> std::io::Result<JoinHandle<()>>,
) -> zmq::Result<(Events, JoinHandle<()>)> {
    let (queued, events_out) = queue_of(queue);
    let handle = move |event, value| queued.push(event, value);
    let thread = handle_with(context, socket, endpoint, events, handle, start)?;
    Ok((events_out, thread))
}

/// The writing side of an [`Events`] queue: never blocks, counts what it drops.
pub(crate) struct Queued {
    sender: std::sync::mpsc::SyncSender<(u16, u32)>,
    dropped: Arc<AtomicU64>,
}

impl Queued {
    /// Queues one event, or drops and counts it when the queue is full.
    pub(crate) fn push(&self, event: u16, value: u32) {
        if let Err(std::sync::mpsc::TrySendError::Full(_)) = self.sender.try_send((event, value)) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A queue of at most `queue` events: its writing and its reading side.
pub(crate) fn queue_of(queue: usize) -> (Queued, Events) {
    let (sender, receiver) = sync_channel(queue);
    let dropped = Arc::new(AtomicU64::new(0));
    let queued = Queued {
        sender,
        dropped: Arc::clone(&dropped),
    };
    (queued, Events { receiver, dropped })
}

/// Monitors `socket` for the `events` mask and hands each (event, value) to `handle` on the
/// reading thread, which ends at `MONITOR_STOPPED` (never passed on). `handle` must not block:
/// a blocked reader stalls libzmq's I/O thread. Installed last, as [`spawn`] is.
pub(crate) fn spawn_handling(
    context: &zmq::Context,
    socket: &zmq::Socket,
    endpoint: &str,
    events: i32,
    handle: impl FnMut(u16, u32) + Send + 'static,
) -> zmq::Result<JoinHandle<()>> {
    handle_with(context, socket, endpoint, events, handle, start_reader)
}

fn handle_with(
    context: &zmq::Context,
    socket: &zmq::Socket,
    endpoint: &str,
    events: i32,
    mut handle: impl FnMut(u16, u32) + Send + 'static,
    start: impl FnOnce(Box<dyn FnOnce() + Send>) -> std::io::Result<JoinHandle<()>>,
) -> zmq::Result<JoinHandle<()>> {
    // inproc allows connecting before the bind, which the monitor makes.
    let pair = context.socket(zmq::PAIR)?;
    pair.set_linger(0)?;
    pair.connect(endpoint)?;
    // The reader gets its socket once the monitor is installed; if that fails, the sender is
    // dropped and the reader ends without ever reading.
    let (hand_over, handed) = channel::<zmq::Socket>();
    let thread = start(Box::new(move || {
        let Ok(pair) = handed.recv() else {
            return;
        };
        while let Ok(frames) = pair.recv_multipart(0) {
            let Some(f) = frames.first().filter(|f| f.len() >= 6) else {
                continue;
            };
            let event = u16::from_ne_bytes([f[0], f[1]]);
            let value = u32::from_ne_bytes([f[2], f[3], f[4], f[5]]);
            if event == MONITOR_STOPPED {
                return;
            }
            handle(event, value);
        }
    }))
    .map_err(|_| zmq::Error::ENOMEM)?;
    socket.monitor(endpoint, events | zmq::SocketEvent::MONITOR_STOPPED as i32)?;
    // The reader waits on `handed` and cannot have ended, so this hand-over cannot fail.
    let _ = hand_over.send(pair);
    Ok(thread)
}

/// A fresh inproc name for a monitor, unique within the process.
pub fn unique_endpoint(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "inproc://{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Stops `socket`'s monitor (`zmq_socket_monitor(socket, NULL, 0)`): libzmq sends
/// `MONITOR_STOPPED`, which ends the reading thread, and closes its side of the PAIR.
pub fn remove(socket: &mut zmq::Socket) -> zmq::Result<()> {
    crate::ffi::stop_monitor(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether a monitor of this process holds `endpoint` (a monitor binds it).
    fn bound(context: &zmq::Context, endpoint: &str) -> bool {
        let probe = context.socket(zmq::PAIR).unwrap();
        probe.set_linger(0).unwrap();
        probe.bind(endpoint).is_err()
    }

    #[test]
    fn a_reader_that_cannot_start_leaves_no_monitor_installed() {
        let context = zmq::Context::new();
        let socket = context.socket(zmq::REP).unwrap();
        socket.set_linger(0).unwrap();
        let endpoint = unique_endpoint("monitor-test");
        let no_thread = |_| Err(std::io::Error::other("no thread"));
        let failed = spawn_with(
            &context,
            &socket,
            &endpoint,
            zmq::SocketEvent::ALL as i32,
            QUEUE,
            no_thread,
        );
        assert_eq!(failed.err(), Some(zmq::Error::ENOMEM));
        assert!(!bound(&context, &endpoint), "a monitor was left installed");

        // A monitor that starts is installed, reads, and ends when removed.
        let endpoint = unique_endpoint("monitor-test");
        let mut socket = socket;
        let (events, thread) =
            spawn(&context, &socket, &endpoint, zmq::SocketEvent::ALL as i32).unwrap();
        assert!(bound(&context, &endpoint));
        socket.bind("tcp://127.0.0.1:*").unwrap();
        let (event, _) = events
            .recv_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        assert_eq!(event, zmq::SocketEvent::LISTENING as u16);
        remove(&mut socket).unwrap();
        thread.join().unwrap();
    }

    #[test]
    fn events_beyond_the_queue_are_dropped_and_counted_never_waited_for() {
        let context = zmq::Context::new();
        let mut socket = context.socket(zmq::REP).unwrap();
        socket.set_linger(0).unwrap();
        let endpoint = unique_endpoint("monitor-test");
        let listening = zmq::SocketEvent::LISTENING as i32;
        let (events, thread) = spawn_queued(&context, &socket, &endpoint, listening, 2).unwrap();
        for _ in 0..5 {
            socket.bind("tcp://127.0.0.1:*").unwrap();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while events.dropped() < 3 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(events.dropped(), 3);
        assert!(events.try_recv().is_ok() && events.try_recv().is_ok());
        assert!(events.try_recv().is_err());
        remove(&mut socket).unwrap();
        thread.join().unwrap();
    }
}
