//! Parsing a ZAP request from the frames a REP socket would see (RFC 27, plus libzmq's GSSAPI).
//!
//! Parsing borrows from the frames and allocates nothing for the four mechanisms libzmq
//! sends, so the decision path stays cheap.

use std::borrow::Cow;

use crate::keys::CurvePublicKey;

/// The only ZAP version there is.
pub const ZAP_VERSION: &[u8] = b"1.0";

/// A parsed ZAP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// Opaque; the reply echoes it (libzmq always sends `1`).
    pub request_id: &'a [u8],
    /// The server socket's `ZMQ_ZAP_DOMAIN`; empty when it has none.
    pub domain: Cow<'a, str>,
    /// The peer's IP address as text (IPv4 dotted or IPv6), no port.
    pub address: Cow<'a, str>,
    /// The *server* socket's routing id (a libzmq quirk), usually empty.
    pub identity: &'a [u8],
    /// The security mechanism and the credentials it carries.
    pub mechanism: Mechanism<'a>,
}

/// A mechanism with its credential frames.
#[derive(Clone, PartialEq, Eq)]
pub enum Mechanism<'a> {
    /// No credentials; ZAP is only asked when the server socket has a ZAP domain.
    Null,
    /// Username and password, each at most 255 bytes on the wire.
    Plain {
        /// The username frame.
        username: &'a [u8],
        /// The password frame. Never logged: `Debug` redacts it.
        password: &'a [u8],
    },
    /// The client's long-term public key.
    Curve {
        /// 32 binary bytes.
        public_key: CurvePublicKey,
    },
    /// libzmq's extension: the principal's display name.
    Gssapi {
        /// The principal frame.
        principal: &'a [u8],
    },
    /// A name libzmq never sends; kept so the policy can refuse it by name.
    Unknown {
        /// The mechanism frame.
        name: &'a [u8],
        /// How many credential frames followed.
        credentials: usize,
    },
}

impl Mechanism<'_> {
    /// The mechanism's name as it appears on the wire.
    pub fn name(&self) -> Cow<'_, str> {
        match self {
            Mechanism::Null => "NULL".into(),
            Mechanism::Plain { .. } => "PLAIN".into(),
            Mechanism::Curve { .. } => "CURVE".into(),
            Mechanism::Gssapi { .. } => "GSSAPI".into(),
            Mechanism::Unknown { name, .. } => String::from_utf8_lossy(name),
        }
    }
}

impl std::fmt::Debug for Mechanism<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mechanism::Null => f.write_str("Null"),
            Mechanism::Plain { username, .. } => f
                .debug_struct("Plain")
                .field("username", &String::from_utf8_lossy(username))
                .field("password", &"<redacted>")
                .finish(),
            Mechanism::Curve { public_key } => f
                .debug_struct("Curve")
                .field("public_key", public_key)
                .finish(),
            Mechanism::Gssapi { principal } => f
                .debug_struct("Gssapi")
                .field("principal", &String::from_utf8_lossy(principal))
                .finish(),
            Mechanism::Unknown { name, credentials } => f
                .debug_struct("Unknown")
                .field("name", &String::from_utf8_lossy(name))
                .field("credentials", credentials)
                .finish(),
        }
    }
}

/// Why frames are not a valid ZAP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// Fewer than 2 frames: there is no request id to echo, so no reply is possible.
    #[error("{0} frame(s): not enough information to reply")]
    Unanswerable(usize),
    /// 2 to 5 frames: answerable, but not a request.
    #[error("{0} frames, a request has at least 6")]
    NotEnoughFrames(usize),
    /// The version frame is not `1.0`.
    #[error("version is not 1.0")]
    InvalidVersion,
    /// The mechanism got the wrong number or shape of credential frames.
    #[error("{mechanism} expects {expected} credential frame(s), got {got}")]
    InvalidCredentials {
        /// `PLAIN`, `CURVE` or `GSSAPI`.
        mechanism: &'static str,
        /// Frames the mechanism carries.
        expected: usize,
        /// Frames received.
        got: usize,
    },
    /// A CURVE key frame that is not 32 bytes.
    #[error("CURVE key frame has {0} bytes, not 32")]
    InvalidCurveKey(usize),
}

