//! ZMTP 3.0 metadata: the property list a `200` reply hands to the server application.
//!
//! Each property is a 1-byte name length, the name, a 4-byte big-endian value length and the
//! value, concatenated with no count. libzmq turns them into message properties that the
//! server reads with `zmq::Message::gets`. Two names are special inside libzmq (`Socket-Type`
//! is checked against the server's socket type, `Identity` sets the routing id), so they are
//! refused here rather than breaking handshakes later.

use std::sync::Arc;

/// The most bytes of encoded metadata one reply may carry.
///
/// libzmq has no limit of its own; 64 KiB keeps a reply far below any frame or memory concern
/// while leaving room for generous certificate metadata.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;

/// Property names libzmq interprets itself, refused in ZAP metadata (compared ASCII
/// case-insensitively, as ZMTP property names are).
pub const RESERVED_NAMES: [&str; 2] = ["Socket-Type", "Identity"];

/// Why a metadata name, value or encoded block is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// Names are 1 to 255 bytes.
    #[error("metadata name must be 1 to 255 bytes, {0:?} has {len}", len = .0.len())]
    NameLength(String),
    /// Names use ALPHA, DIGIT, `-`, `_`, `.` and `+` only (ZMTP 3.0).
    #[error("metadata name {0:?} has a character outside A-Z a-z 0-9 - _ . +")]
    NameCharacter(String),
    /// `Socket-Type` and `Identity` are interpreted by libzmq itself; the session mark's
    /// name ([`MARK_PROPERTY`](super::mark::MARK_PROPERTY)) is the authenticator's alone.
    #[error("metadata name {0:?} is reserved (by libzmq, or for the session mark)")]
    ReservedName(String),
    /// The same name twice (libzmq would keep only the first).
    #[error("metadata name {0:?} appears twice")]
    DuplicateName(String),
    /// The encoded block would exceed [`MAX_METADATA_BYTES`].
    #[error("metadata is {0} bytes, more than the {MAX_METADATA_BYTES}-byte limit")]
    TooLarge(usize),
    /// An encoded block ended inside a property.
    #[error("metadata is truncated at byte {0}")]
    Truncated(usize),
}

/// Checks one property name: 1–255 bytes of ZMTP name characters, not reserved.
pub fn check_name(name: &str) -> Result<(), MetadataError> {
    if name.is_empty() || name.len() > 255 {
        return Err(MetadataError::NameLength(name.to_owned()));
    }
    let valid = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+');
    if !name.bytes().all(valid) {
        return Err(MetadataError::NameCharacter(name.to_owned()));
    }
    let mark = super::mark::MARK_PROPERTY;
    if RESERVED_NAMES.iter().any(|r| r.eq_ignore_ascii_case(name))
        || mark.eq_ignore_ascii_case(name)
    {
        return Err(MetadataError::ReservedName(name.to_owned()));
    }
    Ok(())
}

/// A validated, already-encoded property list, cheap to clone and to put in a reply.
///
/// Certificate metadata is encoded once when the certificate is loaded and then shared by
/// every reply for that key, so the hot path copies nothing.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Metadata(Option<Arc<[u8]>>);

impl Metadata {
    /// No properties (an empty metadata frame).
    pub const fn empty() -> Self {
        Self(None)
    }

    /// Validates and encodes properties, in the given order.
    ///
    /// ```
    /// use actix_zap::zap::Metadata;
    /// let meta = Metadata::from_pairs([("Hello", "World")]).unwrap();
    /// assert_eq!(meta.as_bytes(), b"\x05Hello\x00\x00\x00\x05World");
    /// assert!(Metadata::from_pairs([("Identity", "x")]).is_err());
    /// ```
    pub fn from_pairs<N, V>(pairs: impl IntoIterator<Item = (N, V)>) -> Result<Self, MetadataError>
    where
        N: AsRef<str>,
        V: AsRef<[u8]>,
    {
        let mut encoded = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for (name, value) in pairs {
            let (name, value) = (name.as_ref(), value.as_ref());
            check_name(name)?;
            if names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                return Err(MetadataError::DuplicateName(name.to_owned()));
            }
            names.push(name.to_owned());
            let size = encoded.len() + 1 + name.len() + 4 + value.len();
            if size > MAX_METADATA_BYTES {
                return Err(MetadataError::TooLarge(size));
            }
            encoded.push(name.len() as u8);
            encoded.extend_from_slice(name.as_bytes());
            encoded.extend_from_slice(&(value.len() as u32).to_be_bytes());
            encoded.extend_from_slice(value);
        }
        Ok(Self::from_encoded(encoded))
    }

    /// These properties and the session mark after them (its name is reserved, so
    /// [`from_pairs`](Self::from_pairs) could not have put it there already).
    pub(crate) fn with_mark(&self, token: &str) -> Self {
        let name = super::mark::MARK_PROPERTY;
        let mut encoded = self.as_bytes().to_vec();
        encoded.push(name.len() as u8);
        encoded.extend_from_slice(name.as_bytes());
        encoded.extend_from_slice(&(token.len() as u32).to_be_bytes());
        encoded.extend_from_slice(token.as_bytes());
        Self::from_encoded(encoded)
    }

    fn from_encoded(encoded: Vec<u8>) -> Self {
        if encoded.is_empty() {
            Self(None)
        } else {
            Self(Some(encoded.into()))
        }
    }

    /// Re-encodes decoded pairs without validating names (for reading other handlers' replies).
    pub(crate) fn from_raw_pairs(pairs: Vec<Property<'_>>) -> Self {
        let mut encoded = Vec::new();
        for (name, value) in pairs {
            encoded.push(name.len() as u8);
            encoded.extend_from_slice(name);
            encoded.extend_from_slice(&(value.len() as u32).to_be_bytes());
            encoded.extend_from_slice(value);
        }
        Self::from_encoded(encoded)
    }

    /// The encoded bytes: the sixth frame of a reply.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_deref().unwrap_or_default()
    }

    /// True when there are no properties.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The properties, decoded again (for inspection and tests).
    pub fn pairs(&self) -> Vec<(String, Vec<u8>)> {
        decode(self.as_bytes())
            .expect("a Metadata value is always well formed")
            .into_iter()
            .map(|(n, v)| (String::from_utf8_lossy(n).into_owned(), v.to_vec()))
            .collect()
    }

    /// Both property lists, `self` first; fails if the result would break a rule.
    pub fn merged(&self, other: &Metadata) -> Result<Self, MetadataError> {
        if other.is_empty() {
            return Ok(self.clone());
        }
        if self.is_empty() {
            return Ok(other.clone());
        }
        let pairs = self.pairs().into_iter().chain(other.pairs());
        Self::from_pairs(pairs)
    }
}

