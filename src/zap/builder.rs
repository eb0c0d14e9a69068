//! Encoding a ZAP request: the frames libzmq sends a handler, for tests, benchmarks, fuzzers
//! and tools that play libzmq's part.

use crate::keys::CurvePublicKey;

use super::request::ZAP_VERSION;

/// A ZAP request to encode, mechanism first, then whatever differs from libzmq's usual frames.
///
/// Until set otherwise, a request has the frames libzmq sends for a TCP client on the loopback
/// of a server socket without a ZAP domain: version `1.0`, request id `1`, an empty domain,
/// address `127.0.0.1` and an empty identity. [`frames`](Self::frames) gives the frames
/// [`Request::parse`](super::Request::parse) and [`Policy::handle`](crate::policy::Policy::handle)
/// read; [`frames_for_dealer`](Self::frames_for_dealer) gives what a DEALER connected to
/// [`ZAP_ENDPOINT`](super::ZAP_ENDPOINT) sends.
///
/// ```
/// use actix_zap::policy::{Decision, PasswordTable, Policy};
/// use actix_zap::zap::{Mechanism, Request, RequestBuilder, StatusCode};
///
/// let frames = RequestBuilder::plain("admin", "secret").domain("global").frames();
/// let request = Request::parse(&frames).unwrap();
/// assert_eq!((request.domain.as_ref(), request.address.as_ref()), ("global", "127.0.0.1"));
/// assert!(matches!(request.mechanism, Mechanism::Plain { username: b"admin", .. }));
///
/// let mut policy = Policy::default();
/// policy.configure_plain("global", PasswordTable::new([("admin", "secret")])).unwrap();
/// let Decision::Reply(reply) = policy.handle(&frames) else { unreachable!() };
/// assert_eq!((reply.status, reply.user_id.as_str()), (StatusCode::Ok, "admin"));
///
/// // Anything libzmq would not send, for the refusals of malformed requests.
/// let short_key = RequestBuilder::mechanism("CURVE").credentials(["not 32 bytes"]);
/// assert!(Request::parse(&short_key.frames()).is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct RequestBuilder {
    version: Vec<u8>,
    request_id: Vec<u8>,
    domain: Vec<u8>,
    address: Vec<u8>,
    identity: Vec<u8>,
    mechanism: Vec<u8>,
    credentials: Vec<Vec<u8>>,
}

impl RequestBuilder {
    /// A `NULL` request: no credentials.
    pub fn null() -> Self {
        Self::mechanism("NULL")
    }

    /// A `PLAIN` request with its username and password frames.
    pub fn plain(username: impl AsRef<[u8]>, password: impl AsRef<[u8]>) -> Self {
        Self::mechanism("PLAIN").credentials([username.as_ref(), password.as_ref()])
    }

    /// A `CURVE` request with the client's long-term public key (32 bytes).
    pub fn curve(public_key: CurvePublicKey) -> Self {
        Self::mechanism("CURVE").credentials([public_key.as_bytes()])
    }

    /// A `GSSAPI` request with the principal's display name.
    pub fn gssapi(principal: impl AsRef<[u8]>) -> Self {
        Self::mechanism("GSSAPI").credentials([principal])
    }

    /// A request for any mechanism name, without credential frames until
    /// [`credentials`](Self::credentials) gives some: with the two, any shape libzmq never
    /// sends (an unknown name, the wrong number of frames, a short key).
    pub fn mechanism(name: impl AsRef<[u8]>) -> Self {
        RequestBuilder {
            version: ZAP_VERSION.to_vec(),
            request_id: b"1".to_vec(),
            domain: Vec::new(),
            address: b"127.0.0.1".to_vec(),
            identity: Vec::new(),
            mechanism: name.as_ref().to_vec(),
            credentials: Vec::new(),
        }
    }

    /// Replaces the credential frames that follow the mechanism frame.
    pub fn credentials<C: AsRef<[u8]>>(mut self, credentials: impl IntoIterator<Item = C>) -> Self {
        self.credentials = credentials
            .into_iter()
            .map(|c| c.as_ref().to_vec())
            .collect();
        self
    }

    /// The server socket's `ZMQ_ZAP_DOMAIN` (default: empty).
    pub fn domain(mut self, domain: impl AsRef<[u8]>) -> Self {
        self.domain = domain.as_ref().to_vec();
        self
    }

    /// The peer's address as libzmq writes it: an IP without port, or `localhost:UID:GID:PID`
    /// for IPC peers (default: `127.0.0.1`).
    pub fn address(mut self, address: impl AsRef<[u8]>) -> Self {
        self.address = address.as_ref().to_vec();
        self
    }

    /// The server socket's routing id (default: empty).
    pub fn identity(mut self, identity: impl AsRef<[u8]>) -> Self {
        self.identity = identity.as_ref().to_vec();
        self
    }

    /// The request id the reply echoes (default: `1`, as libzmq sends).
    pub fn request_id(mut self, request_id: impl AsRef<[u8]>) -> Self {
        self.request_id = request_id.as_ref().to_vec();
        self
    }

    /// The version frame (default: [`ZAP_VERSION`], the only valid one).
    pub fn version(mut self, version: impl AsRef<[u8]>) -> Self {
        self.version = version.as_ref().to_vec();
        self
    }