/// A frame as text, borrowed when it is UTF-8 (always, from libzmq: a domain and a numeric
/// address), else with U+FFFD for each invalid sequence.
///
/// `from_utf8_lossy`, not `from_utf8` first: the latter costs ~15 fewer instructions per
/// frame but returns its `&str` through memory as two 8-byte stores that the caller reloads
/// as one 16-byte load — a store-forwarding stall, measured at +11 ns per decision (13 %) on
/// this project's machines (see BENCHMARKS.md, "After issue 16, on a quiet machine").
fn text(frame: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(frame)
}

impl<'a> Request<'a> {
    /// Parses the frames after the routing envelope.
    ///
    /// ```
    /// use actix_zap::zap::{Mechanism, Request};
    /// let frames: [&[u8]; 8] =
    ///     [b"1.0", b"1", b"global", b"127.0.0.1", b"", b"PLAIN", b"admin", b"secret"];
    /// let request = Request::parse(&frames).unwrap();
    /// assert_eq!(request.domain, "global");
    /// assert!(matches!(request.mechanism, Mechanism::Plain { username: b"admin", .. }));
    /// ```
    #[inline] // the caller then builds the request in place instead of copying it (a stall)
    pub fn parse<F: AsRef<[u8]>>(frames: &'a [F]) -> Result<Self, RequestError> {
        if frames.len() < 2 {
            return Err(RequestError::Unanswerable(frames.len()));
        }
        if frames.len() < 6 {
            return Err(RequestError::NotEnoughFrames(frames.len()));
        }
        if frames[0].as_ref() != ZAP_VERSION {
            return Err(RequestError::InvalidVersion);
        }
        let credentials = &frames[6..];
        Ok(Request {
            request_id: frames[1].as_ref(),
            domain: text(frames[2].as_ref()),
            address: text(frames[3].as_ref()),
            identity: frames[4].as_ref(),
            mechanism: parse_mechanism(frames[5].as_ref(), credentials)?,
        })
    }
}

fn expect<'f, F: AsRef<[u8]>>(
    mechanism: &'static str,
    credentials: &'f [F],
    expected: usize,
) -> Result<&'f [F], RequestError> {
    if credentials.len() == expected {
        Ok(credentials)
    } else {
        Err(RequestError::InvalidCredentials {
            mechanism,
            expected,
            got: credentials.len(),
        })
    }
}

