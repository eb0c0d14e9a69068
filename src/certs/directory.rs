//! Loading a directory of public certificates into a [`CertStore`], reporting every file that
//! was not loaded and why.
//!
//! A load installs exactly the keys of the valid files present now: nothing from a previous
//! load is kept, and a broken file's key is never admitted. Only the directory itself being
//! missing or unlistable fails the whole load (the caller then refuses every client).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::certificate::{parse_parts, text_of};
use super::file::read_into;
use super::{CertError, CertStore, FileError};
use crate::keys::CurvePublicKey;
use crate::zap::Metadata;

/// Which files of a directory are certificates, following the program whose directories
/// users already have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// pyzmq's `load_certificates`: files named `*.key` directly in the directory (not in
    /// subdirectories); `*.key_secret` and everything else is ignored.
    Pyzmq,
    /// CZMQ's `zcertstore`: every file in the directory and, recursively, its subdirectories,
    /// except names ending in `_secret`.
    Czmq,
}

/// A file that was not loaded, so the user can be told which file to fix and how.
#[derive(Debug)]
pub struct RejectedFile {
    /// The file (or, for an unlistable subdirectory, the directory).
    pub path: PathBuf,
    /// Why it was not loaded.
    pub cause: FileError,
}

/// The result of loading a directory: the keys to allow and the files that were refused.
#[derive(Debug, Default)]
pub struct DirectoryLoad {
    /// One entry per valid certificate, with its metadata encoded for replies.
    pub store: CertStore,
    /// Every refused file, in path order.
    pub rejected: Vec<RejectedFile>,
    /// Set when the directory holds files but none is a certificate in the layout asked for
    /// (e.g. CZMQ's `*.cert` files read in pyzmq's layout, which takes only `*.key`): no key
    /// is admitted, and this says why instead of an empty set passing silently.
    pub warning: Option<String>,
}

/// Files below this count are read on the calling thread; spawning threads would cost more.
const PARALLEL_THRESHOLD: usize = 512;
/// Reading is bound by system calls; a few threads are enough to hide their latency.
const MAX_THREADS: usize = 8;

/// What reading one certificate file yields: its key, its metadata, and whether it holds a
/// secret key.
pub(crate) type CertFile = Result<(CurvePublicKey, Metadata, bool), FileError>;

/// Parses one certificate file's bytes (live reload reads files itself, then parses here).
pub(crate) fn parse_cert_file(bytes: &[u8]) -> CertFile {
    let parsed = text_of(bytes)
        .and_then(parse_parts)
        .map_err(FileError::Certificate)?;
    Ok((
        parsed.public_key,
        parsed.encoded,
        parsed.secret_key.is_some(),
    ))
}

fn load_one(path: &Path, buf: &mut Vec<u8>) -> CertFile {
    read_into(path, buf)?;
    parse_cert_file(buf)
}

fn load_chunk(paths: &[PathBuf]) -> Vec<CertFile> {
    let mut buf = Vec::with_capacity(4096);
    paths.iter().map(|p| load_one(p, &mut buf)).collect()
}

/// Loads every file, in parallel for large directories; results are in `paths` order.
fn load_all(paths: &[PathBuf]) -> Vec<CertFile> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS);
    if threads <= 1 || paths.len() < PARALLEL_THRESHOLD {
        return load_chunk(paths);
    }
    let chunk = paths.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let jobs: Vec<_> = paths
            .chunks(chunk)
            .map(|part| {
                let spawned = std::thread::Builder::new()
                    .name("cert-load".into())
                    .spawn_scoped(scope, move || load_chunk(part));
                (part, spawned)
            })
            .collect();
        let mut results = Vec::with_capacity(paths.len());
        for (part, spawned) in jobs {
            match spawned {
                Ok(handle) => match handle.join() {
                    Ok(loaded) => results.extend(loaded),
                    Err(panic) => std::panic::resume_unwind(panic),
                },
                // No thread available: do this part here.
                Err(_) => results.extend(load_chunk(part)),
            }
        }
        results
    })
}

