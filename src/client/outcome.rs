//! How a handshake ended, as the client's monitor events (and the server's greeting) tell it
//! (sans-IO: events in, outcome out).

use std::fmt;
use std::time::Duration;

use super::greeting::Mechanism;

/// How a ZMTP handshake ended, in words that say what to change.
///
/// Produced by the client-side check ([`HandshakeCheck`](crate::client::HandshakeCheck)) and,
/// with the same names, by [`ServerSocket`](crate::ServerSocket)'s opt-in monitor helper.
/// See the [module documentation](crate::client) for the libzmq 4.3.4 events behind each
/// variant.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeOutcome {
    /// The handshake succeeded (`HANDSHAKE_SUCCEEDED`).
    Admitted,
    /// The server's authenticator refused the client with ZAP status `400`
    /// (`HANDSHAKE_FAILED_AUTH`). The client sees the code, never the text: a wrong password,
    /// an unknown user, an unknown CURVE key and a denied address all look the same.
    Refused {
        /// The ZAP status code (400).
        status: u16,
    },
    /// The server's authenticator failed (`500`, or a status libzmq passed on unchanged): a
    /// provider error or timeout on the server, not the client's credentials.
    AuthenticatorError {
        /// The ZAP status code (500).
        status: u16,
    },
    /// Connected, but the handshake reached no outcome: the server's authenticator answered
    /// `300` (try later) or never answered. libzmq 4.3 keeps such a connection half-open until
    /// the *server's* `ZMQ_HANDSHAKE_IVL` (30 s by default) expires, then the client
    /// reconnects and asks again.
    Stalled {
        /// The longest time one connection stayed up without an outcome.
        waited: Duration,
    },
    /// The server closed every connection during the handshake without a failure reason
    /// (`HANDSHAKE_FAILED_NO_DETAIL` right after `CONNECTED`, until the deadline). Most likely
    /// a wrong CURVE server key: the server cannot decrypt the client's HELLO and hangs up. The
    /// other cause seen is a socket-type mismatch (a DEALER client to a PULL server): the
    /// server refuses the peer's `Socket-Type` without telling it why. Likely causes, not
    /// certainties; reported only at the deadline. Not a mechanism mismatch when the
    /// server's greeting was read: that is a [`MechanismMismatch`](Self::MechanismMismatch).
    Dropped {
        /// Connections dropped that way.
        attempts: u32,
    },
    /// The peers disagree about the protocol (`HANDSHAKE_FAILED_PROTOCOL`). A mechanism
    /// mismatch is reported this way (code `0x11000002`, `ZMTP_MECHANISM_MISMATCH`) only where
    /// the server's greeting was not read (an `ipc://` endpoint, a server that did not
    /// answer it, the server-side watch); otherwise it is a
    /// [`MechanismMismatch`](Self::MechanismMismatch).
    ProtocolError {
        /// libzmq's `ZMQ_PROTOCOL_ERROR_*` code.
        code: u32,
    },
    /// The client and the server use different security mechanisms, e.g. a PLAIN client and
    /// a CURVE server: libzmq fails every handshake between them (`ZMTP_MECHANISM_MISMATCH`).
    ///
    /// Certain, not guessed: the server's mechanism is the one its own greeting named, read
    /// by [`HandshakeCheck`](crate::client::HandshakeCheck) over a TCP connection of its own
    /// before the handshake; the client's is its socket's `ZMQ_MECHANISM`. The client's
    /// monitor events alone cannot say it reliably: libzmq often closes before its greeting
    /// is flushed, and the attempt looks like a [`Dropped`](Self::Dropped) one.
    MechanismMismatch {
        /// The client socket's mechanism.
        client: Mechanism,
        /// The mechanism the server's greeting named.
        server: Mechanism,
    },
    /// No connection could be made (`CONNECT_RETRIED` before any `CONNECTED`): nothing
    /// listens there, or a firewall refuses.
    Unreachable {
        /// Failed connection attempts seen.
        attempts: u32,
    },
    /// Nothing conclusive happened before the deadline (e.g. the TCP connect itself is
    /// still pending).
    DeadlinePassed,
}

