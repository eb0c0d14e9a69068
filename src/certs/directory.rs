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
use walkdir::WalkDir;

/// The most entries (files, subdirectories, passed-over files) a certificate directory may
/// hold for [`load_directory`] and, unless [`Watch::max_entries`] says otherwise, a watch:
/// 4,194,304. A directory with more is refused whole ([`FileError::TooManyEntries`]), never
/// listed into memory.
///
/// [`Watch::max_entries`]: crate::messages::Watch::max_entries
pub const MAX_DIRECTORY_ENTRIES: usize = 1 << 22;
use crate::keys::CurvePublicKey;
use crate::zap::Metadata;

/// The log target: a public path, what a user looks up.
const LOG_TARGET: &str = "actix_zap::certs";

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

/// An entry of a certificate directory that its layout does not read — not a problem in
/// itself (unlike a [`RejectedFile`]), listed so that a program can tell which files were
/// left out, and why. Hidden entries (names starting with `.`) are skipped by both layouts
/// and not listed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SkippedFile {
    /// The file, subdirectory or link.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::serialize::path"))]
    pub path: PathBuf,
    /// Why the layout does not read it.
    pub reason: SkipReason,
}

/// Why a directory's [`Layout`] passed an entry over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
#[non_exhaustive]
pub enum SkipReason {
    /// A secret file (a name ending in `_secret`: pyzmq's `NAME.key_secret`, CZMQ's
    /// `NAME_secret`), which neither layout reads; expected beside certificates.
    SecretFile,
    /// A CZMQ certificate (`NAME.cert`) in a directory read in pyzmq's layout, which reads only
    /// `NAME.key` files: read the directory in [`Layout::Czmq`] to load it.
    CzmqCertificate,
    /// Named otherwise than the layout reads (in pyzmq's layout: not `NAME.key`).
    OtherLayout,
    /// A subdirectory (pyzmq's layout reads none; CZMQ's enters them), or a link to a
    /// directory (never followed: no loops).
    Directory,
    /// A FIFO, socket or device (or a link to one) under a name the layout does not read
    /// anyway (one under a name it reads is a [`RejectedFile`]).
    NotARegularFile,
}

