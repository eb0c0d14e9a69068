//! Session marks: a self-describing, MAC-protected token of one admission, carried in the
//! metadata of the `200` reply under [`MARK_PROPERTY`], so that the server application can
//! tell, on every message it receives, which admission the message's connection rests on.
//!
//! libzmq attaches the metadata of a `200` to every message received over that session. A raw
//! ZMTP client can send any property it likes where ZAP sent none, so a mark is only believed
//! when its MAC, under a key drawn once per process from the operating system, is valid: a
//! mark cannot be forged, and one made by another process (or another handler) is not ours.
//! The key lives as long as the process, so marks outlive a `stop()`/`start()` of the
//! authenticator on the same context: established clients are not dropped by a restart.
//!
//! The token is plain text, `;`-separated `name=value` fields, values percent-escaped:
//!
//! ```text
//! 1;s=42;d=global;m=CURVE;n=<key | username | principal>;a=127.0.0.1;t=<µs since 1970>;
//! g=<narrowing generation>;x=<flags>;f=<fingerprint hex>;mac=<MAC hex>
//! ```
//!
//! The fingerprint is a keyed tag of what the admission rested on besides the name — the
//! stored credential (a clear-text password or a PHC string), the user id and the metadata —
//! so that a later change of any of them can be told from the mark without keeping the
//! credential (the password itself is never in a mark, and the tag is keyed: it cannot be
//! checked against guesses without the process's key).

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use blake2::digest::{consts::U16, Mac};

/// The metadata property that carries the session mark. Refused in certificate and provider
/// metadata ([`check_name`](super::metadata::check_name)): only the authenticator sets it.
pub const MARK_PROPERTY: &str = "X-Zap-Session";

/// The most bytes a mark may have (a longer property is not a mark of ours).
pub const MAX_MARK_BYTES: usize = 2048;

type KeyedTag = blake2::Blake2bMac<U16>;

/// The process's key for marks and fingerprints, drawn once from the operating system.
fn process_key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(|| {
        use argon2::password_hash::rand_core::{OsRng, RngCore};
        let mut key = [0; 32];
        OsRng.fill_bytes(&mut key);
        key
    })
}

/// A keyed 16-byte tag of `parts` (each length-prefixed, so no two lists collide) under the
/// process key, with `context` separating the uses of the key.
pub fn keyed_tag<'a>(context: &str, parts: impl IntoIterator<Item = &'a [u8]>) -> [u8; 16] {
    let mut mac = started(context);
    for part in parts {
        mac.update(&(part.len() as u64).to_le_bytes());
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// A MAC under the process key that has taken in `context`. BLAKE2b's keyed mode compresses
/// the key, padded to a block, before any data: the two contexts used for every admission
/// ("mark", "grant") keep a state past that compression and are cloned, saving one of the
/// three or four compressions a tag costs.
fn started(context: &str) -> KeyedTag {
    fn start(context: &str) -> KeyedTag {
        let mut mac = <KeyedTag as Mac>::new_from_slice(process_key())
            .expect("a 32-byte key is within BLAKE2b's 64-byte limit");
        mac.update(context.as_bytes());
        mac
    }
    static MARK: OnceLock<KeyedTag> = OnceLock::new();
    static GRANT: OnceLock<KeyedTag> = OnceLock::new();
    match context {
        "mark" => MARK.get_or_init(|| start("mark")).clone(),
        "grant" => GRANT.get_or_init(|| start("grant")).clone(),
        _ => start(context),
    }
}

/// The mechanism of an admission, as a mark names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MarkMechanism {
    /// NULL (admitted by address).
    Null,
    /// PLAIN: the name is the username.
    Plain,
    /// CURVE: the name is the client's 32-byte key.
    Curve,
    /// GSSAPI: the name is the principal.
    Gssapi,
}

impl MarkMechanism {
    fn as_str(self) -> &'static str {
        match self {
            MarkMechanism::Null => "NULL",
            MarkMechanism::Plain => "PLAIN",
            MarkMechanism::Curve => "CURVE",
            MarkMechanism::Gssapi => "GSSAPI",
        }
    }

    fn parse(text: &[u8]) -> Option<Self> {
        Some(match text {
            b"NULL" => MarkMechanism::Null,
            b"PLAIN" => MarkMechanism::Plain,
            b"CURVE" => MarkMechanism::Curve,
            b"GSSAPI" => MarkMechanism::Gssapi,
            _ => return None,
        })
    }
}

