//! A socket's monitor events, read on a thread of their own with blocking receives.
//!
//! libzmq sends monitor events *blocking* from its I/O thread: a monitor that is not yet
//! connected, or not drained, stalls every handshake on the context. So the reader connects
//! its PAIR socket before returning and drains it on a dedicated thread until libzmq sends
//! `MONITOR_STOPPED` (the monitored socket closed, or [`remove`] ran). Blocking receives
//! matter: polling the PAIR with a receive timeout was seen to lose events on libzmq 4.3.4.
//!
//! A socket has exactly one monitor: starting one replaces (and stops) the previous one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::thread::JoinHandle;

/// (event, value) pairs as they arrive: the `ZMQ_EVENT_*` id and its value (a ZAP status,
/// a ZMTP error code, an errno, a file descriptor or a reconnect interval, by event).
pub type Events = Receiver<(u16, u32)>;

/// `ZMQ_EVENT_MONITOR_STOPPED`: the last event a monitor sends.
const MONITOR_STOPPED: u16 = zmq::SocketEvent::MONITOR_STOPPED as u16;

/// Monitors `socket` for the `events` mask through `endpoint` (a unique inproc name) and
/// returns the (event, value) pairs as they come, with the reading thread.
///
/// The thread ends when libzmq sends `MONITOR_STOPPED` (always added to the mask): when the
/// socket closes, when another monitor replaces this one, or after [`remove`].
pub fn spawn(
    context: &zmq::Context,
    socket: &zmq::Socket,
    endpoint: &str,
    events: i32,
) -> zmq::Result<(Events, JoinHandle<()>)> {
    socket.monitor(endpoint, events | zmq::SocketEvent::MONITOR_STOPPED as i32)?;
    let pair = context.socket(zmq::PAIR)?;
    pair.set_linger(0)?;
    pair.connect(endpoint)?;
    let (tx, rx) = channel();
    let thread = std::thread::Builder::new()
        .name("zmq-monitor".into())
        .spawn(move || {
            while let Ok(frames) = pair.recv_multipart(0) {
                let Some(f) = frames.first().filter(|f| f.len() >= 6) else {
                    continue;
                };
                let event = u16::from_ne_bytes([f[0], f[1]]);
                let value = u32::from_ne_bytes([f[2], f[3], f[4], f[5]]);
                if event == MONITOR_STOPPED {
                    return;
                }
                let _ = tx.send((event, value));
            }
        })
        .map_err(|_| zmq::Error::ENOMEM)?;
    Ok((rx, thread))
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
