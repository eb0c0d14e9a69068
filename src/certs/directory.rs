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
use super::reading::{in_parallel, read_certificate, ReadHook};
use super::{CertError, CertStore, FileError};

/// The most entries (files, subdirectories, passed-over files) a certificate directory may
/// hold for [`load_directory`] and, unless [`Watch::max_entries`] says otherwise, a watch:
/// 4,194,304. A directory with more is refused whole ([`FileError::TooManyEntries`]), never
/// listed into memory.
///
/// [`Watch::max_entries`]: crate::messages::Watch::max_entries
pub const MAX_DIRECTORY_ENTRIES: usize = 1 << 22;
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
    /// Names the files the layout passed over, and why: set when the directory holds files
    /// but none is a certificate in the layout asked for (e.g. CZMQ's `*.cert` files read in
    /// pyzmq's layout, which takes only `*.key`: no key is admitted, and this says why instead
    /// of an empty set passing silently), and, in pyzmq's layout, when files beside the
    /// `NAME.key` ones are neither `NAME.key` nor secret files (e.g. `*.cert` files in a mixed
    /// directory).
    pub warning: Option<String>,
}

/// What reading one certificate file yields: its key, its metadata, and whether it holds a
/// secret key.
pub(crate) type CertFile = Result<(CurvePublicKey, Metadata, bool), FileError>;

/// Parses one certificate file's bytes (the reader reads files itself, then parses here).
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

impl RejectedFile {
    /// The same rejection, for a report made again from what a watch holds.
    pub(crate) fn duplicate(&self) -> RejectedFile {
        RejectedFile {
            path: self.path.clone(),
            cause: self.cause.duplicate(),
        }
    }
}

/// What listing a directory found.
#[derive(Debug, Default)]
pub(crate) struct Candidates {
    /// The files to read (links to files included).
    pub(crate) files: Vec<PathBuf>,
    /// Files that will not be read, each with its cause (FIFOs and other non-regular files,
    /// unlistable subdirectories).
    pub(crate) rejected: Vec<RejectedFile>,
    /// Files the layout does not read (secret files included; hidden files and directories
    /// not), for the report's warning.
    pub(crate) ignored: Vec<PathBuf>,
}