/// Lists the candidate files under `dir`; only a failure to list `dir` itself is an error.
/// FIFOs, sockets and devices (and links to them) are never opened — a FIFO would block the
/// reader — and are reported in `rejected`.
pub(crate) fn candidates(
    dir: &Path,
    layout: Layout,
    rejected: &mut Vec<RejectedFile>,
) -> Result<Vec<PathBuf>, CertError> {
    let top = fs::metadata(dir).map_err(|e| CertError::file(dir, FileError::ListDirectory(e)))?;
    if !top.is_dir() {
        return Err(CertError::file(dir, FileError::NotADirectory));
    }
    let mut visited = HashSet::from([(top.dev(), top.ino())]);
    let mut pending = vec![dir.to_path_buf()];
    let mut files = Vec::new();
    while let Some(current) = pending.pop() {
        let entries = match fs::read_dir(&current) {
            Ok(entries) => entries,
            Err(e) if current == dir => {
                return Err(CertError::file(dir, FileError::ListDirectory(e)));
            }
            Err(e) => {
                rejected.push(RejectedFile {
                    path: current,
                    cause: FileError::ListDirectory(e),
                });
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    rejected.push(RejectedFile {
                        path: current.clone(),
                        cause: FileError::ListDirectory(e),
                    });
                    break;
                }
            };
            let name = entry.file_name();
            let name = name.as_bytes();
            // Hidden files are skipped by both CZMQ (zdir) and pyzmq (glob); our own
            // temporary files are hidden too.
            if name.starts_with(b".") {
                continue;
            }
            let path = entry.path();
            let kind = match entry.file_type() {
                Ok(kind) => kind,
                Err(e) => {
                    rejected.push(RejectedFile {
                        path,
                        cause: FileError::Read(e),
                    });
                    continue;
                }
            };
            if kind.is_dir() {
                if layout == Layout::Czmq {
                    match entry.metadata() {
                        Ok(m) if visited.insert((m.dev(), m.ino())) => pending.push(path),
                        Ok(_) => {}
                        Err(e) => rejected.push(RejectedFile {
                            path,
                            cause: FileError::ListDirectory(e),
                        }),
                    }
                }
                continue;
            }
            let wanted = match layout {
                Layout::Pyzmq => name.ends_with(b".key"),
                Layout::Czmq => !name.ends_with(b"_secret"),
            };
            if !wanted {
                continue;
            }
            if kind.is_symlink() {
                // Links to files are followed; links to directories are not (no loops), and
                // a dangling link is kept so that reading it reports the problem.
                match fs::metadata(&path) {
                    Ok(target) if target.is_dir() => {
                        log::debug!("certificates: skipping {} (a directory)", path.display());
                        continue;
                    }
                    Ok(target) if !target.is_file() => {
                        rejected.push(RejectedFile {
                            path,
                            cause: FileError::NotARegularFile,
                        });
                        continue;
                    }
                    _ => {}
                }
            } else if !kind.is_file() {
                rejected.push(RejectedFile {
                    path,
                    cause: FileError::NotARegularFile,
                });
                continue;
            }
            files.push(path);
        }
    }
    Ok(files)
}

/// Builds the key set from files read in path order: a key already loaded from an earlier file
/// refuses the later file (`duplicate(key, first file)` says why). Returns the store and the
/// refused files, for [`load_directory`] and for live reload, which keeps files it has read.
pub(crate) fn assemble<E>(
    dir: &Path,
    files: impl IntoIterator<Item = (PathBuf, Result<(CurvePublicKey, Metadata, bool), E>)>,
    duplicate: impl Fn(CurvePublicKey, PathBuf) -> E,
) -> (CertStore, Vec<(PathBuf, E)>) {
    // Key -> (metadata, the first file holding it), to name it on duplicates.
    let mut first: HashMap<CurvePublicKey, (Metadata, PathBuf)> = HashMap::new();
    let mut refused = Vec::new();
    for (path, result) in files {
        let cause = match result {
            Ok((key, metadata, has_secret)) => {
                if has_secret {
                    log::warn!(
                        "certificates: {} holds a secret key; only public certificates belong in {}",
                        path.display(),
                        dir.display()
                    );
                }
                match first.get(&key) {
                    None => {
                        first.insert(key, (metadata, path));
                        continue;
                    }
                    Some((_, earlier)) => duplicate(key, earlier.clone()),
                }
            }
            Err(cause) => cause,
        };
        refused.push((path, cause));
    }
    let mut store = CertStore::with_capacity(first.len());
    for (key, (metadata, _)) in first {
        store.insert(key, metadata);
    }
    (store, refused)
}