/// Flag: the admission came from a CURVE provider (it is never asked again).
pub const FROM_PROVIDER: u8 = 1;
/// Flag: the user id came from the custom CURVE user-id mapping (user code, not asked again).
pub const MAPPED_USER_ID: u8 = 2;

/// One admission, as its mark describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionMark {
    /// Unique within the process: which admission this is. Later admissions have larger ones.
    pub serial: u64,
    /// The ZAP domain of the request.
    pub domain: String,
    /// The mechanism.
    pub mechanism: MarkMechanism,
    /// The key (32 bytes), username or principal; empty for NULL.
    pub name: Vec<u8>,
    /// The peer's address, as ZAP gave it.
    pub address: String,
    /// When it was admitted (microsecond precision).
    pub admitted_at: SystemTime,
    /// The authenticator's count of narrowings when it was admitted.
    pub generation: u64,
    /// [`FROM_PROVIDER`], [`MAPPED_USER_ID`].
    pub flags: u8,
    /// A keyed tag of the credential, user id and metadata it was admitted with.
    pub fingerprint: [u8; 16],
}

/// Why a property is not a mark of this process.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarkError {
    /// Longer than [`MAX_MARK_BYTES`].
    #[error("a session mark of {0} bytes is longer than any this process makes")]
    TooLong(usize),
    /// Not the token's layout (a field missing, out of order, or unreadable).
    #[error("not a session mark: {0}")]
    Malformed(&'static str),
    /// The MAC does not match: forged, altered, or made by another process.
    #[error("the session mark's MAC does not match (forged, or not made by this process)")]
    BadMac,
}

const FIELDS: [&str; 10] = ["s", "d", "m", "n", "a", "t", "g", "x", "f", "mac"];

impl SessionMark {
    /// The token, with its MAC under the process key.
    pub fn encode(&self) -> String {
        let micros = self
            .admitted_at
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros();
        let mut text = String::with_capacity(160 + self.domain.len() + self.name.len());
        // Written in place: a mark is made for every admission, on the policy actor's thread
        // (a CURVE key's 32 bytes are mostly escaped: no string per byte).
        let _ = write!(text, "1;s={}", self.serial);
        text.push_str(";d=");
        escape_into(&mut text, self.domain.as_bytes());
        text.push_str(";m=");
        text.push_str(self.mechanism.as_str());
        text.push_str(";n=");
        escape_into(&mut text, &self.name);
        text.push_str(";a=");
        escape_into(&mut text, self.address.as_bytes());
        let _ = write!(
            text,
            ";t={micros};g={};x={};f=",
            self.generation, self.flags
        );
        hex_into(&mut text, &self.fingerprint);
        let mac = keyed_tag("mark", [text.as_bytes()]);
        text.push_str(";mac=");
        hex_into(&mut text, &mac);
        text
    }

    /// Reads a token and checks its MAC (in constant time).
    pub fn decode(token: &str) -> Result<SessionMark, MarkError> {
        if token.len() > MAX_MARK_BYTES {
            return Err(MarkError::TooLong(token.len()));
        }
        let (signed, mac) = token
            .rsplit_once(";mac=")
            .ok_or(MarkError::Malformed("no MAC"))?;
        let mac = unhex::<16>(mac).ok_or(MarkError::Malformed("MAC is not 32 hex digits"))?;
        let expected = keyed_tag("mark", [signed.as_bytes()]);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&mac[..], &expected[..])) {
            return Err(MarkError::BadMac);
        }
        let mut parts = signed.split(';');
        if parts.next() != Some("1") {
            return Err(MarkError::Malformed("unknown version"));
        }
        let mut values: [&str; 9] = [""; 9];
        for (slot, name) in values.iter_mut().zip(FIELDS) {
            let part = parts
                .next()
                .ok_or(MarkError::Malformed("a field is missing"))?;
            let (field, value) = part
                .split_once('=')
                .ok_or(MarkError::Malformed("a field has no '='"))?;
            if field != name {
                return Err(MarkError::Malformed("fields out of order"));
            }
            *slot = value;
        }
        if parts.next().is_some() {
            return Err(MarkError::Malformed("a field too many"));
        }
        let [serial, domain, mechanism, name, address, micros, generation, flags, fingerprint] =
            values;
        let number = |text: &str| {
            text.parse::<u64>()
                .map_err(|_| MarkError::Malformed("number"))
        };
        let text = |value: &str| {
            String::from_utf8(unescape(value)?).map_err(|_| MarkError::Malformed("not UTF-8"))
        };
        Ok(SessionMark {
            serial: number(serial)?,
            domain: text(domain)?,
            mechanism: MarkMechanism::parse(mechanism.as_bytes())
                .ok_or(MarkError::Malformed("unknown mechanism"))?,
            name: unescape(name)?,
            address: text(address)?,
            admitted_at: UNIX_EPOCH + Duration::from_micros(number(micros)?),
            generation: number(generation)?,
            flags: flags.parse().map_err(|_| MarkError::Malformed("flags"))?,
            fingerprint: unhex::<16>(fingerprint)
                .ok_or(MarkError::Malformed("fingerprint is not 32 hex digits"))?,
        })
    }
}