/// Lists the candidate files under `dir`; only a failure to list `dir` itself is an error
/// (its cause; the path is `dir`). FIFOs, sockets and devices (and links to them) are never
/// opened — a FIFO would block the reader — and are reported in `rejected`.
pub(crate) fn candidates(
    dir: &Path,
    layout: Layout,
    max_entries: usize,
) -> Result<Candidates, FileError> {
    let top = fs::metadata(dir).map_err(FileError::ListDirectory)?;
    if !top.is_dir() {
        return Err(FileError::NotADirectory);
    }
    let mut visited = HashSet::from([(top.dev(), top.ino())]);
    let mut entries_seen = 0usize;
    let mut pending = vec![dir.to_path_buf()];
    let Candidates {
        mut files,
        mut rejected,
        mut ignored,
    } = Candidates::default();
    while let Some(current) = pending.pop() {
        let entries = match fs::read_dir(&current) {
            Ok(entries) => entries,
            Err(e) if current == dir => return Err(FileError::ListDirectory(e)),
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
            // Counted before anything is kept: a directory of millions of entries is refused
            // whole, never read into memory.
            entries_seen += 1;
            if entries_seen > max_entries {
                return Err(FileError::TooManyEntries { limit: max_entries });
            }
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
                // A link to a directory is no file the layout passed over.
                if !(kind.is_symlink() && fs::metadata(&path).is_ok_and(|m| m.is_dir())) {
                    ignored.push(path);
                }
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
    ignored.sort_unstable();
    Ok(Candidates {
        files,
        rejected,
        ignored,
    })
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
/// followed, links to directories are not. Files are read the way a
/// [`Watch`](crate::messages::Watch) reads them, by the same reader: opened without blocking and
/// refused unless they are regular files (a FIFO is named, never waited on), at most
/// [`MAX_CERTIFICATE_BYTES`](super::MAX_CERTIFICATE_BYTES) each, and a file that changes while
/// it is read is refused rather than loaded half-written. Each refused file is logged at
/// `warn`; so is the [`warning`](DirectoryLoad::warning) naming the files the layout passed over.
///
/// Fails only when `dir` is missing, not a directory, or cannot be listed. It blocks the
/// calling thread until every file is read; [`ConfigureCurve`](crate::messages::ConfigureCurve)
/// reads a directory on a thread of its own, under a deadline.
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
    read_directory(dir.as_ref(), layout, None)
}

/// [`load_directory`], with the reads replaced by `hook` in tests. What a watch's first look
/// finds in the same directory, file for file: the same listing ([`candidates`]), the same
/// reads ([`read_regular`]); a file that changed while it was read is refused
/// ([`FileError::Changing`]), never loaded half-written.
pub(crate) fn read_directory(
    dir: &Path,
    layout: Layout,
    hook: Option<&ReadHook>,
) -> Result<DirectoryLoad, CertError> {
    let found = candidates(dir, layout, MAX_DIRECTORY_ENTRIES)
        .map_err(|cause| CertError::file(dir, cause))?;
    let mut paths = found.files;
    paths.sort_unstable_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
    let read = in_parallel(&paths, |path| {
        let read = read_certificate(path, hook)?;
        if !read.steady {
            return Err(FileError::Changing);
        }
        parse_cert_file(&read.bytes)
    });
    let (store, refused) = assemble(dir, paths.into_iter().zip(read), |key, first| {
        FileError::DuplicateKey { key, first }
    });
    let mut rejected = found.rejected;
    rejected.extend(
        refused
            .into_iter()
            .map(|(path, cause)| RejectedFile { path, cause }),
    );
    rejected.sort_by_cached_key(|r| (r.path.clone(), r.cause.to_string()));
    let warning = layout_warning(dir, layout, store.len(), rejected.len(), &found.ignored);
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
    if let Some(warning) = &warning {
        log::warn!("certificates: {warning}");
    }
    Ok(DirectoryLoad {
        store,
        rejected,
        warning,
    })
}

/// The most file names a warning lists.
const NAMED_IN_WARNING: usize = 10;

/// What a load says about the files its layout passed over (`ignored`, from the listing), if
/// anything: a directory that holds files but yielded no certificate at all names them and
/// says what the layout reads; in pyzmq's layout, files beside the `NAME.key` ones that are
/// neither `NAME.key` nor secret files (e.g. CZMQ's `*.cert`) are named too, so a mixed
/// directory does not lose them silently.
pub(crate) fn layout_warning(
    dir: &Path,
    layout: Layout,
    keys: usize,
    rejected: usize,
    ignored: &[PathBuf],
) -> Option<String> {
    let names = |files: &[&PathBuf]| {
        let mut names: Vec<String> = files
            .iter()
            .take(NAMED_IN_WARNING)
            .map(|path| path.strip_prefix(dir).unwrap_or(path).display().to_string())
            .collect();
        if files.len() > NAMED_IN_WARNING {
            names.push(format!("and {} more", files.len() - NAMED_IN_WARNING));
        }
        names.join(", ")
    };
    let pyzmq = "pyzmq's layout reads only NAME.key files directly in it; for a CZMQ \
                 certificate store (any file name, subdirectories) use the CZMQ layout";
    let expected = match layout {
        Layout::Pyzmq => pyzmq,
        Layout::Czmq => "CZMQ's layout skips every NAME_secret file",
    };
    if keys == 0 && rejected == 0 && !ignored.is_empty() {
        let all: Vec<&PathBuf> = ignored.iter().collect();
        return Some(format!(
            "{} holds {} file(s) but no public certificate ({}): {expected}; no key is admitted",
            dir.display(),
            all.len(),
            names(&all)
        ));
    }
    let secret = |path: &&PathBuf| {
        path.file_name()
            .is_some_and(|name| name.as_bytes().ends_with(b"_secret"))
    };
    let passed_over: Vec<&PathBuf> = ignored.iter().filter(|path| !secret(path)).collect();
    if passed_over.is_empty() {
        return None;
    }
    Some(format!(
        "{}: {} file(s) not loaded, not named NAME.key ({}): {expected}",
        dir.display(),
        passed_over.len(),
        names(&passed_over)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::certificate::tests::{pyzmq_public_text, CLIENT_PUBLIC, SERVER_PUBLIC};
    use crate::certs::reading::PARALLEL_THRESHOLD;
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
        // The file beside the certificates is named; alice's secret file is expected there.
        let warning = load.warning.as_deref().unwrap_or_default();
        assert!(
            warning.contains("1 file(s) not loaded, not named NAME.key (notes.txt)"),
            "{warning}"
        );
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
        assert_eq!(
            load.warning, None,
            "secret files are expected in a CZMQ store"
        );
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

    #[test]
    fn the_warning_names_the_files_the_layout_passed_over() {
        let dir = Path::new("/certs");
        let files =
            |names: &[&str]| -> Vec<PathBuf> { names.iter().map(|n| dir.join(n)).collect() };
        let mixed = files(&["a.cert", "a.key_secret", "notes.txt"]);
        assert_eq!(
            layout_warning(dir, Layout::Pyzmq, 1, 0, &mixed).as_deref(),
            Some(
                "/certs: 2 file(s) not loaded, not named NAME.key (a.cert, notes.txt): pyzmq's \
                 layout reads only NAME.key files directly in it; for a CZMQ certificate store \
                 (any file name, subdirectories) use the CZMQ layout"
            )
        );
        // Broken files alone do not make the directory empty of certificates.
        assert!(layout_warning(dir, Layout::Pyzmq, 0, 1, &mixed)
            .unwrap()
            .contains("2 file(s) not loaded"));
        let zero = layout_warning(dir, Layout::Pyzmq, 0, 0, &mixed).unwrap();
        assert!(
            zero.starts_with(
                "/certs holds 3 file(s) but no public certificate (a.cert, a.key_secret, \
                 notes.txt): pyzmq's layout"
            ),
            "{zero}"
        );
        // Secret files are expected beside certificates: named only when nothing else is.
        let secrets = files(&["a.key_secret", "sub/b_secret"]);
        assert_eq!(layout_warning(dir, Layout::Pyzmq, 1, 0, &secrets), None);
        assert_eq!(layout_warning(dir, Layout::Czmq, 1, 0, &secrets), None);
        let zero = layout_warning(dir, Layout::Czmq, 0, 0, &secrets).unwrap();
        assert!(
            zero.contains("(a.key_secret, sub/b_secret): CZMQ's layout skips every NAME_secret"),
            "{zero}"
        );
        assert_eq!(layout_warning(dir, Layout::Pyzmq, 0, 0, &[]), None);
        let many: Vec<PathBuf> = (0..12).map(|i| dir.join(format!("{i:02}.cert"))).collect();
        let warning = layout_warning(dir, Layout::Pyzmq, 0, 0, &many).unwrap();
        assert!(warning.contains("(00.cert, 01.cert,"), "{warning}");
        assert!(warning.contains("09.cert, and 2 more)"), "{warning}");
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
