//! The ZMTP 3 greeting a server sends first, parsed without I/O (bytes in, mechanism out).
//!
//! ZMTP 3.1 (RFC 37) opens every connection with a 64-byte greeting from each peer:
//!
//! | bytes | field | libzmq 4.3.4 sends |
//! |---|---|---|
//! | 0-9 | signature: `FF`, 8 bytes of padding, `7F` | `FF 00 00 00 00 00 00 00 01 7F` (the padding is not significant) |
//! | 10-11 | version: major, minor | `03 01` |
//! | 12-31 | mechanism: ASCII name, padded with NULs | `NULL`, `PLAIN` or `CURVE` (`GSSAPI` where built in) |
//! | 32 | as-server: `00` or `01` | `00`, whatever the socket's role |
//! | 33-63 | filler | zeros |
//!
//! A libzmq server sends bytes 10-63 only once the client's signature and major version
//! have arrived ([`GREETING_START`]): [`read_server_greeting`](super::read_server_greeting)
//! sends those 11 bytes over a plain TCP connection and hands what comes back to
//! [`Greeting::parse`].

use std::fmt;

/// Length of a ZMTP 3 greeting.
pub const GREETING_LEN: usize = 64;

/// What a client sends to make a ZMTP 3 server send its whole greeting: the signature and
/// the major version 3.
pub const GREETING_START: [u8; 11] = [0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0x7F, 3];

/// Where the mechanism field starts and how long it is.
const MECHANISM_AT: usize = 12;
const MECHANISM_LEN: usize = 20;
/// The as-server byte.
const AS_SERVER_AT: usize = 32;

/// A ZMTP security mechanism, by the name peers exchange in their greetings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// `NULL`: no security.
    Null,
    /// `PLAIN`: username and password in clear text.
    Plain,
    /// `CURVE`: CurveZMQ.
    Curve,
    /// `GSSAPI`: Kerberos, in libzmq builds that have it.
    Gssapi,
    /// Any other name a greeting carried (printable ASCII, at most 20 bytes).
    Other(String),
}

impl Mechanism {
    /// The name as it travels in a greeting: `NULL`, `PLAIN`, `CURVE`, `GSSAPI` or the
    /// other name.
    pub fn name(&self) -> &str {
        match self {
            Mechanism::Null => "NULL",
            Mechanism::Plain => "PLAIN",
            Mechanism::Curve => "CURVE",
            Mechanism::Gssapi => "GSSAPI",
            Mechanism::Other(name) => name,
        }
    }

    /// The mechanism a greeting names (exact, case-sensitive, as libzmq compares them).
    pub fn from_name(name: &str) -> Mechanism {
        match name {
            "NULL" => Mechanism::Null,
            "PLAIN" => Mechanism::Plain,
            "CURVE" => Mechanism::Curve,
            "GSSAPI" => Mechanism::Gssapi,
            other => Mechanism::Other(other.to_owned()),
        }
    }
}