/// Loads the public keys of every certificate in `dir` (with their metadata) and lists every
/// file that was refused, so one bad file never hides the good ones or goes unnoticed.
///
/// Files are taken in path order; a file whose public key was already loaded from an earlier
/// file is refused, naming that file. Hidden files are skipped, symbolic links to files are
/// followed, links to directories are not. Each refused file is logged at `warn`.
///
/// Fails only when `dir` is missing, not a directory, or cannot be listed.
///
/// ```
/// use actix_zap::certs::{create_certificates, load_directory, Flavour, Layout};
///
/// let dir = tempfile::tempdir()?;
/// create_certificates(dir.path(), "alice", &[], Flavour::Pyzmq)?;
/// create_certificates(dir.path(), "bob", &[], Flavour::Pyzmq)?;
/// std::fs::write(dir.path().join("broken.key"), "curve\n\tpublic-key = \"x\"\n")?;
///
/// let load = load_directory(dir.path(), Layout::Pyzmq)?;
/// assert_eq!(load.store.len(), 2);
/// assert_eq!(load.rejected.len(), 1);
/// assert!(load.rejected[0].path.ends_with("broken.key"));
///
/// assert!(load_directory(dir.path().join("missing"), Layout::Pyzmq).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn load_directory(dir: impl AsRef<Path>, layout: Layout) -> Result<DirectoryLoad, CertError> {
    let dir = dir.as_ref();
    let mut rejected = Vec::new();
    let mut paths = candidates(dir, layout, &mut rejected)?;
    paths.sort_unstable();
    let loaded = load_all(&paths);

    let files = paths.into_iter().zip(loaded);
    let (store, refused) = assemble(dir, files, |key, first| FileError::DuplicateKey {
        key,
        first,
    });
    rejected.extend(
        refused
            .into_iter()
            .map(|(path, cause)| RejectedFile { path, cause }),
    );
    rejected.sort_by(|a, b| a.path.cmp(&b.path));
    for file in &rejected {
        log::warn!(
            "certificates: refused {}: {}",
            file.path.display(),
            file.cause
        );
    }
    log::info!(
        "certificates: loaded {} keys from {}, refused {} files",
        store.len(),
        dir.display(),
        rejected.len()
    );
    let warning = if store.is_empty() && rejected.is_empty() {
        nothing_matched(dir, layout)
    } else {
        None
    };
    if let Some(warning) = &warning {
        log::warn!("certificates: {warning}");
    }
    Ok(DirectoryLoad {
        store,
        rejected,
        warning,
    })
}

