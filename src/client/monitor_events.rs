//! One check's ownership of a socket's monitor: started before the connect, removed after.

use std::thread::JoinHandle;
use std::time::Duration;

use super::CheckError;
use crate::monitor::{self, Events};

/// A monitor this check started and must remove.
pub(super) struct Watched {
    events: Events,
    thread: JoinHandle<()>,
}

impl Watched {
    pub(super) fn start(context: &zmq::Context, socket: &zmq::Socket) -> Result<Self, CheckError> {
        let endpoint = monitor::unique_endpoint("actix-zap-handshake-check");
        let (events, thread) =
            monitor::spawn(context, socket, &endpoint, zmq::SocketEvent::ALL as i32)
                .map_err(CheckError::Monitor)?;
        Ok(Watched { events, thread })
    }

    /// The next event, or `None` when `wait` passes first.
    pub(super) fn next(&self, wait: Duration) -> Option<(u16, u32)> {
        // A disconnected channel (the reader ended) means no more events, like a timeout.
        self.events.recv_timeout(wait).ok()
    }

    /// Removes the monitor (libzmq then sends `MONITOR_STOPPED`, which ends the reader) and
    /// joins the reader.
    pub(super) fn finish(self, socket: &mut zmq::Socket) {
        if monitor::remove(socket).is_ok() {
            let _ = self.thread.join();
        }
        // If removal failed the context is terminating: the socket's close will stop the
        // monitor and end the thread; it is not joined so that the caller is not held.
    }
}
