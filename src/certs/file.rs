//! Reading and writing one certificate's files: `NAME.key` (public) and `NAME.key_secret`.
//!
//! Files are replaced atomically (written to a hidden temporary file in the same directory,
//! then renamed), so a directory reload never sees half a certificate, and a secret file is
//! created owner-only (0600) from the start, never widened and narrowed later.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::certificate::text_of;
use super::{CertError, Certificate, FileError, Flavour};

/// The largest file read as a certificate (1 MiB).
///
/// Real certificates are a few hundred bytes (metadata is capped at 64 KiB); the cap keeps a
/// stray large file in a certificate directory from being read into memory.
pub const MAX_CERTIFICATE_BYTES: u64 = 1 << 20;

/// Reads a whole file (at most [`MAX_CERTIFICATE_BYTES`]) into `buf`, reusing its capacity.
pub(crate) fn read_into(path: &Path, buf: &mut Vec<u8>) -> Result<(), FileError> {
    buf.clear();
    let file = File::open(path).map_err(FileError::Read)?;
    file.take(MAX_CERTIFICATE_BYTES + 1)
        .read_to_end(buf)
        .map_err(FileError::Read)?;
    if buf.len() as u64 > MAX_CERTIFICATE_BYTES {
        return Err(FileError::TooLarge);
    }
    Ok(())
}

/// Reads and parses one certificate file, naming it in any error.
fn read_certificate(path: &Path) -> Result<Certificate, CertError> {
    let mut buf = Vec::with_capacity(1024);
    read_into(path, &mut buf).map_err(|e| CertError::file(path, e))?;
    text_of(&buf)
        .and_then(Certificate::parse)
        .map_err(|e| CertError::file(path, FileError::Certificate(e)))
}

/// Loads a certificate the way CZMQ's `zcert_load` does: `<path>_secret` when it exists (it
/// holds both keys), else `<path>`.
///
/// Unlike CZMQ, a secret file that exists but cannot be read or parsed is an error (naming
/// that file) rather than a silent fall-back to the public one, so a server never starts
/// without the secret key it was meant to have.
///
/// To read exactly one file, never the secret file beside it, use [`load_certificate_file`].
pub fn load_certificate(path: impl AsRef<Path>) -> Result<Certificate, CertError> {
    let path = path.as_ref();
    let secret = secret_file_of(path);
    match read_certificate(&secret) {
        Err(CertError::File {
            cause: FileError::Read(e),
            ..
        }) if e.kind() == io::ErrorKind::NotFound => read_certificate(path),
        other => other,
    }
}

/// Reads exactly the certificate file `path` — never the `<path>_secret` beside it, which
/// [`load_certificate`] prefers — naming it in any error: what one file holds, e.g. to show it.
///
/// ```
/// use actix_zap::certs::{create_certificates, load_certificate_file, Flavour};
///
/// let dir = tempfile::tempdir()?;
/// let (public, secret) = create_certificates(dir.path(), "alice", &[], Flavour::Pyzmq)?;
/// assert!(load_certificate_file(&public)?.secret_key.is_none());
/// assert!(load_certificate_file(&secret)?.secret_key.is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn load_certificate_file(path: impl AsRef<Path>) -> Result<Certificate, CertError> {
    read_certificate(path.as_ref())
}

/// The secret file [`load_certificate`] reads for `path` when it exists: `<path>_secret`,
/// CZMQ's name for the secret half of a certificate.
pub fn secret_file_of(path: impl AsRef<Path>) -> PathBuf {
    let mut name = OsString::from(path.as_ref().as_os_str());
    name.push("_secret");
    PathBuf::from(name)
}