impl HandshakeOutcome {
    /// A short stable name: `admitted`, `refused`, `authenticator-error`, `stalled`,
    /// `dropped`, `protocol-error`, `mechanism-mismatch`, `unreachable` or `deadline-passed`.
    pub fn name(&self) -> &'static str {
        match self {
            HandshakeOutcome::Admitted => "admitted",
            HandshakeOutcome::Refused { .. } => "refused",
            HandshakeOutcome::AuthenticatorError { .. } => "authenticator-error",
            HandshakeOutcome::Stalled { .. } => "stalled",
            HandshakeOutcome::Dropped { .. } => "dropped",
            HandshakeOutcome::ProtocolError { .. } => "protocol-error",
            HandshakeOutcome::MechanismMismatch { .. } => "mechanism-mismatch",
            HandshakeOutcome::Unreachable { .. } => "unreachable",
            HandshakeOutcome::DeadlinePassed => "deadline-passed",
        }
    }

    /// The ZAP status code the client was told, if any.
    pub fn status(&self) -> Option<u16> {
        match self {
            HandshakeOutcome::Refused { status }
            | HandshakeOutcome::AuthenticatorError { status } => Some(*status),
            _ => None,
        }
    }
}

impl fmt::Display for HandshakeOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeOutcome::Admitted => f.write_str("admitted: the handshake succeeded"),
            HandshakeOutcome::Refused { status } => write!(
                f,
                "refused by the server's authenticator (ZAP {status}): check the username and \
                 password (PLAIN) or ask the operator to trust this client's public key \
                 (CURVE); a denied client address looks the same, and the client cannot tell \
                 which it was: the server's decision log says"
            ),
            HandshakeOutcome::AuthenticatorError { status } => write!(
                f,
                "the server's authenticator failed (ZAP {status}): not your credentials; its \
                 credential provider errored or timed out, ask the server operator"
            ),
            HandshakeOutcome::Stalled { waited } => write!(
                f,
                "stalled: connected, but no handshake outcome after {} ms; the server's \
                 authenticator said 'try later' (300) or is not answering (hung provider, \
                 authenticator not running); libzmq holds the connection until the server's \
                 handshake interval (30 s by default) and then retries",
                waited.as_millis()
            ),
            HandshakeOutcome::Dropped { attempts } => write!(
                f,
                "dropped during the handshake ({attempts} time(s)) with no reason given: most \
                 likely a wrong CURVE server key (check ZMQ_CURVE_SERVERKEY against the \
                 server's public key), or socket types that cannot talk (e.g. DEALER to a PULL \
                 server); likely causes, not certainties"
            ),
            HandshakeOutcome::ProtocolError { code } => write!(
                f,
                "protocol error {code:#010x} ({}): {}",
                protocol_error_name(*code),
                protocol_error_advice(*code)
            ),
            HandshakeOutcome::MechanismMismatch { client, server } => write!(
                f,
                "mechanism mismatch (ZMTP_MECHANISM_MISMATCH): this client uses {client}, the \
                 server {server} (its greeting says so); give the client {}, or make the \
                 server use {client}",
                mechanism_setup(server)
            ),
            HandshakeOutcome::Unreachable { attempts } => write!(
                f,
                "unreachable: connection refused {attempts} time(s); nothing listens at this \
                 endpoint (check host, port and that the server is running)"
            ),
            HandshakeOutcome::DeadlinePassed => f.write_str(
                "no outcome before the deadline: the connection was not even established \
                 (a host that drops packets, or a slow network); check the address and firewalls",
            ),
        }
    }
}

