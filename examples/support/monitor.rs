//! A socket's monitor events, read on a thread of their own with blocking receives.
//!
//! Shared by the examples, the handshake-rate tool (and its bench) and the tests. Blocking
//! receives matter: polling the monitor's PAIR socket with a receive timeout was seen to lose
//! events. The thread ends when the monitored socket closes: libzmq then sends
//! `MONITOR_STOPPED`. Connect before anything else connects to the monitored socket, and keep
//! draining: libzmq sends monitor events blocking, so an undrained monitor stalls handshakes.

use std::sync::mpsc::{channel, Receiver};
use std::thread::JoinHandle;

/// (event, value) pairs as they arrive.
pub type Events = Receiver<(u16, u32)>;

/// Monitors `socket` for the `events` mask through `endpoint` (a unique inproc name) and
/// returns the (event, value) pairs as they come, with the reading thread.
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
    let thread = std::thread::spawn(move || {
        while let Ok(frames) = pair.recv_multipart(0) {
            let Some(f) = frames.first().filter(|f| f.len() >= 6) else {
                continue;
            };
            let event = u16::from_ne_bytes([f[0], f[1]]);
            let value = u32::from_ne_bytes([f[2], f[3], f[4], f[5]]);
            if event == zmq::SocketEvent::MONITOR_STOPPED as u16 {
                return;
            }
            let _ = tx.send((event, value));
        }
    });
    Ok((rx, thread))
}