/// Where [`create_certificates`] writes the certificate `name` in `dir`: the public file
/// `<name>.key` and the secret one `<name>.key_secret` (pyzmq's names).
pub fn certificate_paths(dir: impl AsRef<Path>, name: &str) -> (PathBuf, PathBuf) {
    let public = dir.as_ref().join(format!("{name}.key"));
    let secret = secret_file_of(&public);
    (public, secret)
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `text` to `path` atomically; `secret` files are created with mode 0600.
fn write_file(path: &Path, text: &str, secret: bool) -> Result<(), CertError> {
    let fail = |e: io::Error| CertError::file(path, FileError::Write(e));
    let name = path.file_name().ok_or_else(|| {
        fail(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path has no file name",
        ))
    })?;
    let dir = path.parent().unwrap_or(Path::new(""));
    let mode = if secret { 0o600 } else { 0o666 };
    let (temp, mut file) = loop {
        // Hidden, so directory loads skip it; unique per process and attempt.
        let mut temp_name = OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(
            ".tmp-{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let temp = dir.join(temp_name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)
        {
            Ok(file) => break (temp, file),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(fail(e)),
        }
    };
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&temp, path));
    if let Err(e) = written {
        drop(file);
        let _ = std::fs::remove_file(&temp);
        return Err(fail(e));
    }
    Ok(())
}

impl Certificate {
    /// Writes the public file and the secret file (mode 0600), replacing existing ones.
    ///
    /// Both texts are rendered before anything is written, so invalid metadata or a missing
    /// secret key leaves the disk untouched.
    pub fn save(
        &self,
        public_path: impl AsRef<Path>,
        secret_path: impl AsRef<Path>,
        flavour: Flavour,
    ) -> Result<(), CertError> {
        let (public_path, secret_path) = (public_path.as_ref(), secret_path.as_ref());
        let public = self
            .to_public_text(flavour)
            .map_err(|e| CertError::file(public_path, FileError::Certificate(e)))?;
        let secret = self
            .to_secret_text(flavour)
            .map_err(|e| CertError::file(secret_path, FileError::Certificate(e)))?;
        write_file(public_path, &public, false)?;
        write_file(secret_path, &secret, true)
    }

    /// Writes only the public file, e.g. to hand a client's certificate to a server.
    pub fn save_public(&self, path: impl AsRef<Path>, flavour: Flavour) -> Result<(), CertError> {
        let path = path.as_ref();
        let text = self
            .to_public_text(flavour)
            .map_err(|e| CertError::file(path, FileError::Certificate(e)))?;
        write_file(path, &text, false)
    }
}

