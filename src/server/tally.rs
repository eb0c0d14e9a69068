//! A server's handshake log, counted per outcome and interval: a client retrying with the
//! wrong server key ends a handshake every reconnect interval (34 in 5 s were seen), and the
//! monitor events carry no peer to tell such repeats apart, so one line per event floods the
//! log without saying more than one line per outcome does.

use std::sync::mpsc::RecvTimeoutError;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{HandshakeWatch, ServerHandshake};
use crate::client::{protocol_error_name, HandshakeOutcome};

/// The handshakes a server socket ended within one interval, counted per outcome (libzmq's
/// event and value), in the order each outcome was first seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandshakeTally {
    counts: Vec<(ServerHandshake, u64)>,
    /// Events the watch dropped because its queue was full, during the interval.
    pub dropped: u64,
}

impl HandshakeTally {
    /// Counts one handshake's end.
    pub fn record(&mut self, handshake: ServerHandshake) {
        match self.counts.iter_mut().find(|(seen, _)| *seen == handshake) {
            Some((_, count)) => *count += 1,
            None => self.counts.push((handshake, 1)),
        }
    }

    /// Each outcome with the number of handshakes that ended so.
    pub fn outcomes(&self) -> impl Iterator<Item = (&ServerHandshake, u64)> + '_ {
        self.counts
            .iter()
            .map(|(handshake, count)| (handshake, *count))
    }

    /// Handshakes counted, over all outcomes.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|(_, count)| count).sum()
    }

    /// Whether nothing was counted (and nothing dropped).
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty() && self.dropped == 0
    }

    /// One line per outcome, for a log: `34 handshake(s) in 5s: protocol error 0x11000001
    /// (ZMTP_CRYPTOGRAPHIC): …`, and one for the events dropped, if any.
    pub fn lines(&self, interval: Duration) -> Vec<String> {
        self.entries(interval).map(|(_, line)| line).collect()
    }

    /// [`lines`](Self::lines), each with whether it tells admissions (logged as information;
    /// every other line, dropped events included, as a warning).
    fn entries(&self, interval: Duration) -> impl Iterator<Item = (bool, String)> + '_ {
        let outcomes = self.outcomes().map(move |(handshake, count)| {
            let line = format!(
                "{count} handshake(s) in {interval:?}: {}",
                in_words(handshake)
            );
            (handshake.outcome == HandshakeOutcome::Admitted, line)
        });
        let dropped = (self.dropped > 0).then(|| {
            let line = format!(
                "{} handshake event(s) in {interval:?} dropped unread (the watch's queue was full)",
                self.dropped
            );
            (false, line)
        });
        outcomes.chain(dropped)
    }
}

/// What a server operator reads for one outcome: short, and about the server's side (the
/// outcome's own text speaks to the client).
fn in_words(handshake: &ServerHandshake) -> String {
    match &handshake.outcome {
        HandshakeOutcome::Admitted => "admitted".into(),
        HandshakeOutcome::Refused { status } => format!(
            "refused by the authenticator (ZAP {status}); its decision events and log \
             (target actix_zap::decision) name each client"
        ),
        HandshakeOutcome::AuthenticatorError { status } => {
            format!("the authenticator failed (ZAP {status}): a provider error or timeout")
        }
        HandshakeOutcome::Stalled { .. } => "stalled: no outcome within the handshake interval \
             (a 300 'try later', a silent authenticator, or a client that stopped talking)"
            .into(),
        HandshakeOutcome::ProtocolError { code } => {
            let name = protocol_error_name(*code);
            let advice = match name {
                "ZMTP_CRYPTOGRAPHIC" => {
                    ": most likely a CURVE client that expects another server key"
                }
                "ZMTP_MECHANISM_MISMATCH" => ": a client that uses another security mechanism",
                _ => "",
            };
            format!("protocol error {code:#010x} ({name}){advice}")
        }
        _ => format!(
            "dropped during the handshake (errno {}): the peer hung up or was cut off",
            handshake.value
        ),
    }
}