/// Says why a directory that holds files yielded no certificate candidate at all, if it
/// does hold files (hidden ones aside, as the load skips them).
fn nothing_matched(dir: &Path, layout: Layout) -> Option<String> {
    let files = fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|entry| !entry.file_name().as_bytes().starts_with(b"."))
        .filter(|entry| entry.file_type().is_ok_and(|kind| !kind.is_dir()))
        .count();
    if files == 0 {
        return None;
    }
    let expected = match layout {
        Layout::Pyzmq => {
            "pyzmq's layout reads only NAME.key files directly in it; for a CZMQ \
             certificate store (any file name, subdirectories) use the CZMQ layout"
        }
        Layout::Czmq => "CZMQ's layout skips every NAME_secret file",
    };
    Some(format!(
        "{} holds {files} file(s) but no public certificate: {expected}; no key is admitted",
        dir.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::certificate::tests::{pyzmq_public_text, CLIENT_PUBLIC, SERVER_PUBLIC};
    use crate::certs::zpl::ZplErrorKind;
    use crate::certs::{create_certificates, load_certificate, CertificateError, Flavour};
    use crate::keys::KeyError;
    use crate::zap::MetadataError;
    use std::os::unix::fs::symlink;

    /// The broken files both layouts must refuse, by file name, with a check of the cause.
    fn write_broken(dir: &Path, suffix: &str) {
        let write = |name: &str, text: String| {
            fs::write(dir.join(format!("{name}{suffix}")), text).unwrap();
        };
        write(
            "tab",
            format!("curve\n\tpublic-key = \"{CLIENT_PUBLIC}\"\n"),
        );
        write("short", "curve\n    public-key = \"abc\"\n".into());
        write(
            "badz85",
            "curve\n    public-key = \"Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hI~\"\n".into(),
        );
        write("nokey", "metadata\ncurve\n".into());
        write(
            "badmeta",
            format!("metadata\n    a b = 1\ncurve\n    public-key = \"{CLIENT_PUBLIC}\"\n"),
        );
        write(
            "reserved",
            format!("metadata\n    Identity = x\ncurve\n    public-key = \"{CLIENT_PUBLIC}\"\n"),
        );
        symlink(dir.join("nowhere"), dir.join(format!("dangling{suffix}"))).unwrap();
    }

    fn check_broken(load: &DirectoryLoad, suffix: &str) {
        let cause = |name: &str| {
            let wanted = format!("{name}{suffix}");
            let found = load.rejected.iter().find(|r| r.path.ends_with(&wanted));
            &found
                .unwrap_or_else(|| panic!("{wanted} not rejected"))
                .cause
        };
        assert!(matches!(
            cause("tab"),
            FileError::Certificate(CertificateError::Syntax(e))
                if e.line == 2 && e.kind == ZplErrorKind::Tab
        ));
        assert!(matches!(
            cause("short"),
            FileError::Certificate(CertificateError::PublicKey {
                line: 2,
                source: KeyError::Z85Length(3)
            })
        ));
        assert!(matches!(
            cause("badz85"),
            FileError::Certificate(CertificateError::PublicKey {
                source: KeyError::Z85Alphabet,
                ..
            })
        ));
        assert!(matches!(
            cause("nokey"),
            FileError::Certificate(CertificateError::NoPublicKey)
        ));
        assert!(matches!(
            cause("badmeta"),
            FileError::Certificate(CertificateError::Syntax(e)) if e.line == 2
        ));
        assert!(matches!(
            cause("reserved"),
            FileError::Certificate(CertificateError::Metadata {
                line: 2,
                source: MetadataError::ReservedName(_)
            })
        ));
        assert!(matches!(cause("dangling"), FileError::Read(_)));
    }

    #[test]
    fn pyzmq_layout_loads_key_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let (alice, _) =
            create_certificates(root, "alice", &[("Hello", "World")], Flavour::Pyzmq).unwrap();
        fs::write(root.join("client.key"), pyzmq_public_text(CLIENT_PUBLIC)).unwrap();
        fs::copy(&alice, root.join("zz-copy.key")).unwrap();
        fs::write(root.join("notes.txt"), "not a certificate").unwrap();
        fs::write(root.join(".hidden.key"), "junk").unwrap();
        fs::create_dir(root.join("sub")).unwrap();
        fs::write(
            root.join("sub/server.key"),
            pyzmq_public_text(SERVER_PUBLIC),
        )
        .unwrap();
        write_broken(root, ".key");

        let load = load_directory(root, Layout::Pyzmq).unwrap();
        let alice_key = load_certificate(&alice).unwrap().public_key;
        let client_key = CurvePublicKey::from_z85(CLIENT_PUBLIC).unwrap();
        assert_eq!(load.store.len(), 2, "{:?}", load.rejected);
        assert!(load.store.holds(&client_key));
        // The public file carries the metadata too (pyzmq's own writer would drop it).
        let hello = Metadata::from_pairs([("Hello", "World")]).unwrap();
        assert_eq!(
            load.store.entry(&alice_key).map(|e| e.metadata),
            Some(&hello)
        );
        assert!(!load
            .store
            .holds(&CurvePublicKey::from_z85(SERVER_PUBLIC).unwrap()));
        check_broken(&load, ".key");
        let dup = load
            .rejected
            .iter()
            .find(|r| r.path.ends_with("zz-copy.key"))
            .unwrap();
        assert!(matches!(&dup.cause, FileError::DuplicateKey { key, first }
                if *key == alice_key && first == &alice));
        assert_eq!(load.rejected.len(), 8);
        let paths: Vec<_> = load.rejected.iter().map(|r| r.path.clone()).collect();
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted);
    }

    #[test]
    fn czmq_layout_is_recursive_and_carries_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let (alice, alice_secret) =
            create_certificates(root, "alice", &[("Hello", "World!")], Flavour::Czmq).unwrap();
        fs::create_dir_all(root.join("sub/deeper")).unwrap();
        let alice_cert = load_certificate(&alice).unwrap();
        fs::copy(&alice, root.join("sub/deeper/dup")).unwrap();
        fs::write(
            root.join("sub/client.txt"),
            pyzmq_public_text(CLIENT_PUBLIC),
        )
        .unwrap();
        fs::write(root.join("sub/ignored_secret"), "junk").unwrap();
        symlink(root, root.join("sub/loop")).unwrap();
        symlink(&alice, root.join("sub/link-to-alice")).unwrap();
        write_broken(&root.join("sub"), "");

        let load = load_directory(root, Layout::Czmq).unwrap();
        assert_eq!(load.store.len(), 2, "{:?}", load.rejected);
        let meta = load.store.entry(&alice_cert.public_key).unwrap().metadata;
        assert_eq!(meta.as_bytes(), b"\x05Hello\x00\x00\x00\x06World!");
        assert!(load
            .store
            .holds(&CurvePublicKey::from_z85(CLIENT_PUBLIC).unwrap()));
        check_broken(&load, "");
        // The secret file is never read, so no duplicate is reported for it; the copy in a
        // subdirectory and the symlink are duplicates of the first file in path order.
        assert!(load.rejected.iter().all(|r| r.path != alice_secret));
        let dups: Vec<_> = load
            .rejected
            .iter()
            .filter_map(|r| match &r.cause {
                FileError::DuplicateKey { first, .. } => Some((r.path.clone(), first.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            dups,
            [
                (root.join("sub/deeper/dup"), alice.clone()),
                (root.join("sub/link-to-alice"), alice.clone()),
            ]
        );
        assert_eq!(load.rejected.len(), 9);
    }

    #[test]
    fn missing_or_non_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        for layout in [Layout::Pyzmq, Layout::Czmq] {
            let err = load_directory(&missing, layout).unwrap_err();
            assert!(
                matches!(&err, CertError::File { path, cause: FileError::ListDirectory(_) }
                    if path == &missing)
            );
            assert!(err.to_string().contains("missing"));
        }
        let file = dir.path().join("file");
        fs::write(&file, "").unwrap();
        assert!(matches!(
            load_directory(&file, Layout::Czmq),
            Err(CertError::File {
                cause: FileError::NotADirectory,
                ..
            })
        ));
        let empty = load_directory(dir.path().join(""), Layout::Pyzmq).unwrap();
        assert!(empty.store.is_empty() && empty.rejected.is_empty());
    }

    #[test]
    fn parallel_load_matches_sequential_order() {
        let dir = tempfile::tempdir().unwrap();
        let text = pyzmq_public_text(CLIENT_PUBLIC);
        for i in 0..(PARALLEL_THRESHOLD * 2) {
            fs::write(dir.path().join(format!("{i:05}.key")), &text).unwrap();
        }
        let load = load_directory(dir.path(), Layout::Pyzmq).unwrap();
        assert_eq!(load.store.len(), 1);
        assert_eq!(load.rejected.len(), PARALLEL_THRESHOLD * 2 - 1);
        assert!(load.rejected.iter().all(|r| matches!(
            &r.cause,
            FileError::DuplicateKey { first, .. } if first.ends_with("00000.key")
        )));
    }

    /// Run with `cargo test --release --lib certs -- --ignored --nocapture`.
    #[test]
    #[ignore = "creates 100,000 files; a performance check"]
    fn hundred_thousand_files() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..100_000u32 {
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&i.to_be_bytes());
            let z85 = CurvePublicKey::from_bytes(key).to_z85();
            fs::write(
                dir.path().join(format!("c{i:06}.key")),
                pyzmq_public_text(&z85),
            )
            .unwrap();
        }
        let _ = load_directory(dir.path(), Layout::Pyzmq).unwrap(); // warm the cache
        let start = std::time::Instant::now();
        let load = load_directory(dir.path(), Layout::Czmq).unwrap();
        let elapsed = start.elapsed();
        println!("100,000 certificates loaded in {elapsed:?}");
        assert_eq!(load.store.len(), 100_000);
        if !cfg!(debug_assertions) {
            assert!(elapsed.as_secs_f64() < 2.0, "{elapsed:?}");
        }
    }
}
