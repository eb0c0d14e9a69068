//! CURVE keys: 32 bytes on the wire, 40 characters of Z85 (RFC 32) in files and logs.
//!
//! A public key is safe to print; a secret key never is, so [`CurveSecretKey`] has no
//! `Display` and its `Debug` is redacted.

use std::fmt;
use std::str::FromStr;

/// Why a text or byte string is not a CURVE key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Z85 keys are exactly 40 characters.
    #[error("a Z85 CURVE key has 40 characters, this one has {0}")]
    Z85Length(usize),
    /// A character outside the Z85 alphabet.
    #[error("not valid Z85 text")]
    Z85Alphabet,
    /// Binary keys are exactly 32 bytes.
    #[error("a binary CURVE key has 32 bytes, this one has {0}")]
    BinaryLength(usize),
}

fn decode_z85(text: &str) -> Result<[u8; 32], KeyError> {
    if text.len() != 40 {
        return Err(KeyError::Z85Length(text.len()));
    }
    let bytes = z85::decode(text).map_err(|_| KeyError::Z85Alphabet)?;
    bytes
        .try_into()
        .map_err(|v: Vec<u8>| KeyError::BinaryLength(v.len()))
}

/// A CURVE long-term public key, as a ZAP request carries it (32 binary bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CurvePublicKey([u8; 32]);

impl CurvePublicKey {
    /// Wraps 32 binary bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Takes a binary key of exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        bytes
            .try_into()
            .map(Self)
            .map_err(|_| KeyError::BinaryLength(bytes.len()))
    }

    /// Parses the 40-character Z85 text used in certificate files.
    pub fn from_z85(text: &str) -> Result<Self, KeyError> {
        decode_z85(text).map(Self)
    }

    /// The 32 binary bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 40-character Z85 text (what pyzmq uses as the default CURVE user id).
    pub fn to_z85(&self) -> String {
        z85::encode(self.0)
    }
}

impl fmt::Display for CurvePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_z85())
    }
}

impl fmt::Debug for CurvePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CurvePublicKey({})", self.to_z85())
    }
}

impl FromStr for CurvePublicKey {
    type Err = KeyError;
    fn from_str(text: &str) -> Result<Self, KeyError> {
        Self::from_z85(text)
    }
}

/// A CURVE secret key. Never printed: `Debug` shows `CurveSecretKey(<redacted>)`.
#[derive(Clone, PartialEq, Eq)]
pub struct CurveSecretKey([u8; 32]);

impl CurveSecretKey {
    /// Wraps 32 binary bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses the 40-character Z85 text used in secret certificate files.
    pub fn from_z85(text: &str) -> Result<Self, KeyError> {
        decode_z85(text).map(Self)
    }

    /// The 32 binary bytes (for `zmq::Socket::set_curve_secretkey`).
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The Z85 text, for writing a secret certificate file.
    pub fn to_z85(&self) -> String {
        z85::encode(self.0)
    }
}

impl fmt::Debug for CurveSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CurveSecretKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Test vectors from libzmq's zmq_curve documentation.
    const CLIENT_PUBLIC: &str = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";
    const CLIENT_SECRET: &str = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs";

    #[test]
    fn z85_round_trips_the_libzmq_test_vector() {
        let key = CurvePublicKey::from_z85(CLIENT_PUBLIC).unwrap();
        assert_eq!(key.to_z85(), CLIENT_PUBLIC);
        assert_eq!(CurvePublicKey::from_slice(key.as_bytes()).unwrap(), key);
        let secret = CurveSecretKey::from_z85(CLIENT_SECRET).unwrap();
        assert_eq!(secret.to_z85(), CLIENT_SECRET);
    }

    #[test]
    fn short_and_non_z85_keys_are_typed_errors() {
        assert_eq!(CurvePublicKey::from_z85("abc"), Err(KeyError::Z85Length(3)));
        let bad = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hI~";
        assert_eq!(CurvePublicKey::from_z85(bad), Err(KeyError::Z85Alphabet));
        assert_eq!(
            CurvePublicKey::from_slice(&[0u8; 31]),
            Err(KeyError::BinaryLength(31))
        );
    }

    #[test]
    fn secret_keys_are_never_printed() {
        let secret = CurveSecretKey::from_z85(CLIENT_SECRET).unwrap();
        let shown = format!("{secret:?}");
        assert!(!shown.contains(CLIENT_SECRET));
        assert!(shown.contains("redacted"));
    }
}
