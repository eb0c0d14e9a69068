//! Tunables of a running authenticator, with defaults chosen against libzmq's limits.

use std::time::Duration;

/// How the authenticator bounds the work it takes on.
///
/// libzmq gives a handshake `ZMQ_HANDSHAKE_IVL` (30 s by default) before it gives up, so the
/// provider deadline stays well under it: a client whose provider hangs gets a clear `500`
/// instead of a silent timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// How long a provider (synchronous or asynchronous) may take before the client gets
    /// `500 Provider timed out`. Default 5 s.
    pub provider_deadline: Duration,
    /// Worker threads for synchronous providers. Default 4.
    pub provider_threads: usize,
    /// Synchronous provider calls that may wait for a worker; beyond it, `300`. Default 256.
    pub provider_queue: usize,
    /// Requests being decided at once; beyond it, new requests get a prompt `300` (the client
    /// reconnects and asks again). Default 1024.
    pub max_in_flight: usize,
    /// When the authenticator's thread does not run for longer than this while ZAP requests
    /// wait (something blocks the actix thread: a blocking call in async code), a warning is
    /// logged and [`Stats::stalls`](crate::messages::Stats::stalls) counts it. `None` turns the check
    /// off. Default 500 ms.
    pub stall_warning: Option<Duration>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            provider_deadline: Duration::from_secs(5),
            provider_threads: 4,
            provider_queue: 256,
            max_in_flight: 1024,
            stall_warning: Some(Duration::from_millis(500)),
        }
    }
}