impl SkipReason {
    /// Why, in words.
    pub const fn as_str(self) -> &'static str {
        match self {
            SkipReason::SecretFile => "a secret file (never loaded)",
            SkipReason::CzmqCertificate => {
                "a CZMQ certificate, not read in pyzmq's layout (NAME.key only): use the CZMQ layout"
            }
            SkipReason::OtherLayout => "not named NAME.key (pyzmq's layout)",
            SkipReason::Directory => "a directory (not read by this layout, links never followed)",
            SkipReason::NotARegularFile => "not a regular file",
        }
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of loading a directory: the keys to allow, the files that were refused and
/// those the layout passed over.
#[derive(Debug, Default)]
pub struct DirectoryLoad {
    /// One entry per valid certificate, with its metadata encoded for replies.
    pub store: CertStore,
    /// Every refused file, in path order.
    pub rejected: Vec<RejectedFile>,
    /// Every entry the layout did not read, with the reason, in path order (hidden ones
    /// excepted): secret files, CZMQ's `*.cert` in pyzmq's layout, other names,
    /// subdirectories pyzmq's layout does not enter, FIFOs under other names.
    pub skipped: Vec<SkippedFile>,
    /// Certificate files read that hold a secret key too, in path order (each logged at
    /// `warn`): their public key is used, but a secret key has no place in a directory of keys
    /// an authenticator trusts.
    pub with_secret_key: Vec<PathBuf>,
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
    /// Entries the layout does not read (hidden ones not listed), in path order.
    pub(crate) skipped: Vec<SkippedFile>,
}

/// Why `layout` passes over a non-hidden entry named `name` that is no directory, or `None`
/// when it reads it. `not_regular`: the entry (or a link's target) is known to be a FIFO,
/// socket or device.
fn skip_reason(layout: Layout, name: &[u8], not_regular: bool) -> Option<SkipReason> {
    let secret = name.ends_with(b"_secret");
    let wanted = match layout {
        Layout::Pyzmq => name.ends_with(b".key"),
        Layout::Czmq => !secret,
    };
    if wanted {
        None
    } else if secret {
        Some(SkipReason::SecretFile)
    } else if not_regular {
        Some(SkipReason::NotARegularFile)
    } else if name.ends_with(b".cert") {
        Some(SkipReason::CzmqCertificate)
    } else {
        Some(SkipReason::OtherLayout)
    }
}

/// Lists the candidate files under `dir` (with `walkdir`: pyzmq's layout one level deep,
/// CZMQ's recursively, hidden entries skipped, links to directories never followed); only a
/// failure to list `dir` itself is an error (its cause; the path is `dir`). FIFOs, sockets and
/// devices (and links to them) are never opened — a FIFO would block the reader — and are
/// reported in `rejected` when the layout would read them, in `skipped` otherwise.
pub(crate) fn candidates(
    dir: &Path,
    layout: Layout,
    max_entries: usize,
) -> Result<Candidates, FileError> {
    let top = fs::metadata(dir).map_err(FileError::ListDirectory)?;
    if !top.is_dir() {
        return Err(FileError::NotADirectory);
    }
    let depth = match layout {
        Layout::Pyzmq => 1,
        Layout::Czmq => usize::MAX,
    };
    // Directories entered: a bind mount can make a loop that no link shows.
    let mut visited = HashSet::from([(top.dev(), top.ino())]);
    let mut found = Candidates::default();
    let skip = |found: &mut Candidates, path: PathBuf, reason| {
        found.skipped.push(SkippedFile { path, reason });
    };
    // Hidden entries are skipped by both CZMQ (zdir) and pyzmq (glob); our own temporary
    // files are hidden too. (The filter sees `dir` itself too, whatever its name.)
    let mut walk = WalkDir::new(dir)
        .min_depth(1)
        .max_depth(depth)
        .into_iter()
        .filter_entry(|entry| {
            entry.depth() == 0 || !entry.file_name().as_bytes().starts_with(b".")
        });
    let mut entries_seen = 0usize;
    while let Some(entry) = walk.next() {
        // Counted before anything is kept: a directory of millions of entries is refused
        // whole, never read into memory.
        entries_seen += 1;
        if entries_seen > max_entries {
            return Err(FileError::TooManyEntries { limit: max_entries });
        }
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                let path = error.path().unwrap_or(dir).to_path_buf();
                let root = error.depth() == 0;
                let cause = error
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("a loop of directories"));
                if root {
                    return Err(FileError::ListDirectory(cause));
                }
                found.rejected.push(RejectedFile {
                    path,
                    cause: FileError::ListDirectory(cause),
                });
                continue;
            }
        };
        let kind = entry.file_type();
        let path = entry.into_path();
        if kind.is_dir() {
            match layout {
                Layout::Pyzmq => skip(&mut found, path, SkipReason::Directory),
                Layout::Czmq => match fs::metadata(&path) {
                    Ok(m) if visited.insert((m.dev(), m.ino())) => {}
                    Ok(_) => walk.skip_current_dir(),
                    Err(e) => {
                        walk.skip_current_dir();
                        found.rejected.push(RejectedFile {
                            path,
                            cause: FileError::ListDirectory(e),
                        });
                    }
                },
            }
            continue;
        }
        // A link is judged by its target; a dangling one is a file to read, so that reading
        // it reports the problem.
        let target = if kind.is_symlink() {
            fs::metadata(&path).ok().map(|m| m.file_type())
        } else {
            Some(kind)
        };
        if target.is_some_and(|t| t.is_dir()) {
            skip(&mut found, path, SkipReason::Directory);
            continue;
        }
        let not_regular = target.is_some_and(|t| !t.is_file());
        let name = path.file_name().map_or(&[][..], |name| name.as_bytes());
        if let Some(reason) = skip_reason(layout, name, not_regular) {
            skip(&mut found, path, reason);
        } else if not_regular {
            found.rejected.push(RejectedFile {
                path,
                cause: FileError::NotARegularFile,
            });
        } else {
            found.files.push(path);
        }
    }
    found.skipped.sort_unstable();
    Ok(found)
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
                        target: LOG_TARGET,
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
    let with_secret_key = (paths.iter().zip(&read))
        .filter(|(_, read)| matches!(read, Ok((_, _, true))))
        .map(|(path, _)| path.clone())
        .collect();
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
    let skipped = found.skipped;
    let warning = layout_warning(dir, layout, store.len(), rejected.len(), &skipped);
    for file in &rejected {
        log::warn!(
            target: LOG_TARGET,
            "certificates: refused {}: {}",
            file.path.display(),
            file.cause
        );
    }
    log::info!(
        target: LOG_TARGET,
        "certificates: loaded {} keys from {}, refused {} files",
        store.len(),
        dir.display(),
        rejected.len()
    );
    if let Some(warning) = &warning {
        log::warn!(target: LOG_TARGET, "certificates: {warning}");
    }
    Ok(DirectoryLoad {
        store,
        rejected,
        skipped,
        with_secret_key,
        warning,
    })
}