impl std::fmt::Debug for Metadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut list = f.debug_map();
        for (name, value) in self.pairs() {
            list.entry(&name, &String::from_utf8_lossy(&value));
        }
        list.finish()
    }
}

/// One decoded property: (name, value), borrowed from the encoded block.
pub type Property<'a> = (&'a [u8], &'a [u8]);

/// Decodes a ZMTP property list into (name, value) pairs, borrowing from the input.
///
/// Only the framing is checked (as libzmq does when it reads a reply); names are not
/// validated, so this also reads what other handlers send.
pub fn decode(mut bytes: &[u8]) -> Result<Vec<Property<'_>>, MetadataError> {
    let total = bytes.len();
    let mut pairs = Vec::new();
    while let Some((&name_len, rest)) = bytes.split_first() {
        let at = total - bytes.len();
        let name_len = usize::from(name_len);
        if name_len == 0 {
            return Err(MetadataError::NameLength(String::new()));
        }
        if rest.len() < name_len + 4 {
            return Err(MetadataError::Truncated(at));
        }
        let (name, rest) = rest.split_at(name_len);
        let (len, rest) = rest.split_at(4);
        let value_len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if rest.len() < value_len {
            return Err(MetadataError::Truncated(at));
        }
        let (value, rest) = rest.split_at(value_len);
        pairs.push((name, value));
        bytes = rest;
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_world_encodes_as_libzmq_tests_expect() {
        let meta = Metadata::from_pairs([("Hello", "World")]).unwrap();
        assert_eq!(meta.as_bytes(), b"\x05Hello\x00\x00\x00\x05World");
        assert_eq!(
            decode(meta.as_bytes()).unwrap(),
            vec![(&b"Hello"[..], &b"World"[..])]
        );
    }

    #[test]
    fn empty_metadata_is_an_empty_frame() {
        let meta = Metadata::from_pairs(Vec::<(&str, &str)>::new()).unwrap();
        assert!(meta.is_empty());
        assert_eq!(meta.as_bytes(), b"");
        assert_eq!(decode(b"").unwrap(), vec![]);
    }

    #[test]
    fn bad_names_are_refused() {
        let long = "x".repeat(256);
        assert!(matches!(
            Metadata::from_pairs([("", "v")]),
            Err(MetadataError::NameLength(_))
        ));
        assert!(matches!(
            Metadata::from_pairs([(long.as_str(), "v")]),
            Err(MetadataError::NameLength(_))
        ));
        assert!(matches!(
            Metadata::from_pairs([("a b", "v")]),
            Err(MetadataError::NameCharacter(_))
        ));
        assert!(matches!(
            Metadata::from_pairs([("socket-type", "v")]),
            Err(MetadataError::ReservedName(_))
        ));
        assert!(matches!(
            Metadata::from_pairs([("Identity", "v")]),
            Err(MetadataError::ReservedName(_))
        ));
        assert!(matches!(
            Metadata::from_pairs([("A", "1"), ("a", "2")]),
            Err(MetadataError::DuplicateName(_))
        ));
    }

    #[test]
    fn oversized_metadata_is_refused() {
        let big = vec![b'x'; MAX_METADATA_BYTES];
        assert!(matches!(
            Metadata::from_pairs([("Big", big)]),
            Err(MetadataError::TooLarge(_))
        ));
    }

    #[test]
    fn truncated_blocks_are_typed_errors() {
        assert_eq!(decode(b"\x05Hel"), Err(MetadataError::Truncated(0)));
        assert_eq!(
            decode(b"\x01A\x00\x00\x00\x01B\x01C\x00\x00\x00\x09xy"),
            Err(MetadataError::Truncated(7))
        );
        assert!(matches!(decode(b"\x00"), Err(MetadataError::NameLength(_))));
    }

    #[test]
    fn merge_keeps_both_lists_and_their_order() {
        let a = Metadata::from_pairs([("A", "1")]).unwrap();
        let b = Metadata::from_pairs([("B", "2")]).unwrap();
        let names: Vec<String> = a
            .merged(&b)
            .unwrap()
            .pairs()
            .into_iter()
            .map(|p| p.0)
            .collect();
        assert_eq!(names, ["A", "B"]);
        assert!(a.merged(&a).is_err());
    }
}
