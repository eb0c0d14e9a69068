//! Errors of the certificate module: what is wrong inside a certificate, what went wrong with
//! a file, and the path it happened to.
//!
//! No message ever contains a secret key: key errors report lengths only.

use std::io;
use std::path::PathBuf;

use super::zpl::ZplError;
use crate::keys::{CurvePublicKey, KeyError};
use crate::zap::MetadataError;

/// Why a certificate text cannot be read or written, pointing at the line when there is one,
/// so a user can fix the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// The text is not valid ZPL (tab indentation, missing quote, ...).
    #[error(transparent)]
    Syntax(#[from] ZplError),
    /// The file is not UTF-8 text.
    #[error("line {line}: not valid UTF-8")]
    NotUtf8 {
        /// The line holding the first invalid byte.
        line: usize,
    },
    /// No `curve/public-key` entry: the file is not a certificate.
    #[error("no curve/public-key entry")]
    NoPublicKey,
    /// The public key is not 40 characters of Z85.
    #[error("line {line}: curve/public-key: {source}")]
    PublicKey {
        /// The line of the `public-key` entry.
        line: usize,
        /// What is wrong with the key text.
        source: KeyError,
    },
    /// The secret key is not 40 characters of Z85 (the message never shows the key).
    #[error("line {line}: curve/secret-key: {source}")]
    SecretKey {
        /// The line of the `secret-key` entry.
        line: usize,
        /// What is wrong with the key text.
        source: KeyError,
    },
    /// The same section or key twice, which readers would resolve differently (CZMQ takes the
    /// first, pyzmq the last), so it is refused.
    #[error("line {line}: {path} already appears on line {first}")]
    Duplicate {
        /// The `/`-separated path, e.g. `curve/public-key`.
        path: String,
        /// The line of the second occurrence.
        line: usize,
        /// The line of the first occurrence.
        first: usize,
    },
    /// A metadata entry that libzmq would not accept (bad or reserved name, duplicate name,
    /// too large in total).
    #[error("line {line}: {source}")]
    Metadata {
        /// The line of the offending entry.
        line: usize,
        /// What is wrong with it.
        source: MetadataError,
    },
    /// Metadata that cannot be written (bad name, duplicate, too large).
    #[error("cannot write metadata: {0}")]
    InvalidMetadata(MetadataError),
    /// A metadata value that ZPL cannot represent: it contains a line break or NUL, or needs
    /// quoting and contains both quote characters.
    #[error("metadata value of {name:?} cannot be written in ZPL (line break, NUL, or both quote characters)")]
    UnwritableValue {
        /// The entry's name (the value is not shown).
        name: String,
    },
    /// A metadata name that pyzmq's `load_certificate` would take for a key line
    /// (`public-key...`, `secret-key...`), so it cannot be written in pyzmq's flavour.
    #[error(
        "metadata name {name:?} would be read as a key by pyzmq's loader; rename it or write \
         the CZMQ flavour"
    )]
    UnwritableName {
        /// The entry's name.
        name: String,
    },
    /// A secret certificate was asked for, but the certificate has no secret key.
    #[error("the certificate has no secret key")]
    NoSecretKey,
}

/// What went wrong with one file or directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The file could not be opened or read.
    #[error("cannot read: {0}")]
    Read(#[source] io::Error),
    /// The file could not be written.
    #[error("cannot write: {0}")]
    Write(#[source] io::Error),
    /// The directory could not be listed.
    #[error("cannot list directory: {0}")]
    ListDirectory(#[source] io::Error),
    /// A directory was expected.
    #[error("not a directory")]
    NotADirectory,
    /// A FIFO, socket or device: never read (reading a FIFO would block the reader). The
    /// listing never opens one; one put in place of a listed file is opened without blocking
    /// and refused.
    #[error("not a regular file; skipped")]
    NotARegularFile,
    /// Larger than [`MAX_CERTIFICATE_BYTES`](super::MAX_CERTIFICATE_BYTES): not a certificate,
    /// and not read into memory.
    #[error(
        "larger than {} bytes, not a certificate",
        super::MAX_CERTIFICATE_BYTES
    )]
    TooLarge,
    /// Larger than the cap its reader was given (a watched password file's
    /// [`Watch::max_file_bytes`](crate::messages::Watch::max_file_bytes)): refused, and not
    /// read into memory when its size says so.
    #[error("{size} bytes, over the cap of {limit} bytes; refused")]
    OverLimit {
        /// Its size (or, when its size said less, at least this many bytes were read).
        size: u64,
        /// The cap.
        limit: u64,
    },
    /// A directory holding more entries than its reader's cap
    /// ([`Watch::max_entries`](crate::messages::Watch::max_entries),
    /// [`MAX_DIRECTORY_ENTRIES`](super::MAX_DIRECTORY_ENTRIES) for a load): refused whole.
    #[error("more than {limit} entries; refused")]
    TooManyEntries {
        /// The cap.
        limit: usize,
    },
    /// The file changed while it was read (a writer is at work): skipped rather than loaded
    /// half-written. A watch reads it again once it has settled.
    #[error("changed while being read (a writer is at work); skipped")]
    Changing,
    /// The file's content is not a valid certificate.
    #[error("{0}")]
    Certificate(#[source] CertificateError),
    /// Another file, earlier in path order, already holds this public key.
    #[error("public key {key} is already loaded from {}", first.display())]
    DuplicateKey {
        /// The public key both files hold.
        key: CurvePublicKey,
        /// The file that was loaded.
        first: PathBuf,
    },
}

impl FileError {
    /// The same error, for a report that is made again from what a watch holds (`io::Error`
    /// cannot be cloned: an OS error keeps its code, any other its kind and message).
    pub(crate) fn duplicate(&self) -> FileError {
        let io = |e: &io::Error| match e.raw_os_error() {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::new(e.kind(), e.to_string()),
        };
        match self {
            FileError::Read(e) => FileError::Read(io(e)),
            FileError::Write(e) => FileError::Write(io(e)),
            FileError::ListDirectory(e) => FileError::ListDirectory(io(e)),
            FileError::NotADirectory => FileError::NotADirectory,
            FileError::NotARegularFile => FileError::NotARegularFile,
            FileError::TooLarge => FileError::TooLarge,
            FileError::OverLimit { size, limit } => FileError::OverLimit {
                size: *size,
                limit: *limit,
            },
            FileError::TooManyEntries { limit } => FileError::TooManyEntries { limit: *limit },
            FileError::Changing => FileError::Changing,
            FileError::Certificate(e) => FileError::Certificate(e.clone()),
            FileError::DuplicateKey { key, first } => FileError::DuplicateKey {
                key: *key,
                first: first.clone(),
            },
        }
    }
}

/// Why a certificate operation failed, naming the file or directory involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// libzmq could not make a key pair (e.g. built without CURVE support).
    #[error("cannot generate a CURVE key pair: {0}")]
    Generate(#[source] zmq::Error),
    /// A certificate name for [`create_certificates`](super::create_certificates) that is
    /// empty, contains `/` or NUL, or starts with `.` (hidden files are never loaded).
    #[error("invalid certificate name {0:?}: it must be non-empty, without '/' or NUL, and not start with '.'")]
    InvalidName(String),
    /// Reading, writing or understanding this file or directory failed.
    #[error("{}: {cause}", path.display())]
    File {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        #[source]
        cause: FileError,
    },
}

impl CertError {
    /// Attaches a path to a cause.
    pub(crate) fn file(path: impl Into<PathBuf>, cause: FileError) -> Self {
        Self::File {
            path: path.into(),
            cause,
        }
    }
}