/// Percent-escapes everything but `A-Z a-z 0-9 . _ - : @ + /`, so `;` and `=` never occur
/// in a value and the token is ASCII (libzmq hands properties to the application as C
/// strings: no NUL may occur either).
fn escape_into(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b".-_:@+/".contains(&b) {
            out.push(b as char);
        } else {
            out.push('%');
            hex_into(out, &[b]);
        }
    }
}

fn unescape(value: &str) -> Result<Vec<u8>, MarkError> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let pair = value
                .get(i + 1..i + 3)
                .and_then(unhex::<1>)
                .ok_or(MarkError::Malformed("bad escape"))?;
            out.push(pair[0]);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Appends `bytes` as lower-case hex digits.
fn hex_into(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = text.as_bytes();
    if bytes.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0; N];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks(2)) {
        *slot = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark() -> SessionMark {
        SessionMark {
            serial: 7,
            domain: "global;x=1".into(),
            mechanism: MarkMechanism::Plain,
            name: b"al;ice=\x00\xff".to_vec(),
            address: "fe80::1%eth0".into(),
            admitted_at: UNIX_EPOCH + Duration::from_micros(1_733_491_200_123_456),
            generation: 3,
            flags: FROM_PROVIDER,
            fingerprint: [9; 16],
        }
    }

    #[test]
    fn a_mark_reads_back_as_it_was_written() {
        let token = mark().encode();
        assert!(token.is_ascii() && !token.contains('\0'), "{token}");
        assert_eq!(SessionMark::decode(&token), Ok(mark()));
    }

    #[test]
    fn an_altered_or_foreign_mark_is_refused() {
        let token = mark().encode();
        let altered = token.replace("s=7", "s=8");
        assert_eq!(SessionMark::decode(&altered), Err(MarkError::BadMac));
        let (signed, _) = token.rsplit_once(";mac=").unwrap();
        let forged = format!("{signed};mac={}", "0".repeat(32));
        assert_eq!(SessionMark::decode(&forged), Err(MarkError::BadMac));
        assert!(matches!(
            SessionMark::decode("hello"),
            Err(MarkError::Malformed(_))
        ));
        let long = "x".repeat(MAX_MARK_BYTES + 1);
        assert_eq!(
            SessionMark::decode(&long),
            Err(MarkError::TooLong(MAX_MARK_BYTES + 1))
        );
    }

    #[test]
    fn tags_are_keyed_and_length_prefixed() {
        let ab: [&[u8]; 2] = [b"a", b"b"];
        let a_b: [&[u8]; 1] = [b"ab"];
        assert_ne!(keyed_tag("t", ab), keyed_tag("t", a_b));
        assert_ne!(keyed_tag("t", ab), keyed_tag("u", ab));
        assert_eq!(keyed_tag("t", ab), keyed_tag("t", ab));
    }

    #[test]
    fn a_kept_state_gives_the_tag_a_fresh_one_gives() {
        let fresh = |context: &str, part: &[u8]| -> [u8; 16] {
            let mut mac = <KeyedTag as Mac>::new_from_slice(process_key()).unwrap();
            mac.update(context.as_bytes());
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part);
            mac.finalize().into_bytes().into()
        };
        let long = [7u8; 300];
        for context in ["mark", "grant"] {
            for part in [&b""[..], b"x", &long] {
                // Twice: the first call makes the kept state, the second clones it.
                assert_eq!(keyed_tag(context, [part]), fresh(context, part));
                assert_eq!(keyed_tag(context, [part]), fresh(context, part));
            }
        }
        assert_ne!(
            keyed_tag("mark", [&b"x"[..]]),
            keyed_tag("grant", [&b"x"[..]])
        );
    }
}
