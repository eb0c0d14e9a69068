//! One CURVE certificate in memory: parsing it from, and rendering it to, the text of a
//! CZMQ- or pyzmq-style certificate file.

use std::time::SystemTime;

use super::time::UtcTime;
use super::zpl::{self, Node};
use super::{CertError, CertificateError};
use crate::keys::{CurvePublicKey, CurveSecretKey};
use crate::zap::{check_metadata_name, Metadata, MetadataError, MAX_METADATA_BYTES};

/// Which program's file layout to write (both are read), so the files we write look exactly
/// like the ones the other side of a deployment already handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavour {
    /// pyzmq's `create_certificates`: metadata entries unquoted. pyzmq itself writes
    /// metadata only into the secret file; this crate writes it into the public file as well,
    /// so a server loading the public file sees it. pyzmq's `load_certificate` reads only the
    /// `public-key` and `secret-key` lines and skips the rest, so it loads these files
    /// unchanged (a metadata name starting with `public-key` or `secret-key` would mislead
    /// it, and is refused). A certificate without metadata is byte for byte what pyzmq
    /// writes.
    Pyzmq,
    /// CZMQ's `zcert_save` (and JeroMQ): metadata entries quoted, in both files.
    Czmq,
}

/// A CURVE certificate: the public key, the secret key when known, and metadata that the ZAP
/// handler returns for the key (as CZMQ does).
///
/// `Debug` never shows the secret key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// The key clients are authenticated by.
    pub public_key: CurvePublicKey,
    /// Present when loaded from a secret file or generated; needed to configure a socket.
    pub secret_key: Option<CurveSecretKey>,
    /// `(name, value)` pairs in file order; names must be valid ZMTP property names.
    pub metadata: Vec<(String, String)>,
}

/// The parts of a parsed certificate, still borrowing from the text.
pub(crate) struct Parsed<'a> {
    pub public_key: CurvePublicKey,
    pub secret_key: Option<CurveSecretKey>,
    pub metadata: Vec<(&'a str, &'a str)>,
    pub encoded: Metadata,
}

const PUBLIC_BANNER: &str = "#   ZeroMQ CURVE Public Certificate\n\
#   Exchange securely, or use a secure mechanism to verify the contents\n\
#   of this file after exchange. Store public certificates in your home\n\
#   directory, in the .curve subdirectory.\n\n";

const SECRET_BANNER: &str = "#   ZeroMQ CURVE **Secret** Certificate\n\
#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n\n";

/// Turns raw file bytes into text, locating the first invalid byte by line.
pub(crate) fn text_of(bytes: &[u8]) -> Result<&str, CertificateError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let valid = bytes.get(..e.valid_up_to()).unwrap_or_default();
        CertificateError::NotUtf8 {
            line: valid.iter().filter(|&&b| b == b'\n').count() + 1,
        }
    })
}

