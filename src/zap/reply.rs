//! Encoding a ZAP reply: version, request id, status code, status text, user id, metadata.

use std::borrow::Cow;

use super::metadata::Metadata;
use super::request::ZAP_VERSION;

/// The four status codes of RFC 27. libzmq accepts exactly these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatusCode {
    /// `200`: the handshake proceeds.
    Ok,
    /// `300`: temporary failure; libzmq closes without an ERROR and the client reconnects.
    TryLater,
    /// `400`: authentication failed; the client gets an ERROR and does not reconnect.
    Denied,
    /// `500`: the handler failed (provider error, panic or deadline; policy side gone).
    InternalError,
}

impl StatusCode {
    /// The 3-byte frame.
    pub const fn as_bytes(self) -> &'static [u8; 3] {
        match self {
            StatusCode::Ok => b"200",
            StatusCode::TryLater => b"300",
            StatusCode::Denied => b"400",
            StatusCode::InternalError => b"500",
        }
    }

    /// The number, as monitor events report it.
    pub const fn as_u16(self) -> u16 {
        match self {
            StatusCode::Ok => 200,
            StatusCode::TryLater => 300,
            StatusCode::Denied => 400,
            StatusCode::InternalError => 500,
        }
    }

    /// Reads a status frame.
    pub fn from_bytes(frame: &[u8]) -> Option<Self> {
        Some(match frame {
            b"200" => StatusCode::Ok,
            b"300" => StatusCode::TryLater,
            b"400" => StatusCode::Denied,
            b"500" => StatusCode::InternalError,
            _ => return None,
        })
    }
}

impl std::fmt::Display for StatusCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.as_u16())
    }
}

/// A ZAP reply, ready to be written after the routing envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Echo of the request's id.
    pub request_id: Vec<u8>,
    /// The decision.
    pub status: StatusCode,
    /// Why; libzmq never reads it nor tells the client, but logs and events do.
    pub text: Cow<'static, str>,
    /// On `200`, the identity libzmq exposes as the `User-Id` message property; empty otherwise.
    pub user_id: String,
    /// On `200`, properties libzmq exposes on the server's messages; empty otherwise.
    pub metadata: Metadata,
}

impl Reply {
    /// A `200` with a user id and metadata.
    pub fn ok(request_id: &[u8], user_id: impl Into<String>, metadata: Metadata) -> Self {
        Reply {
            request_id: request_id.to_vec(),
            status: StatusCode::Ok,
            text: Cow::Borrowed("OK"),
            user_id: user_id.into(),
            metadata,
        }
    }

    /// A refusal (`300`, `400` or `500`): empty user id and metadata, as RFC 27 requires.
    pub fn refusal(
        request_id: &[u8],
        status: StatusCode,
        text: impl Into<Cow<'static, str>>,
    ) -> Self {
        debug_assert!(status != StatusCode::Ok, "a refusal cannot be 200");
        Reply {
            request_id: request_id.to_vec(),
            status,
            text: text.into(),
            user_id: String::new(),
            metadata: Metadata::empty(),
        }
    }

    /// The six frames, borrowed from the reply (no copies).
    ///
    /// ```
    /// use actix_zap::zap::{Metadata, Reply};
    /// let reply = Reply::ok(b"1", "admin", Metadata::empty());
    /// let frames: [&[u8]; 6] = [b"1.0", b"1", b"200", b"OK", b"admin", b""];
    /// assert_eq!(reply.frames(), frames);
    /// ```
    pub fn frames(&self) -> [&[u8]; 6] {
        [
            ZAP_VERSION,
            &self.request_id,
            self.status.as_bytes(),
            self.text.as_bytes(),
            self.user_id.as_bytes(),
            self.metadata.as_bytes(),
        ]
    }

    /// Reads six reply frames back (for tests, proxies and tools).
    pub fn parse<F: AsRef<[u8]>>(frames: &[F]) -> Option<Reply> {
        let [version, id, status, text, user_id, metadata] = frames else {
            return None;
        };
        if version.as_ref() != ZAP_VERSION {
            return None;
        }
        let metadata = super::metadata::decode(metadata.as_ref()).ok()?;
        Some(Reply {
            request_id: id.as_ref().to_vec(),
            status: StatusCode::from_bytes(status.as_ref())?,
            text: Cow::Owned(String::from_utf8_lossy(text.as_ref()).into_owned()),
            user_id: String::from_utf8_lossy(user_id.as_ref()).into_owned(),
            metadata: Metadata::from_raw_pairs(metadata),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_carry_no_user_id() {
        let reply = Reply::refusal(b"7", StatusCode::Denied, "Unknown key");
        assert_eq!(
            reply.frames(),
            [&b"1.0"[..], b"7", b"400", b"Unknown key", b"", b""]
        );
    }

    #[test]
    fn status_codes_round_trip() {
        for s in [
            StatusCode::Ok,
            StatusCode::TryLater,
            StatusCode::Denied,
            StatusCode::InternalError,
        ] {
            assert_eq!(StatusCode::from_bytes(s.as_bytes()), Some(s));
            assert_eq!(s.to_string().as_bytes(), s.as_bytes());
        }
        assert_eq!(StatusCode::from_bytes(b"201"), None);
    }

    #[test]
    fn replies_round_trip_through_frames() {
        let meta = Metadata::from_pairs([("Hello", "World")]).unwrap();
        let reply = Reply::ok(b"1", "alice", meta);
        assert_eq!(Reply::parse(&reply.frames()), Some(reply));
        assert_eq!(Reply::parse(&[b"1.0"]), None);
    }
}