fn parse_mechanism<'a, F: AsRef<[u8]>>(
    name: &'a [u8],
    credentials: &'a [F],
) -> Result<Mechanism<'a>, RequestError> {
    Ok(match name {
        b"NULL" => {
            expect("NULL", credentials, 0)?;
            Mechanism::Null
        }
        b"PLAIN" => {
            let c = expect("PLAIN", credentials, 2)?;
            Mechanism::Plain {
                username: c[0].as_ref(),
                password: c[1].as_ref(),
            }
        }
        b"CURVE" => {
            let key = expect("CURVE", credentials, 1)?[0].as_ref();
            Mechanism::Curve {
                public_key: CurvePublicKey::from_slice(key)
                    .map_err(|_| RequestError::InvalidCurveKey(key.len()))?,
            }
        }
        b"GSSAPI" => Mechanism::Gssapi {
            principal: expect("GSSAPI", credentials, 1)?[0].as_ref(),
        },
        other => Mechanism::Unknown {
            name: other,
            credentials: credentials.len(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(mechanism: &'static [u8], creds: &[&'static [u8]]) -> &'static mut [&'static [u8]] {
        let mut f: Vec<&[u8]> = vec![b"1.0", b"1", b"dom", b"10.0.0.1", b"ID", mechanism];
        f.extend_from_slice(creds);
        Box::leak(f.into_boxed_slice())
    }

    #[test]
    fn parses_every_mechanism_libzmq_sends() {
        let r = Request::parse(frames(b"NULL", &[])).unwrap();
        assert_eq!(r.mechanism, Mechanism::Null);
        assert_eq!((r.request_id, r.identity), (&b"1"[..], &b"ID"[..]));
        assert_eq!((r.domain.as_ref(), r.address.as_ref()), ("dom", "10.0.0.1"));

        let r = Request::parse(frames(b"PLAIN", &[b"u", b"p"])).unwrap();
        assert_eq!(
            r.mechanism,
            Mechanism::Plain {
                username: b"u",
                password: b"p"
            }
        );

        let key = [7u8; 32];
        let key: &'static [u8; 32] = Box::leak(Box::new(key));
        let r = Request::parse(frames(b"CURVE", &[key])).unwrap();
        assert_eq!(
            r.mechanism,
            Mechanism::Curve {
                public_key: CurvePublicKey::from_bytes(*key)
            }
        );

        let r = Request::parse(frames(b"GSSAPI", &[b"alice@REALM"])).unwrap();
        assert_eq!(
            r.mechanism,
            Mechanism::Gssapi {
                principal: b"alice@REALM"
            }
        );

        let r = Request::parse(frames(b"KERBEROS5", &[b"x", b"y"])).unwrap();
        assert_eq!(
            r.mechanism,
            Mechanism::Unknown {
                name: b"KERBEROS5",
                credentials: 2
            }
        );
        assert_eq!(r.mechanism.name(), "KERBEROS5");
    }

    #[test]
    fn frame_count_errors() {
        let none: [&[u8]; 0] = [];
        assert_eq!(Request::parse(&none), Err(RequestError::Unanswerable(0)));
        assert_eq!(
            Request::parse(&[b"1.0"]),
            Err(RequestError::Unanswerable(1))
        );
        let five: [&[u8]; 5] = [b"1.0", b"1", b"", b"", b""];
        assert_eq!(Request::parse(&five), Err(RequestError::NotEnoughFrames(5)));
    }

    #[test]
    fn version_must_be_exactly_1_0() {
        let f = frames(b"NULL", &[]);
        f[0] = b"1.1";
        assert_eq!(Request::parse(f), Err(RequestError::InvalidVersion));
        f[0] = b"1.0\0";
        assert_eq!(Request::parse(f), Err(RequestError::InvalidVersion));
    }

    #[test]
    fn credential_shapes_are_checked() {
        assert!(matches!(
            Request::parse(frames(b"PLAIN", &[b"u"])),
            Err(RequestError::InvalidCredentials { got: 1, .. })
        ));
        assert!(matches!(
            Request::parse(frames(b"CURVE", &[])),
            Err(RequestError::InvalidCredentials { got: 0, .. })
        ));
        assert_eq!(
            Request::parse(frames(b"CURVE", &[b"short"])),
            Err(RequestError::InvalidCurveKey(5))
        );
        assert!(matches!(
            Request::parse(frames(b"GSSAPI", &[b"a", b"b"])),
            Err(RequestError::InvalidCredentials { got: 2, .. })
        ));
        assert!(matches!(
            Request::parse(frames(b"NULL", &[b"extra"])),
            Err(RequestError::InvalidCredentials { got: 1, .. })
        ));
    }

    #[test]
    fn non_utf8_domain_and_address_are_replaced_not_rejected() {
        let f = frames(b"NULL", &[]);
        f[2] = b"d\xffm";
        let r = Request::parse(f).unwrap();
        assert_eq!(r.domain, "d\u{fffd}m");
        assert!(matches!(r.domain, Cow::Owned(_)));
        // Valid text is borrowed from the frame.
        assert!(matches!(r.address, Cow::Borrowed("10.0.0.1")));
    }

    #[test]
    fn debug_output_never_shows_a_password() {
        let r = Request::parse(frames(b"PLAIN", &[b"admin", b"hunter2"])).unwrap();
        let shown = format!("{r:?}");
        assert!(shown.contains("admin") && !shown.contains("hunter2"));
    }
}