/// Finds the key entries and metadata of a ZPL document, refusing ambiguity.
pub(crate) fn parse_parts(text: &str) -> Result<Parsed<'_>, CertificateError> {
    let doc = zpl::parse(text)?;
    let nodes = doc.nodes();
    let (mut curve, mut meta): (Option<usize>, Option<usize>) = (None, None);
    let (mut public, mut secret): (Option<&Node<'_>>, Option<&Node<'_>>) = (None, None);
    let mut entries: Vec<&Node<'_>> = Vec::new();
    let duplicate = |path: &str, line, first: &Node<'_>| CertificateError::Duplicate {
        path: path.to_owned(),
        line,
        first: first.line,
    };
    for (index, node) in nodes.iter().enumerate() {
        let (slot, path) = match node.parent {
            None if node.name == "curve" => (&mut curve, "curve"),
            None if node.name == "metadata" => (&mut meta, "metadata"),
            None => continue,
            Some(p) if Some(p) == curve => {
                let (slot, path) = match node.name {
                    "public-key" => (&mut public, "curve/public-key"),
                    "secret-key" => (&mut secret, "curve/secret-key"),
                    _ => continue,
                };
                if let Some(first) = slot {
                    return Err(duplicate(path, node.line, first));
                }
                *slot = Some(node);
                continue;
            }
            Some(p) if Some(p) == meta => {
                entries.push(node);
                continue;
            }
            Some(_) => continue,
        };
        if let Some(first) = slot.and_then(|i| nodes.get(i)) {
            return Err(duplicate(path, node.line, first));
        }
        *slot = Some(index);
    }

    let public = public.ok_or(CertificateError::NoPublicKey)?;
    let public_key =
        CurvePublicKey::from_z85(public.value).map_err(|source| CertificateError::PublicKey {
            line: public.line,
            source,
        })?;
    let secret_key = match secret {
        None => None,
        Some(node) => {
            let key = CurveSecretKey::from_z85(node.value).map_err(|source| {
                CertificateError::SecretKey {
                    line: node.line,
                    source,
                }
            })?;
            // CZMQ writes 40 zeros ("0000...") for a certificate without a secret key.
            (key.as_bytes() != &[0u8; 32]).then_some(key)
        }
    };

    let mut size = 0usize;
    for node in &entries {
        let error = |source| CertificateError::Metadata {
            line: node.line,
            source,
        };
        check_metadata_name(node.name).map_err(error)?;
        size += 1 + node.name.len() + 4 + node.value.len();
        if size > MAX_METADATA_BYTES {
            return Err(error(MetadataError::TooLarge(size)));
        }
    }
    let metadata: Vec<(&str, &str)> = entries.iter().map(|n| (n.name, n.value)).collect();
    let encoded = Metadata::from_pairs(metadata.iter().copied()).map_err(|source| {
        // Names and size were checked above, so this is a duplicate name: point at the
        // second occurrence.
        let line = match &source {
            MetadataError::DuplicateName(name) => entries
                .iter()
                .filter(|n| n.name.eq_ignore_ascii_case(name))
                .nth(1)
                .map(|n| n.line),
            _ => None,
        };
        let line = line.or(entries.first().map(|n| n.line)).unwrap_or(0);
        CertificateError::Metadata { line, source }
    })?;
    Ok(Parsed {
        public_key,
        secret_key,
        metadata,
        encoded,
    })
}

/// pyzmq's `load_certificate` takes any line starting with `public-key` or `secret-key` (after
/// leading blanks) as that key, whatever section it is in.
fn misleads_pyzmq(name: &str) -> bool {
    name.starts_with("public-key") || name.starts_with("secret-key")
}

/// Chooses how to write one metadata value, or refuses it.
fn quoted_value(name: &str, value: &str, flavour: Flavour) -> Result<String, CertificateError> {
    if value.contains(['\n', '\r', '\0']) {
        return Err(CertificateError::UnwritableValue {
            name: name.to_owned(),
        });
    }
    // pyzmq writes values bare; that reads back only when the value has no `#`, no blanks at
    // either end and no opening quote. Anything else is quoted, as CZMQ always does.
    let bare_ok = !value.contains('#')
        && !value.starts_with(['"', '\''])
        && value.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\x0B') == value;
    if flavour == Flavour::Pyzmq && bare_ok {
        return Ok(value.to_owned());
    }
    if !value.contains('"') {
        Ok(format!("\"{value}\""))
    } else if !value.contains('\'') {
        Ok(format!("'{value}'"))
    } else {
        Err(CertificateError::UnwritableValue {
            name: name.to_owned(),
        })
    }
}

impl Certificate {
    /// A fresh key pair from libzmq (`zmq_curve_keypair`), with no metadata.
    pub fn generate() -> Result<Certificate, CertError> {
        let pair = zmq::CurveKeyPair::new().map_err(CertError::Generate)?;
        Ok(Certificate {
            public_key: CurvePublicKey::from_bytes(pair.public_key),
            secret_key: Some(CurveSecretKey::from_bytes(pair.secret_key)),
            metadata: Vec::new(),
        })
    }