/// What a client sets to use `mechanism`.
fn mechanism_setup(mechanism: &Mechanism) -> String {
    match mechanism {
        Mechanism::Null => "no security options (NULL)".into(),
        Mechanism::Plain => "a username and password (PLAIN: ZMQ_PLAIN_USERNAME and \
                             ZMQ_PLAIN_PASSWORD)"
            .into(),
        Mechanism::Curve => "the server's public key and a key pair of its own (CURVE: \
                             ZMQ_CURVE_SERVERKEY, ZMQ_CURVE_PUBLICKEY, ZMQ_CURVE_SECRETKEY)"
            .into(),
        other => format!("the {other} mechanism"),
    }
}

/// `ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH`.
pub(crate) const ZMTP_MECHANISM_MISMATCH: u32 = 0x1100_0002;

/// libzmq's name for a `ZMQ_PROTOCOL_ERROR_*` code.
pub fn protocol_error_name(code: u32) -> &'static str {
    match code {
        0x1000_0000 => "ZMTP_UNSPECIFIED",
        0x1000_0001 => "ZMTP_UNEXPECTED_COMMAND",
        0x1000_0002 => "ZMTP_INVALID_SEQUENCE",
        0x1000_0003 => "ZMTP_KEY_EXCHANGE",
        0x1000_0011..=0x1000_0017 => "ZMTP_MALFORMED_COMMAND",
        0x1000_0018 => "ZMTP_INVALID_METADATA",
        0x1100_0001 => "ZMTP_CRYPTOGRAPHIC",
        ZMTP_MECHANISM_MISMATCH => "ZMTP_MECHANISM_MISMATCH",
        0x2000_0000 => "ZAP_UNSPECIFIED",
        0x2000_0001 => "ZAP_MALFORMED_REPLY",
        0x2000_0002 => "ZAP_BAD_REQUEST_ID",
        0x2000_0003 => "ZAP_BAD_VERSION",
        0x2000_0004 => "ZAP_INVALID_STATUS_CODE",
        0x2000_0005 => "ZAP_INVALID_METADATA",
        0x3000_0000 => "WS_UNSPECIFIED",
        _ => "unknown",
    }
}

fn protocol_error_advice(code: u32) -> &'static str {
    match code {
        ZMTP_MECHANISM_MISMATCH => {
            "client and server use different security mechanisms; make both NULL, PLAIN or \
             CURVE"
        }
        0x1100_0001 => {
            "a CURVE message did not decrypt; check the server key the client expects and the \
             client's key pair"
        }
        0x2000_0000..=0x2000_0005 => {
            "the server's ZAP handler sent an invalid reply; a server-side bug, ask its operator"
        }
        _ => "the peers speak incompatible ZMTP; check both libzmq versions and socket options",
    }
}

/// A connection that stays up this long without an outcome is stalling, not being dropped.
/// A hang-up after a failed decryption comes within a local round trip (a few ms measured).
pub const STALL_THRESHOLD: Duration = Duration::from_millis(250);

/// libzmq's event ids as `u16`.
pub(crate) mod event {
    use zmq::SocketEvent as E;
    pub(crate) const CONNECTED: u16 = E::CONNECTED as u16;
    pub(crate) const CONNECT_RETRIED: u16 = E::CONNECT_RETRIED as u16;
    pub(crate) const DISCONNECTED: u16 = E::DISCONNECTED as u16;
    pub(crate) const HANDSHAKE_FAILED_NO_DETAIL: u16 = E::HANDSHAKE_FAILED_NO_DETAIL as u16;
    pub(crate) const HANDSHAKE_SUCCEEDED: u16 = E::HANDSHAKE_SUCCEEDED as u16;
    pub(crate) const HANDSHAKE_FAILED_PROTOCOL: u16 = E::HANDSHAKE_FAILED_PROTOCOL as u16;
    pub(crate) const HANDSHAKE_FAILED_AUTH: u16 = E::HANDSHAKE_FAILED_AUTH as u16;
}