/// Generates a key pair and writes `dir/NAME.key` and `dir/NAME.key_secret` (mode 0600), like
/// pyzmq's `create_certificates`; returns (public path, secret path).
///
/// The metadata goes into both files (see [`Flavour`]). Existing files of that name are
/// replaced. A missing `dir` is created, with its missing parents, owner-only (mode 0700):
/// it holds a secret key. An existing directory keeps its permissions.
///
/// ```
/// use actix_zap::certs::{create_certificates, load_certificate, Flavour};
///
/// let dir = tempfile::tempdir()?;
/// let (public, secret) =
///     create_certificates(dir.path(), "server", &[("role", "frontend")], Flavour::Pyzmq)?;
/// assert!(public.ends_with("server.key") && secret.ends_with("server.key_secret"));
///
/// // Like CZMQ's zcert_load: the secret file is preferred, so both keys come back.
/// let cert = load_certificate(&public)?;
/// assert!(cert.secret_key.is_some());
/// assert_eq!(cert.metadata, [("role".to_owned(), "frontend".to_owned())]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn create_certificates(
    dir: impl AsRef<Path>,
    name: &str,
    metadata: &[(&str, &str)],
    flavour: Flavour,
) -> Result<(PathBuf, PathBuf), CertError> {
    if name.is_empty() || name.starts_with('.') || name.contains(['/', '\0']) {
        return Err(CertError::InvalidName(name.to_owned()));
    }
    let mut cert = Certificate::generate()?;
    cert.metadata = metadata
        .iter()
        .map(|&(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    let dir = dir.as_ref();
    if !dir.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| CertError::file(dir, FileError::Write(e)))?;
    }
    let (public, secret) = certificate_paths(dir, name);
    cert.save(&public, &secret, flavour)?;
    Ok((public, secret))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::certificate::tests::{client, pyzmq_public_text, CLIENT_PUBLIC};
    use crate::certs::CertificateError;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn round_trip_in_both_flavours() {
        let dir = tempfile::tempdir().unwrap();
        for flavour in [Flavour::Pyzmq, Flavour::Czmq] {
            let meta = [("Hello", "World!"), ("team", "ops # night")];
            let (public, secret) = create_certificates(dir.path(), "c", &meta, flavour).unwrap();
            let full = load_certificate(&public).unwrap();
            let expected: Vec<(String, String)> = meta
                .iter()
                .map(|&(n, v)| (n.to_owned(), v.to_owned()))
                .collect();
            assert_eq!(full.metadata, expected);
            assert!(full.secret_key.is_some());
            // The public file alone: same public key, and the metadata in both flavours
            // (never dropped silently: a server loading public files sees it).
            std::fs::remove_file(&secret).unwrap();
            let public_only = load_certificate(&public).unwrap();
            assert_eq!(public_only.public_key, full.public_key);
            assert_eq!(public_only.secret_key, None);
            assert_eq!(public_only.metadata, expected);
        }
    }

    #[test]
    fn a_missing_directory_is_created_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("new").join("certs");
        let (public, _) = create_certificates(&certs, "c", &[], Flavour::Pyzmq).unwrap();
        assert!(public.exists());
        assert_eq!(mode(&certs), 0o700);
        assert_eq!(mode(&dir.path().join("new")), 0o700);
        // An existing directory keeps its permissions.
        std::fs::set_permissions(&certs, std::fs::Permissions::from_mode(0o750)).unwrap();
        create_certificates(&certs, "d", &[], Flavour::Pyzmq).unwrap();
        assert_eq!(mode(&certs), 0o750);
    }

    #[test]
    fn secret_file_is_owner_only_even_when_replacing() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("x.key_secret");
        std::fs::write(&secret, "old").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (public, secret2) = create_certificates(dir.path(), "x", &[], Flavour::Czmq).unwrap();
        assert_eq!(secret, secret2);
        assert_eq!(mode(&secret), 0o600);
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "").unwrap();
        assert_eq!(
            mode(&public),
            mode(&plain),
            "public file keeps the umask default"
        );
        std::fs::remove_file(&plain).unwrap();
        // Nothing temporary is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn load_prefers_secret_and_reports_paths() {
        let dir = tempfile::tempdir().unwrap();
        let public = dir.path().join("client.key");
        std::fs::write(&public, pyzmq_public_text(CLIENT_PUBLIC)).unwrap();
        assert!(load_certificate(&public).unwrap().secret_key.is_none());

        let secret = dir.path().join("client.key_secret");
        std::fs::write(&secret, "curve\n\tpublic-key = \"x\"\n").unwrap();
        let err = load_certificate(&public).unwrap_err();
        let CertError::File { path, cause } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(path, &secret);
        assert!(matches!(
            cause,
            FileError::Certificate(CertificateError::Syntax(e)) if e.line == 2
        ));
        assert!(err.to_string().contains("client.key_secret: line 2: tab"));

        let missing = dir.path().join("missing.key");
        let err = load_certificate(&missing).unwrap_err();
        assert!(
            matches!(&err, CertError::File { path, cause: FileError::Read(e) }
                if path == &missing && e.kind() == io::ErrorKind::NotFound),
            "{err:?}"
        );
    }

    #[test]
    fn save_refuses_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let mut cert = client();
        cert.secret_key = None;
        let (public, secret) = (dir.path().join("a"), dir.path().join("a_secret"));
        assert!(cert.save(&public, &secret, Flavour::Czmq).is_err());
        assert!(!public.exists() && !secret.exists());
        cert.save_public(&public, Flavour::Czmq).unwrap();
        assert_eq!(load_certificate(&public).unwrap(), cert);
        for bad in ["", ".hidden", "a/b"] {
            assert!(matches!(
                create_certificates(dir.path(), bad, &[], Flavour::Pyzmq),
                Err(CertError::InvalidName(_))
            ));
        }
        // A directory that cannot be created (under a regular file).
        let err = create_certificates(public.join("nope"), "x", &[], Flavour::Pyzmq);
        assert!(matches!(
            err,
            Err(CertError::File {
                cause: FileError::Write(_),
                ..
            })
        ));
    }

    #[test]
    fn oversized_files_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'#'; MAX_CERTIFICATE_BYTES as usize + 1]).unwrap();
        assert!(matches!(
            load_certificate(&big),
            Err(CertError::File {
                cause: FileError::TooLarge,
                ..
            })
        ));
    }
}