    /// Reads a certificate from the text of a public or secret certificate file, of either
    /// flavour, so keys made by pyzmq, CZMQ or JeroMQ can be used.
    ///
    /// Refuses what would be ambiguous or unusable: invalid ZPL, a missing or malformed key,
    /// a duplicated section or key, or metadata libzmq would not accept. Sections other than
    /// `curve` and `metadata` are ignored. An all-zero secret key (what CZMQ writes for a
    /// certificate without one) reads as no secret key.
    pub fn parse(text: &str) -> Result<Certificate, CertificateError> {
        let parsed = parse_parts(text)?;
        Ok(Certificate {
            public_key: parsed.public_key,
            secret_key: parsed.secret_key,
            metadata: parsed
                .metadata
                .into_iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect(),
        })
    }

    /// The metadata encoded as ZMTP properties, ready to put in a ZAP reply.
    pub fn metadata_encoded(&self) -> Result<Metadata, MetadataError> {
        Metadata::from_pairs(self.metadata.iter().map(|(n, v)| (n, v)))
    }

    /// The text of the public certificate file (safe to share), byte for byte as the chosen
    /// program writes it, except that the banner time is UTC.
    pub fn to_public_text(&self, flavour: Flavour) -> Result<String, CertificateError> {
        self.render(flavour, false, SystemTime::now())
    }

    /// The text of the secret certificate file (both keys); fails without a secret key.
    pub fn to_secret_text(&self, flavour: Flavour) -> Result<String, CertificateError> {
        self.render(flavour, true, SystemTime::now())
    }