impl HandshakeWatch {
    /// Counts the handshakes that end within `interval` (returning early when the socket
    /// closes): what a server logs instead of a line per handshake, see
    /// [`log_every`](Self::log_every).
    pub fn tally(&self, interval: Duration) -> HandshakeTally {
        self.tally_until(Instant::now() + interval).0
    }

    /// Logs the watched socket's handshakes on a thread of its own, one line per outcome and
    /// `interval` (target `actix_zap::HandshakeWatch`: admissions at `info`, the rest at
    /// `warn`; nothing for a quiet interval), until the socket closes.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use actix_zap::ServerSocket;
    ///
    /// let context = zmq::Context::new();
    /// let server = ServerSocket::plain("global").build(&context, zmq::ROUTER)?;
    /// ServerSocket::watch_handshakes(&context, &server)?.log_every(Duration::from_secs(10))?;
    /// server.bind("tcp://127.0.0.1:5557")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn log_every(self, interval: Duration) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("zap-handshake-log".into())
            .spawn(move || loop {
                let (tally, open) = self.tally_until(Instant::now() + interval);
                log_tally(&tally, interval);
                if !open {
                    return;
                }
            })
    }

    /// The handshakes that end before `deadline`, and whether the socket is still open.
    fn tally_until(&self, deadline: Instant) -> (HandshakeTally, bool) {
        let mut tally = HandshakeTally::default();
        let dropped_before = self.events.dropped();
        let open = loop {
            match self.next_until(deadline) {
                Ok(handshake) => tally.record(handshake),
                Err(RecvTimeoutError::Timeout) => break true,
                Err(RecvTimeoutError::Disconnected) => break false,
            }
        };
        tally.dropped = self.events.dropped() - dropped_before;
        (tally, open)
    }
}

/// Logs one interval's tally, one line per outcome.
fn log_tally(tally: &HandshakeTally, interval: Duration) {
    const TARGET: &str = "actix_zap::HandshakeWatch";
    for (admitted, line) in tally.entries(interval) {
        if admitted {
            log::info!(target: TARGET, "{line}");
        } else {
            log::warn!(target: TARGET, "{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::server_outcome;
    use zmq::SocketEvent as E;

    fn ended(event: E, value: u32) -> ServerHandshake {
        let event = event as u16;
        ServerHandshake {
            outcome: server_outcome(event, value).unwrap(),
            event,
            value,
        }
    }

    #[test]
    fn one_line_per_outcome_with_its_count() {
        let mut tally = HandshakeTally::default();
        assert!(tally.is_empty());
        let wrong_key = ended(E::HANDSHAKE_FAILED_PROTOCOL, 0x1100_0001);
        for _ in 0..34 {
            tally.record(wrong_key.clone());
        }
        tally.record(ended(E::HANDSHAKE_SUCCEEDED, 0));
        tally.record(ended(E::HANDSHAKE_FAILED_AUTH, 400));
        tally.record(ended(E::HANDSHAKE_FAILED_AUTH, 400));
        tally.record(ended(E::HANDSHAKE_FAILED_NO_DETAIL, 32));
        tally.dropped = 2;
        assert_eq!(tally.total(), 38);
        let lines = tally.lines(Duration::from_secs(5));
        assert_eq!(
            lines,
            [
                "34 handshake(s) in 5s: protocol error 0x11000001 (ZMTP_CRYPTOGRAPHIC): most \
                 likely a CURVE client that expects another server key",
                "1 handshake(s) in 5s: admitted",
                "2 handshake(s) in 5s: refused by the authenticator (ZAP 400); its decision \
                 events and log (target actix_zap::decision) name each client",
                "1 handshake(s) in 5s: dropped during the handshake (errno 32): the peer hung \
                 up or was cut off",
                "2 handshake event(s) in 5s dropped unread (the watch's queue was full)",
            ]
        );
        // A different value is another outcome: a 500 is not counted with the 400s.
        tally.record(ended(E::HANDSHAKE_FAILED_AUTH, 500));
        assert_eq!(tally.outcomes().count(), 5);
    }
}