    /// The request's frames, as a handler reads them after the routing envelope: version,
    /// request id, domain, address, identity, mechanism, then the credential frames.
    pub fn frames(&self) -> Vec<Vec<u8>> {
        let mut frames = Vec::with_capacity(6 + self.credentials.len());
        frames.extend(
            [
                &self.version,
                &self.request_id,
                &self.domain,
                &self.address,
                &self.identity,
                &self.mechanism,
            ]
            .map(Vec::clone),
        );
        frames.extend(self.credentials.iter().cloned());
        frames
    }

    /// The frames a DEALER connected to [`ZAP_ENDPOINT`](super::ZAP_ENDPOINT) sends, as
    /// libzmq's own ZAP client does: an empty delimiter frame, then [`frames`](Self::frames).
    pub fn frames_for_dealer(&self) -> Vec<Vec<u8>> {
        let mut frames = vec![Vec::new()];
        frames.extend(self.frames());
        frames
    }
}

impl std::fmt::Debug for RequestBuilder {
    /// Credentials are counted, never shown: they may be a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        f.debug_struct("RequestBuilder")
            .field("version", &text(&self.version))
            .field("request_id", &text(&self.request_id))
            .field("domain", &text(&self.domain))
            .field("address", &text(&self.address))
            .field("identity", &text(&self.identity))
            .field("mechanism", &text(&self.mechanism))
            .field("credentials", &self.credentials.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zap::{Mechanism, Request, RequestError};

    #[test]
    fn defaults_are_libzmqs_frames_for_a_loopback_client_without_a_domain() {
        let frames = RequestBuilder::null().frames();
        let expected: [&[u8]; 6] = [b"1.0", b"1", b"", b"127.0.0.1", b"", b"NULL"];
        assert_eq!(frames, expected);
        assert_eq!(
            RequestBuilder::null().frames_for_dealer(),
            [&b""[..], b"1.0", b"1", b"", b"127.0.0.1", b"", b"NULL"]
        );
    }

    #[test]
    fn every_mechanism_round_trips_through_parse() {
        let key = CurvePublicKey::from_bytes([7; 32]);
        let cases = [
            (RequestBuilder::null(), Mechanism::Null),
            (
                RequestBuilder::plain("admin", b"s\xffcret"),
                Mechanism::Plain {
                    username: b"admin",
                    password: b"s\xffcret",
                },
            ),
            (
                RequestBuilder::curve(key),
                Mechanism::Curve { public_key: key },
            ),
            (
                RequestBuilder::gssapi("alice@REALM"),
                Mechanism::Gssapi {
                    principal: b"alice@REALM",
                },
            ),
            (
                RequestBuilder::mechanism("KERBEROS5").credentials(["x", "y"]),
                Mechanism::Unknown {
                    name: b"KERBEROS5",
                    credentials: 2,
                },
            ),
        ];
        for (builder, mechanism) in cases {
            let builder = builder
                .domain("dom")
                .address("10.0.0.1")
                .identity("ID")
                .request_id(b"\x00\xffid");
            let frames = builder.frames();
            let request = Request::parse(&frames).unwrap();
            assert_eq!(
                request,
                Request {
                    request_id: b"\x00\xffid",
                    domain: "dom".into(),
                    address: "10.0.0.1".into(),
                    identity: b"ID",
                    mechanism,
                }
            );
            // The DEALER's frames are the same after the delimiter.
            assert_eq!(builder.frames_for_dealer()[1..], frames[..]);
        }
    }

    #[test]
    fn setters_replace_their_frame_only_and_the_last_one_wins() {
        let frames = RequestBuilder::plain("u", "p")
            .domain("first")
            .domain("global")
            .address("localhost:0:0:42")
            .frames();
        let expected: [&[u8]; 8] = [
            b"1.0",
            b"1",
            b"global",
            b"localhost:0:0:42",
            b"",
            b"PLAIN",
            b"u",
            b"p",
        ];
        assert_eq!(frames, expected);
    }

    #[test]
    fn malformed_requests_parse_to_their_errors() {
        let parse = |builder: RequestBuilder| Request::parse(&builder.frames()).map(|_| ());
        assert_eq!(
            parse(RequestBuilder::null().version("1.1")),
            Err(RequestError::InvalidVersion)
        );
        assert_eq!(
            parse(RequestBuilder::mechanism("CURVE").credentials(["short"])),
            Err(RequestError::InvalidCurveKey(5))
        );
        assert_eq!(
            parse(RequestBuilder::plain("u", "p").credentials(["only-user"])),
            Err(RequestError::InvalidCredentials {
                mechanism: "PLAIN",
                expected: 2,
                got: 1
            })
        );
        assert_eq!(
            parse(RequestBuilder::null().credentials(["extra"])),
            Err(RequestError::InvalidCredentials {
                mechanism: "NULL",
                expected: 0,
                got: 1
            })
        );
    }

    #[test]
    fn a_mechanism_has_no_credential_frames_until_given_some() {
        let frames = RequestBuilder::mechanism("CURVE").frames();
        assert_eq!(frames.len(), 6);
        assert_eq!(frames[5], b"CURVE");
        assert_eq!(
            Request::parse(&frames),
            Err(RequestError::InvalidCredentials {
                mechanism: "CURVE",
                expected: 1,
                got: 0
            })
        );
    }

    #[test]
    fn debug_output_never_shows_credentials() {
        let shown = format!(
            "{:?}",
            RequestBuilder::plain("admin", "hunter2").domain("d")
        );
        assert!(
            shown.contains("PLAIN") && shown.contains("\"d\""),
            "{shown}"
        );
        assert!(
            !shown.contains("hunter2") && !shown.contains("admin"),
            "{shown}"
        );
    }
}