    /// Renders a certificate file as of `now`.
    pub(crate) fn render(
        &self,
        flavour: Flavour,
        secret: bool,
        now: SystemTime,
    ) -> Result<String, CertificateError> {
        let secret_key = match (&self.secret_key, secret) {
            (Some(key), true) => Some(key),
            (None, true) => return Err(CertificateError::NoSecretKey),
            (_, false) => None,
        };
        self.metadata_encoded()
            .map_err(CertificateError::InvalidMetadata)?;
        let time = UtcTime::from_system_time(now);
        let (time, program) = match flavour {
            Flavour::Pyzmq => (time.pyzmq(), "pyzmq"),
            Flavour::Czmq => (time.czmq(), "CZMQ"),
        };
        let mut text = String::with_capacity(512);
        text.push_str("#   ****  Generated on ");
        text.push_str(&time);
        text.push_str(" by ");
        text.push_str(program);
        text.push_str("  ****\n");
        text.push_str(if secret { SECRET_BANNER } else { PUBLIC_BANNER });
        text.push_str("metadata\n");
        for (name, value) in &self.metadata {
            if flavour == Flavour::Pyzmq && misleads_pyzmq(name) {
                return Err(CertificateError::UnwritableName { name: name.clone() });
            }
            text.push_str("    ");
            text.push_str(name);
            text.push_str(" = ");
            text.push_str(&quoted_value(name, value, flavour)?);
            text.push('\n');
        }
        text.push_str("curve\n    public-key = \"");
        text.push_str(&self.public_key.to_z85());
        text.push_str("\"\n");
        if let Some(key) = secret_key {
            text.push_str("    secret-key = \"");
            text.push_str(&key.to_z85());
            text.push_str("\"\n");
        }
        Ok(text)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::certs::zpl::ZplErrorKind;
    use crate::keys::KeyError;
    use std::time::{Duration, UNIX_EPOCH};

    // Test vectors from libzmq's zmq_curve documentation.
    pub(crate) const CLIENT_PUBLIC: &str = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";
    pub(crate) const CLIENT_SECRET: &str = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs";
    pub(crate) const SERVER_PUBLIC: &str = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
    pub(crate) const SERVER_SECRET: &str = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6";

    pub(crate) fn client() -> Certificate {
        Certificate {
            public_key: CurvePublicKey::from_z85(CLIENT_PUBLIC).unwrap(),
            secret_key: Some(CurveSecretKey::from_z85(CLIENT_SECRET).unwrap()),
            metadata: vec![
                ("name".into(), "Pieter Hintjens".into()),
                ("email".into(), "ph@imatix.com".into()),
            ],
        }
    }

    /// 2024-02-29 12:34:56.000789 UTC.
    fn when() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_709_210_096) + Duration::from_micros(789)
    }

    pub(crate) fn pyzmq_public_text(public: &str) -> String {
        format!(
            "#   ****  Generated on 2024-02-29 12:34:56.000789 by pyzmq  ****\n\
             #   ZeroMQ CURVE Public Certificate\n\
             #   Exchange securely, or use a secure mechanism to verify the contents\n\
             #   of this file after exchange. Store public certificates in your home\n\
             #   directory, in the .curve subdirectory.\n\
             \n\
             metadata\n\
             curve\n    public-key = \"{public}\"\n"
        )
    }

    #[test]
    fn czmq_flavour_is_byte_exact() {
        let cert = client();
        let public = cert.render(Flavour::Czmq, false, when()).unwrap();
        assert_eq!(
            public,
            format!(
                "#   ****  Generated on 2024-02-29 12:34:56 by CZMQ  ****\n\
                 #   ZeroMQ CURVE Public Certificate\n\
                 #   Exchange securely, or use a secure mechanism to verify the contents\n\
                 #   of this file after exchange. Store public certificates in your home\n\
                 #   directory, in the .curve subdirectory.\n\
                 \n\
                 metadata\n    name = \"Pieter Hintjens\"\n    email = \"ph@imatix.com\"\n\
                 curve\n    public-key = \"{CLIENT_PUBLIC}\"\n"
            )
        );
        let secret = cert.render(Flavour::Czmq, true, when()).unwrap();
        assert_eq!(
            secret,
            format!(
                "#   ****  Generated on 2024-02-29 12:34:56 by CZMQ  ****\n\
                 #   ZeroMQ CURVE **Secret** Certificate\n\
                 #   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n\
                 \n\
                 metadata\n    name = \"Pieter Hintjens\"\n    email = \"ph@imatix.com\"\n\
                 curve\n    public-key = \"{CLIENT_PUBLIC}\"\n    secret-key = \"{CLIENT_SECRET}\"\n"
            )
        );
        assert_eq!(Certificate::parse(&public).unwrap().secret_key, None);
        assert_eq!(Certificate::parse(&secret).unwrap(), cert);
    }

    #[test]
    fn pyzmq_flavour_is_byte_exact() {
        let cert = client();
        let public = cert.render(Flavour::Pyzmq, false, when()).unwrap();
        let with_metadata = pyzmq_public_text(CLIENT_PUBLIC).replace(
            "metadata\n",
            "metadata\n    name = Pieter Hintjens\n    email = ph@imatix.com\n",
        );
        assert_eq!(public, with_metadata);
        let secret = cert.render(Flavour::Pyzmq, true, when()).unwrap();
        assert_eq!(
            secret,
            format!(
                "#   ****  Generated on 2024-02-29 12:34:56.000789 by pyzmq  ****\n\
                 #   ZeroMQ CURVE **Secret** Certificate\n\
                 #   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n\
                 \n\
                 metadata\n    name = Pieter Hintjens\n    email = ph@imatix.com\n\
                 curve\n    public-key = \"{CLIENT_PUBLIC}\"\n    secret-key = \"{CLIENT_SECRET}\"\n"
            )
        );
        // The public file keeps the metadata (pyzmq's own writer drops it, its loader skips it).
        let loaded = Certificate::parse(&public).unwrap();
        assert!(loaded.metadata == cert.metadata && loaded.secret_key.is_none());
        let bare = Certificate {
            metadata: Vec::new(),
            ..cert.clone()
        };
        let bare_public = bare.render(Flavour::Pyzmq, false, when()).unwrap();
        assert_eq!(bare_public, pyzmq_public_text(CLIENT_PUBLIC));
        assert_eq!(Certificate::parse(&secret).unwrap(), cert);
    }

    #[test]
    fn awkward_metadata_values_round_trip_or_are_refused() {
        let mut cert = client();
        cert.metadata = vec![
            ("hash".into(), "a # b".into()),
            ("padded".into(), "  x  ".into()),
            ("quote".into(), "say \"hi\"".into()),
            ("apostrophe".into(), "'x".into()),
            ("empty".into(), String::new()),
        ];
        for flavour in [Flavour::Pyzmq, Flavour::Czmq] {
            let text = cert.render(flavour, true, when()).unwrap();
            assert_eq!(Certificate::parse(&text).unwrap(), cert, "{text}");
        }
        for value in ["a\nb", "a\rb", "a\0b", "both \" and '"] {
            cert.metadata = vec![("bad".into(), value.into())];
            assert_eq!(
                cert.to_secret_text(Flavour::Czmq),
                Err(CertificateError::UnwritableValue { name: "bad".into() })
            );
        }
        cert.metadata = vec![("Identity".into(), "x".into())];
        assert!(matches!(
            cert.to_public_text(Flavour::Pyzmq),
            Err(CertificateError::InvalidMetadata(
                MetadataError::ReservedName(_)
            ))
        ));
        cert.secret_key = None;
        assert_eq!(
            Certificate {
                metadata: vec![],
                ..cert
            }
            .to_secret_text(Flavour::Czmq),
            Err(CertificateError::NoSecretKey)
        );
    }

    #[test]
    fn hand_written_pyzmq_file_with_comments_parses() {
        let text = format!(
            "#   ****  Generated on 2023-07-01 10:11:12.123456 by pyzmq  ****\n\
             #   ZeroMQ CURVE **Secret** Certificate\n\
             #   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n\
             \n\
             metadata\n    owner = alice  # trailing comment\n    # a comment\n\
             curve\n    public-key = \"{SERVER_PUBLIC}\"\n    secret-key = \"{SERVER_SECRET}\"\n"
        );
        let cert = Certificate::parse(&text).unwrap();
        assert_eq!(cert.public_key.to_z85(), SERVER_PUBLIC);
        assert_eq!(cert.secret_key.unwrap().to_z85(), SERVER_SECRET);
        assert_eq!(cert.metadata, [("owner".to_owned(), "alice".to_owned())]);
        let encoded = Certificate::parse(&text)
            .unwrap()
            .metadata_encoded()
            .unwrap();
        assert_eq!(encoded.as_bytes(), b"\x05owner\x00\x00\x00\x05alice");
    }

    #[test]
    fn all_zero_secret_key_means_none() {
        let text = format!(
            "curve\n    public-key = \"{CLIENT_PUBLIC}\"\n    secret-key = \"{}\"\n",
            "0".repeat(40)
        );
        assert_eq!(Certificate::parse(&text).unwrap().secret_key, None);
    }

    #[test]
    fn broken_certificates_are_typed_errors() {
        let with_key = |key: &str| format!("metadata\ncurve\n    public-key = \"{key}\"\n");
        assert_eq!(
            Certificate::parse(&format!("curve\n\tpublic-key = \"{CLIENT_PUBLIC}\"\n")),
            Err(CertificateError::Syntax(zpl::ZplError {
                line: 2,
                kind: ZplErrorKind::Tab
            }))
        );
        assert_eq!(
            Certificate::parse(&with_key("abc")),
            Err(CertificateError::PublicKey {
                line: 3,
                source: KeyError::Z85Length(3)
            })
        );
        assert_eq!(
            Certificate::parse(&with_key("Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hI~")),
            Err(CertificateError::PublicKey {
                line: 3,
                source: KeyError::Z85Alphabet
            })
        );
        assert_eq!(
            Certificate::parse("metadata\ncurve\n"),
            Err(CertificateError::NoPublicKey)
        );
        assert_eq!(
            Certificate::parse(&format!("public-key = \"{CLIENT_PUBLIC}\"\n")),
            Err(CertificateError::NoPublicKey)
        );
        assert_eq!(
            Certificate::parse(&format!("curve\n    public-key = \"{CLIENT_PUBLIC}\n")),
            Err(CertificateError::Syntax(zpl::ZplError {
                line: 2,
                kind: ZplErrorKind::MissingQuote('"')
            }))
        );
        assert_eq!(
            Certificate::parse(&format!(
                "curve\n    public-key = \"{CLIENT_PUBLIC}\"\n    secret-key = \"short\"\n"
            )),
            Err(CertificateError::SecretKey {
                line: 3,
                source: KeyError::Z85Length(5)
            })
        );
    }

    #[test]
    fn ambiguous_and_bad_metadata_are_refused() {
        let key = format!("curve\n    public-key = \"{CLIENT_PUBLIC}\"\n");
        assert_eq!(
            Certificate::parse(&format!("{key}    public-key = \"{SERVER_PUBLIC}\"\n")),
            Err(CertificateError::Duplicate {
                path: "curve/public-key".into(),
                line: 3,
                first: 2
            })
        );
        assert!(matches!(
            Certificate::parse(&format!("{key}{key}")),
            Err(CertificateError::Duplicate {
                line: 3,
                first: 1,
                ..
            })
        ));
        assert!(matches!(
            Certificate::parse(&format!("metadata\n    user@host = x\n{key}")),
            Err(CertificateError::Metadata {
                line: 2,
                source: MetadataError::NameCharacter(_)
            })
        ));
        assert!(matches!(
            Certificate::parse(&format!("metadata\n    Socket-Type = x\n{key}")),
            Err(CertificateError::Metadata {
                line: 2,
                source: MetadataError::ReservedName(_)
            })
        ));
        assert!(matches!(
            Certificate::parse(&format!("metadata\n    A = 1\n    b = 2\n    a = 3\n{key}")),
            Err(CertificateError::Metadata {
                line: 4,
                source: MetadataError::DuplicateName(_)
            })
        ));
        let big = "x".repeat(40_000);
        assert!(matches!(
            Certificate::parse(&format!("metadata\n    a = {big}\n    b = {big}\n{key}")),
            Err(CertificateError::Metadata {
                line: 3,
                source: MetadataError::TooLarge(_)
            })
        ));
        // Deeper nodes and other sections are ignored, like CZMQ does.
        let cert = Certificate::parse(&format!(
            "other\n    x = 1\nmetadata\n    a = 1\n        b = 2\n{key}"
        ))
        .unwrap();
        assert_eq!(cert.metadata, [("a".to_owned(), "1".to_owned())]);
    }

    #[test]
    fn debug_never_shows_the_secret_key() {
        let shown = format!("{:?}", client());
        assert!(shown.contains(CLIENT_PUBLIC));
        assert!(!shown.contains(CLIENT_SECRET));
    }

    #[test]
    fn generated_keys_are_a_working_pair() {
        let cert = Certificate::generate().unwrap();
        let secret = cert.secret_key.as_ref().unwrap();
        assert_ne!(secret.as_bytes(), &[0u8; 32]);
        let text = cert.to_secret_text(Flavour::Czmq).unwrap();
        assert_eq!(Certificate::parse(&text).unwrap(), cert);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in proptest::prelude::any::<String>()) {
            let _ = Certificate::parse(&text);
        }

        #[test]
        fn mutated_certificates_never_panic(
            at in 0usize..600,
            cut in 0usize..8,
            insert in "[ \t\r\n#=\"'a-z0-9/@.\u{FEFF}\u{e9}]{0,12}",
        ) {
            let text = client().render(Flavour::Czmq, true, when()).unwrap();
            let mut chars: Vec<char> = text.chars().collect();
            let at = at.min(chars.len());
            let end = (at + cut).min(chars.len());
            chars.splice(at..end, insert.chars());
            let mutated: String = chars.into_iter().collect();
            if let Ok(cert) = Certificate::parse(&mutated) {
                // Whatever parses must render and parse back to the same certificate.
                let secret = cert.secret_key.is_some();
                if let Ok(again) = cert.render(Flavour::Czmq, secret, when()) {
                    proptest::prop_assert_eq!(Certificate::parse(&again).unwrap(), cert);
                }
            }
        }
    }

    #[test]
    fn not_utf8_points_at_the_line() {
        assert_eq!(
            text_of(b"a\nb\n\xff"),
            Err(CertificateError::NotUtf8 { line: 3 })
        );
        assert_eq!(text_of(b"ok"), Ok("ok"));
    }
}