impl From<zmq::Mechanism> for Mechanism {
    fn from(mechanism: zmq::Mechanism) -> Self {
        match mechanism {
            zmq::Mechanism::ZMQ_NULL => Mechanism::Null,
            zmq::Mechanism::ZMQ_PLAIN => Mechanism::Plain,
            zmq::Mechanism::ZMQ_CURVE => Mechanism::Curve,
            zmq::Mechanism::ZMQ_GSSAPI => Mechanism::Gssapi,
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A peer's ZMTP 3 greeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// The ZMTP version, `(major, minor)`: `(3, 1)` from libzmq 4.2 and later, `(3, 0)`
    /// from 4.0 and 4.1.
    pub version: (u8, u8),
    /// The security mechanism the peer uses. libzmq fails a handshake whose two greetings
    /// name different mechanisms (`ZMTP_MECHANISM_MISMATCH`).
    pub mechanism: Mechanism,
    /// The as-server flag. libzmq 4.3 always sends `false` (it never fills it in).
    pub as_server: bool,
}

/// Why bytes are not a ZMTP 3 greeting. Checked in wire order, so garbage is named by its
/// first wrong byte even when fewer than 64 bytes arrived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GreetingError {
    /// The bytes do not start with `FF` (byte 0) or the signature does not end with `7F`
    /// (byte 9): not a ZMTP 3 peer (another protocol, or ZMTP 1.0).
    #[error("not a ZMTP greeting: signature byte {at} is {byte:#04x}, expected {expected:#04x}")]
    BadSignature {
        /// Which byte (0 or 9).
        at: usize,
        /// What it was.
        byte: u8,
        /// What ZMTP 3 sends there.
        expected: u8,
    },
    /// A ZMTP 1.0 or 2.0 peer (libzmq 2.x or 3.x): its greeting names no mechanism.
    #[error("the peer speaks ZMTP major version {major}, before mechanisms (ZMTP 3)")]
    OldVersion {
        /// The major version it sent.
        major: u8,
    },
    /// Fewer than 64 bytes, and nothing wrong in them so far.
    #[error("the greeting is incomplete: {got} of 64 bytes")]
    Short {
        /// How many bytes there were.
        got: usize,
    },
    /// The mechanism field is all NULs.
    #[error("the greeting names no mechanism")]
    EmptyMechanism,
    /// A mechanism byte that is not printable ASCII, or not NUL after the padding began.
    #[error("mechanism byte {at} is {byte:#04x}: not printable ASCII padded with NULs")]
    BadMechanism {
        /// Position in the greeting (12-31).
        at: usize,
        /// What it was.
        byte: u8,
    },
    /// The as-server byte is neither `00` nor `01`.
    #[error("the as-server byte is {0:#04x}, expected 0x00 or 0x01")]
    BadAsServer(u8),
}

impl Greeting {
    /// Parses a peer's greeting from the bytes it sent first. Bytes past the 64th (the
    /// start of the handshake's commands) are ignored; the filler (bytes 33-63) is not
    /// checked, as libzmq does not check it. Never panics.
    pub fn parse(bytes: &[u8]) -> Result<Greeting, GreetingError> {
        for (at, expected) in [(0, 0xFF), (9, 0x7F)] {
            match bytes.get(at) {
                Some(&byte) if byte != expected => {
                    return Err(GreetingError::BadSignature { at, byte, expected })
                }
                _ => {}
            }
        }
        if let Some(&major) = bytes.get(10) {
            if major < 3 {
                return Err(GreetingError::OldVersion { major });
            }
        }
        let Some(greeting) = bytes.get(..GREETING_LEN) else {
            return Err(GreetingError::Short { got: bytes.len() });
        };
        let field = &greeting[MECHANISM_AT..MECHANISM_AT + MECHANISM_LEN];
        let name_len = field.iter().position(|&b| b == 0).unwrap_or(field.len());
        if name_len == 0 {
            return Err(GreetingError::EmptyMechanism);
        }
        let bad = |i: usize| GreetingError::BadMechanism {
            at: MECHANISM_AT + i,
            byte: field[i],
        };
        if let Some(i) = field[..name_len].iter().position(|b| !b.is_ascii_graphic()) {
            return Err(bad(i));
        }
        if let Some(i) = field[name_len..].iter().position(|&b| b != 0) {
            return Err(bad(name_len + i));
        }
        // Printable ASCII is UTF-8.
        let name = String::from_utf8_lossy(&field[..name_len]);
        let as_server = match greeting[AS_SERVER_AT] {
            0 => false,
            1 => true,
            other => return Err(GreetingError::BadAsServer(other)),
        };
        Ok(Greeting {
            version: (greeting[10], greeting[11]),
            mechanism: Mechanism::from_name(&name),
            as_server,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A greeting exactly as libzmq 4.3.4 sent it (padding byte 8 is 01).
    fn libzmq(mechanism: &str) -> Vec<u8> {
        let mut bytes = vec![0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 3, 1];
        let mut field = [0u8; 20];
        field[..mechanism.len()].copy_from_slice(mechanism.as_bytes());
        bytes.extend_from_slice(&field);
        bytes.extend_from_slice(&[0; 32]);
        assert_eq!(bytes.len(), GREETING_LEN);
        bytes
    }

    #[test]
    fn libzmq_greetings_name_their_mechanism() {
        for (name, mechanism) in [
            ("NULL", Mechanism::Null),
            ("PLAIN", Mechanism::Plain),
            ("CURVE", Mechanism::Curve),
            ("GSSAPI", Mechanism::Gssapi),
        ] {
            let greeting = Greeting::parse(&libzmq(name)).unwrap();
            assert_eq!(greeting.version, (3, 1));
            assert_eq!(greeting.mechanism, mechanism);
            assert_eq!(greeting.mechanism.name(), name);
            assert!(!greeting.as_server);
        }
        let other = Greeting::parse(&libzmq("X-TEST.1+")).unwrap();
        assert_eq!(other.mechanism, Mechanism::Other("X-TEST.1+".into()));
        assert_eq!(other.mechanism.to_string(), "X-TEST.1+");
        let full = Greeting::parse(&libzmq("ABCDEFGHIJKLMNOPQRST")).unwrap();
        assert_eq!(full.mechanism.name(), "ABCDEFGHIJKLMNOPQRST");
    }

    #[test]
    fn what_follows_the_greeting_is_ignored_and_as_server_is_read() {
        let mut bytes = libzmq("CURVE");
        bytes[32] = 1;
        bytes.extend_from_slice(b"\x04\x29\x05HELLO");
        let greeting = Greeting::parse(&bytes).unwrap();
        assert!(greeting.as_server);
        assert_eq!(greeting.mechanism, Mechanism::Curve);
    }

    #[test]
    fn a_short_greeting_is_short_unless_its_bytes_are_already_wrong() {
        let whole = libzmq("PLAIN");
        for got in [0, 1, 10, 11, 12, 31, 32, 63] {
            assert_eq!(
                Greeting::parse(&whole[..got]),
                Err(GreetingError::Short { got }),
                "{got} bytes"
            );
        }
        assert!(matches!(
            Greeting::parse(b"HTTP/1.1 400 Bad Request\r\n"),
            Err(GreetingError::BadSignature {
                at: 0,
                byte: b'H',
                ..
            })
        ));
        let mut zmtp1 = whole.clone();
        zmtp1[9] = 0x01;
        assert_eq!(
            Greeting::parse(&zmtp1[..10]),
            Err(GreetingError::BadSignature {
                at: 9,
                byte: 0x01,
                expected: 0x7F
            })
        );
    }

    #[test]
    fn older_zmtp_versions_name_no_mechanism() {
        let mut zmtp2 = libzmq("NULL");
        zmtp2[10] = 1;
        assert_eq!(
            Greeting::parse(&zmtp2[..12]),
            Err(GreetingError::OldVersion { major: 1 })
        );
        let mut future = libzmq("NULL");
        future[10] = 4;
        assert_eq!(Greeting::parse(&future).unwrap().version, (4, 1));
    }

    #[test]
    fn malformed_mechanisms_are_named_by_their_first_bad_byte() {
        let mut empty = libzmq("");
        assert_eq!(Greeting::parse(&empty), Err(GreetingError::EmptyMechanism));
        empty[12] = 0xC3;
        assert_eq!(
            Greeting::parse(&empty),
            Err(GreetingError::BadMechanism { at: 12, byte: 0xC3 })
        );
        let mut space = libzmq("CURVE");
        space[14] = b' ';
        assert_eq!(
            Greeting::parse(&space),
            Err(GreetingError::BadMechanism { at: 14, byte: b' ' })
        );
        let mut after_padding = libzmq("NULL");
        after_padding[20] = b'X';
        assert_eq!(
            Greeting::parse(&after_padding),
            Err(GreetingError::BadMechanism { at: 20, byte: b'X' })
        );
        let mut as_server = libzmq("NULL");
        as_server[32] = 7;
        assert_eq!(
            Greeting::parse(&as_server),
            Err(GreetingError::BadAsServer(7))
        );
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..100),
            zmtp3 in proptest::prelude::any::<bool>(),
        ) {
            // Half the inputs get a valid signature and version, to reach the later checks.
            let mut bytes = bytes;
            if zmtp3 {
                let n = bytes.len().min(GREETING_START.len());
                bytes[..n].copy_from_slice(&GREETING_START[..n]);
            }
            if let Ok(greeting) = Greeting::parse(&bytes) {
                proptest::prop_assert!(bytes.len() >= GREETING_LEN);
                proptest::prop_assert!(!greeting.mechanism.name().is_empty());
                proptest::prop_assert_eq!(Mechanism::from_name(greeting.mechanism.name()), greeting.mechanism);
            }
        }
    }
}