/// The outcome a single handshake-failure-or-success event states outright, on either side.
pub(crate) fn conclusive(event_id: u16, value: u32) -> Option<HandshakeOutcome> {
    match event_id {
        event::HANDSHAKE_SUCCEEDED => Some(HandshakeOutcome::Admitted),
        event::HANDSHAKE_FAILED_PROTOCOL => Some(HandshakeOutcome::ProtocolError { code: value }),
        event::HANDSHAKE_FAILED_AUTH => {
            let status = u16::try_from(value).unwrap_or(500);
            Some(match status {
                300..=399 => HandshakeOutcome::Stalled {
                    waited: Duration::ZERO,
                },
                400..=499 => HandshakeOutcome::Refused { status },
                _ => HandshakeOutcome::AuthenticatorError { status },
            })
        }
        _ => None,
    }
}

/// Folds a client socket's monitor events, stamped with the time since the check began,
/// into an outcome.
#[derive(Debug, Default)]
pub struct Classifier {
    /// The client's and the server's mechanisms, when the server's greeting named another
    /// than the client's.
    mismatch: Option<(Mechanism, Mechanism)>,
    connected_at: Option<Duration>,
    ever_connected: bool,
    drops: u32,
    longest_stall: Option<Duration>,
    failed_connects: u32,
}

impl Classifier {
    /// A classifier that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// A classifier that knows the client socket's mechanism and the one the server's
    /// greeting named (see [`Greeting`](crate::client::Greeting)).
    ///
    /// When they differ, every handshake fails, and the first attempt that ends, however it
    /// ends (`HANDSHAKE_FAILED_PROTOCOL` with `ZMTP_MECHANISM_MISMATCH`, or a bare drop), or
    /// else the deadline, is a [`MechanismMismatch`](HandshakeOutcome::MechanismMismatch)
    /// naming both. What the greeting cannot explain still speaks for itself: a success or a
    /// ZAP status (the server behind the endpoint changed), another protocol error, a
    /// connection refused. When they are the same, it classifies like [`new`](Self::new).
    pub fn with_mechanisms(client: Mechanism, server: Mechanism) -> Self {
        Classifier {
            mismatch: (client != server).then_some((client, server)),
            ..Self::default()
        }
    }

    fn mismatch(&self) -> Option<HandshakeOutcome> {
        self.mismatch
            .as_ref()
            .map(|(client, server)| HandshakeOutcome::MechanismMismatch {
                client: client.clone(),
                server: server.clone(),
            })
    }

    /// Takes one event seen at `at`; returns the outcome once the events settle it.
    pub fn event(&mut self, at: Duration, event_id: u16, value: u32) -> Option<HandshakeOutcome> {
        let attempt_ended = match event_id {
            event::HANDSHAKE_FAILED_PROTOCOL => value == ZMTP_MECHANISM_MISMATCH,
            event::HANDSHAKE_FAILED_NO_DETAIL | event::DISCONNECTED => self.connected_at.is_some(),
            _ => false,
        };
        if attempt_ended {
            if let Some(mismatch) = self.mismatch() {
                return Some(mismatch);
            }
        }
        if let Some(outcome) = conclusive(event_id, value) {
            return Some(outcome);
        }
        match event_id {
            event::CONNECTED => {
                self.connected_at = Some(at);
                self.ever_connected = true;
            }
            event::HANDSHAKE_FAILED_NO_DETAIL | event::DISCONNECTED => {
                // NO_DETAIL comes first, then DISCONNECTED: count the connection once.
                if let Some(since) = self.connected_at.take() {
                    let lived = at.saturating_sub(since);
                    // Never concluded here: without the server's greeting, a mechanism
                    // mismatch ends some attempts this way too (a race in libzmq), and a
                    // later attempt may still report it.
                    if lived < STALL_THRESHOLD {
                        self.drops += 1;
                    } else {
                        // The server's handshake interval ended a stalled connection.
                        self.note_stall(lived);
                    }
                }
            }
            event::CONNECT_RETRIED if !self.ever_connected => {
                self.failed_connects += 1;
                return Some(HandshakeOutcome::Unreachable {
                    attempts: self.failed_connects,
                });
            }
            _ => {}
        }
        None
    }

