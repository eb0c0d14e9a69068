//! CURVE certificates: the key files pyzmq and CZMQ write, and the key set a CURVE policy
//! allows.
//!
//! - [`Certificate`] parses and renders one certificate in either program's layout
//!   ([`Flavour`]); [`zpl`] is the ZPL parser underneath.
//! - [`create_certificates`], [`Certificate::save`] and [`load_certificate`] handle one
//!   certificate's files (`NAME.key` and `NAME.key_secret`, the secret one owner-only).
//! - [`load_directory`] turns a directory of public certificates ([`Layout`]) into a
//!   [`CertStore`] plus the list of refused files, so every bad file is reported by name, and
//!   the list of files its layout passed over ([`SkippedFile`], with a [`SkipReason`]).
//!
//! Secret keys are never logged or displayed.

mod certificate;
mod directory;
mod error;
mod file;
mod reading;
mod store;
pub(crate) mod time;
pub mod zpl;

pub use certificate::{Certificate, Flavour};
pub(crate) use directory::{
    assemble, candidates, layout_warning, parse_cert_file, read_directory, CertFile,
};
pub use directory::{
    load_directory, DirectoryLoad, Layout, RejectedFile, SkipReason, SkippedFile,
    MAX_DIRECTORY_ENTRIES,
};
pub use error::{CertError, CertificateError, FileError};
pub use file::{
    certificate_paths, create_certificates, load_certificate, load_certificate_file,
    secret_file_of, MAX_CERTIFICATE_BYTES,
};
pub(crate) use reading::{in_parallel, read_certificate, read_regular, ReadHook, Stamp, Steady};
pub use store::{CertStore, KeyEntry};