/// The most file names a warning lists.
const NAMED_IN_WARNING: usize = 10;

/// What a load says about the entries its layout passed over (`skipped`, from the listing),
/// if anything: a directory that holds entries but yielded no certificate at all names them
/// and says what the layout reads; in pyzmq's layout, files beside the `NAME.key` ones that
/// are neither `NAME.key` nor secret files (e.g. CZMQ's `*.cert`) are named too, so a mixed
/// directory does not lose them silently. Subdirectories are named (with a trailing `/`) only
/// in the first case.
pub(crate) fn layout_warning(
    dir: &Path,
    layout: Layout,
    keys: usize,
    rejected: usize,
    skipped: &[SkippedFile],
) -> Option<String> {
    let names = |files: &[&SkippedFile]| {
        let mut names: Vec<String> = files
            .iter()
            .take(NAMED_IN_WARNING)
            .map(|file| {
                let name = file.path.strip_prefix(dir).unwrap_or(&file.path).display();
                match file.reason {
                    SkipReason::Directory => format!("{name}/"),
                    _ => name.to_string(),
                }
            })
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
    if keys == 0 && rejected == 0 && !skipped.is_empty() {
        let all: Vec<&SkippedFile> = skipped.iter().collect();
        return Some(format!(
            "{} holds {} file(s) but no public certificate ({}): {expected}; no key is admitted",
            dir.display(),
            all.len(),
            names(&all)
        ));
    }
    let passed_over: Vec<&SkippedFile> = skipped
        .iter()
        .filter(|file| !matches!(file.reason, SkipReason::SecretFile | SkipReason::Directory))
        .collect();
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
    fn every_entry_a_layout_passes_over_is_listed_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let (alice, alice_secret) =
            create_certificates(root, "alice", &[], Flavour::Pyzmq).unwrap();
        let (bob, bob_secret) = create_certificates(root, "bob.cert", &[], Flavour::Czmq).unwrap();
        fs::write(root.join("notes.txt"), "not a certificate").unwrap();
        fs::write(root.join(".hidden"), "never listed").unwrap();
        // A socket: neither layout opens it (a FIFO would block a reader).
        let _socket = std::os::unix::net::UnixListener::bind(root.join("socket")).unwrap();
        fs::create_dir(root.join("sub")).unwrap();
        fs::write(root.join("sub/carol.key"), pyzmq_public_text(CLIENT_PUBLIC)).unwrap();
        symlink(root.join("sub"), root.join("link-to-sub")).unwrap();
        let listed = |load: &DirectoryLoad| -> Vec<(String, SkipReason)> {
            let name = |path: &Path| path.strip_prefix(root).unwrap().display().to_string();
            load.skipped
                .iter()
                .map(|s| (name(&s.path), s.reason))
                .collect()
        };
        let owned = |pairs: &[(&str, SkipReason)]| -> Vec<(String, SkipReason)> {
            pairs.iter().map(|(n, r)| (n.to_string(), *r)).collect()
        };
        assert!(bob.ends_with("bob.cert.key") && bob_secret.ends_with("bob.cert.key_secret"));
        // CZMQ's zmakecert names: NAME.cert and NAME.cert_secret.
        fs::rename(&bob, root.join("bob.cert")).unwrap();
        fs::rename(&bob_secret, root.join("bob.cert_secret")).unwrap();

        let pyzmq = load_directory(root, Layout::Pyzmq).unwrap();
        assert_eq!(pyzmq.store.len(), 1);
        assert!(pyzmq.rejected.is_empty(), "{:?}", pyzmq.rejected);
        use SkipReason::*;
        assert_eq!(
            listed(&pyzmq),
            owned(&[
                ("alice.key_secret", SecretFile),
                ("bob.cert", CzmqCertificate),
                ("bob.cert_secret", SecretFile),
                ("link-to-sub", Directory),
                ("notes.txt", OtherLayout),
                ("socket", NotARegularFile),
                ("sub", Directory),
            ])
        );
        assert!(alice_secret.ends_with("alice.key_secret") && alice.exists());
        let warning = pyzmq.warning.unwrap();
        assert!(
            warning
                .contains("3 file(s) not loaded, not named NAME.key (bob.cert, notes.txt, socket)"),
            "{warning}"
        );

        // CZMQ's layout reads every other file, and enters `sub`.
        let czmq = load_directory(root, Layout::Czmq).unwrap();
        assert_eq!(
            czmq.store.len(),
            3,
            "alice, bob, sub/carol: {:?}",
            czmq.rejected
        );
        let rejected: Vec<String> = czmq
            .rejected
            .iter()
            .map(|r| r.path.strip_prefix(root).unwrap().display().to_string())
            .collect();
        assert_eq!(rejected, ["notes.txt", "socket"]);
        assert_eq!(
            listed(&czmq),
            owned(&[
                ("alice.key_secret", SecretFile),
                ("bob.cert_secret", SecretFile),
                ("link-to-sub", Directory),
            ])
        );
        assert_eq!(czmq.warning, None);
    }

    #[test]
    fn a_certificate_that_holds_a_secret_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let (alice, alice_secret) =
            create_certificates(root, "alice", &[], Flavour::Pyzmq).unwrap();
        fs::copy(&alice_secret, root.join("bob.key")).unwrap();
        let load = load_directory(root, Layout::Pyzmq).unwrap();
        assert_eq!(load.with_secret_key, [root.join("bob.key")]);
        // The same key as alice.key: refused as a duplicate, but named all the same.
        assert_eq!(load.store.len(), 1);
        assert!(
            matches!(&load.rejected[0].cause, FileError::DuplicateKey { first, .. } if *first == alice)
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
        // Typed as the listing types them.
        let files = |names: &[&str]| -> Vec<SkippedFile> {
            names
                .iter()
                .map(|n| {
                    let (name, directory) = match n.strip_suffix('/') {
                        Some(name) => (name, true),
                        None => (*n, false),
                    };
                    let reason = match skip_reason(Layout::Pyzmq, name.as_bytes(), false) {
                        _ if directory => SkipReason::Directory,
                        Some(reason) => reason,
                        None => panic!("{name} is read"),
                    };
                    SkippedFile {
                        path: dir.join(name),
                        reason,
                    }
                })
                .collect()
        };
        let mixed = files(&["a.cert", "a.key_secret", "notes.txt", "sub/"]);
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
                "/certs holds 4 file(s) but no public certificate (a.cert, a.key_secret, \
                 notes.txt, sub/): pyzmq's layout"
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
        let many: Vec<String> = (0..12).map(|i| format!("{i:02}.cert")).collect();
        let many = files(&many.iter().map(String::as_str).collect::<Vec<_>>());
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