    fn note_stall(&mut self, lived: Duration) {
        self.longest_stall = Some(self.longest_stall.map_or(lived, |l| l.max(lived)));
    }

    /// The outcome when the deadline passes at `at` without a conclusive event.
    pub fn deadline(mut self, at: Duration) -> HandshakeOutcome {
        if let Some(mismatch) = self.mismatch() {
            return mismatch;
        }
        if let Some(since) = self.connected_at {
            let lived = at.saturating_sub(since);
            if lived >= STALL_THRESHOLD {
                self.note_stall(lived);
            }
        }
        if let Some(waited) = self.longest_stall {
            HandshakeOutcome::Stalled { waited }
        } else if self.drops > 0 {
            HandshakeOutcome::Dropped {
                attempts: self.drops,
            }
        } else if self.failed_connects > 0 {
            HandshakeOutcome::Unreachable {
                attempts: self.failed_connects,
            }
        } else {
            HandshakeOutcome::DeadlinePassed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::event::*;
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn run(events: &[(u64, u16, u32)], deadline: u64) -> HandshakeOutcome {
        let mut c = Classifier::new();
        for &(at, id, value) in events {
            if let Some(outcome) = c.event(ms(at), id, value) {
                return outcome;
            }
        }
        c.deadline(ms(deadline))
    }

    #[test]
    fn auth_failures_carry_their_status() {
        let refused = run(&[(1, CONNECTED, 9), (2, HANDSHAKE_FAILED_AUTH, 400)], 1000);
        assert_eq!(refused, HandshakeOutcome::Refused { status: 400 });
        let failed = run(&[(1, CONNECTED, 9), (2, HANDSHAKE_FAILED_AUTH, 500)], 1000);
        assert_eq!(failed, HandshakeOutcome::AuthenticatorError { status: 500 });
        assert_eq!(failed.status(), Some(500));
    }

    #[test]
    fn a_wrong_server_key_is_quick_drops_until_the_deadline() {
        let mut events = vec![];
        for i in 0..3 {
            events.push((i * 100, CONNECTED, 9));
            events.push((i * 100 + 2, HANDSHAKE_FAILED_NO_DETAIL, 32));
            events.push((i * 100 + 2, DISCONNECTED, 9));
            events.push((i * 100 + 2, CONNECT_RETRIED, 100));
        }
        assert_eq!(
            run(&events, 5000),
            HandshakeOutcome::Dropped { attempts: 3 }
        );
    }

    #[test]
    fn a_300_is_a_stall_even_after_one_quick_drop() {
        let events = [
            (1, CONNECTED, 9),
            (3, HANDSHAKE_FAILED_NO_DETAIL, 32),
            (3, CONNECT_RETRIED, 100),
            (110, CONNECTED, 9),
            (1110, HANDSHAKE_FAILED_NO_DETAIL, 32),
            (1200, CONNECTED, 9),
            (1203, HANDSHAKE_FAILED_NO_DETAIL, 32),
        ];
        assert_eq!(
            run(&events, 2000),
            HandshakeOutcome::Stalled { waited: ms(1000) }
        );
        assert_eq!(
            run(&[(1, CONNECTED, 9)], 2000),
            HandshakeOutcome::Stalled { waited: ms(1999) }
        );
    }

    #[test]
    fn nothing_listening_is_unreachable_and_silence_is_the_deadline() {
        assert_eq!(
            run(&[(0, CONNECT_RETRIED, 100)], 1000),
            HandshakeOutcome::Unreachable { attempts: 1 }
        );
        assert_eq!(run(&[], 1000), HandshakeOutcome::DeadlinePassed);
    }

    fn plain_to_curve() -> Classifier {
        Classifier::with_mechanisms(Mechanism::Plain, Mechanism::Curve)
    }

    fn run_with(mut c: Classifier, events: &[(u64, u16, u32)], deadline: u64) -> HandshakeOutcome {
        for &(at, id, value) in events {
            if let Some(outcome) = c.event(ms(at), id, value) {
                return outcome;
            }
        }
        c.deadline(ms(deadline))
    }

    #[test]
    fn with_the_servers_greeting_a_mismatch_is_named_however_the_attempt_ends() {
        let mismatch = HandshakeOutcome::MechanismMismatch {
            client: Mechanism::Plain,
            server: Mechanism::Curve,
        };
        let reported = [
            (1, CONNECTED, 9),
            (2, HANDSHAKE_FAILED_PROTOCOL, ZMTP_MECHANISM_MISMATCH),
        ];
        let dropped = [(1, CONNECTED, 9), (2, HANDSHAKE_FAILED_NO_DETAIL, 32)];
        let disconnected = [(1, CONNECTED, 9), (2, DISCONNECTED, 9)];
        for events in [&reported[..], &dropped, &disconnected, &[]] {
            assert_eq!(
                run_with(plain_to_curve(), events, 5000),
                mismatch,
                "{events:?}"
            );
        }
        // Without the greeting the same drop is only a drop, and only at the deadline.
        assert_eq!(
            run(&dropped, 5000),
            HandshakeOutcome::Dropped { attempts: 1 }
        );
        let text = mismatch.to_string();
        assert!(
            text.contains("client uses PLAIN") && text.contains("server CURVE"),
            "{text}"
        );
        assert!(text.contains("ZMQ_CURVE_SERVERKEY"), "{text}");
        assert_eq!(mismatch.name(), "mechanism-mismatch");
        assert_eq!(mismatch.status(), None);
    }

    #[test]
    fn with_the_servers_greeting_what_it_cannot_explain_still_speaks() {
        let cryptographic = [
            (1, CONNECTED, 9),
            (2, HANDSHAKE_FAILED_PROTOCOL, 0x1100_0001),
        ];
        assert_eq!(
            run_with(plain_to_curve(), &cryptographic, 5000),
            HandshakeOutcome::ProtocolError { code: 0x1100_0001 }
        );
        assert_eq!(
            run_with(plain_to_curve(), &[(0, CONNECT_RETRIED, 100)], 5000),
            HandshakeOutcome::Unreachable { attempts: 1 }
        );
        assert_eq!(
            run_with(
                plain_to_curve(),
                &[(1, CONNECTED, 9), (2, HANDSHAKE_SUCCEEDED, 0)],
                5000
            ),
            HandshakeOutcome::Admitted
        );
        // The same mechanism on both sides: drops stay drops, reported at the deadline.
        let same = Classifier::with_mechanisms(Mechanism::Curve, Mechanism::Curve);
        let dropped = [(1, CONNECTED, 9), (2, HANDSHAKE_FAILED_NO_DETAIL, 32)];
        assert_eq!(
            run_with(same, &dropped, 5000),
            HandshakeOutcome::Dropped { attempts: 1 }
        );
    }

    #[test]
    fn every_outcome_says_what_to_change() {
        let outcomes = [
            HandshakeOutcome::Refused { status: 400 },
            HandshakeOutcome::Dropped { attempts: 3 },
            HandshakeOutcome::ProtocolError { code: 0x1100_0002 },
        ];
        let texts: Vec<String> = outcomes.iter().map(ToString::to_string).collect();
        assert!(texts[0].contains("password"), "{}", texts[0]);
        assert!(texts[1].contains("server key"), "{}", texts[1]);
        assert!(texts[2].contains("MECHANISM_MISMATCH"), "{}", texts[2]);
    }
}
