//! The I/O side of a look: list the source, stamp each file, read the settled ones — on a
//! thread of its own that nobody waits for, so a read that hangs (an NFS stall) can neither
//! block the authenticator nor its shutdown (tokio's blocking pool would: runtime shutdown
//! waits for its tasks).

use crate::provider::{call_guarded, Panicked};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::oneshot;

use super::files::{Changes, Content, Files, Install, Kind, Listing, Stamp};
use super::{ReloadError, WatchSource};
use crate::certs::{candidates, parse_cert_file, CertError, FileError, MAX_CERTIFICATE_BYTES};
use crate::policy::PasswordTable;

/// Replaces file reads (tests make reads hang or panic with it).
pub(crate) type ReadHook = Arc<dyn Fn(&Path) -> std::io::Result<Vec<u8>> + Send + Sync>;

/// One look, handed to its thread with the watch's file state (so a watch has at most one
/// look outstanding: the state is away while it runs).
pub(crate) struct Look {
    pub(crate) source: WatchSource,
    pub(crate) files: Files,
    pub(crate) closed: BTreeSet<PathBuf>,
    pub(crate) settle: Duration,
    pub(crate) hook: Option<ReadHook>,
}

/// What a look brings back: the file state, and what to install if anything changed.
pub(crate) struct Looked {
    pub(crate) files: Files,
    pub(crate) install: Option<Install>,
}

/// Runs `look` on a new thread; the answer arrives on the receiver, or never (a hung read).
/// A panic arrives as `Err`.
pub(crate) fn spawn(look: Look) -> std::io::Result<oneshot::Receiver<Result<Looked, Panicked>>> {
    let (answer, answered) = oneshot::channel();
    std::thread::Builder::new()
        .name("zap-reload".into())
        .spawn(move || {
            let _ = answer.send(call_guarded(|| run(look)));
        })?;
    Ok(answered)
}

pub(crate) fn kind_of(source: &WatchSource) -> Kind {
    match source {
        WatchSource::CurveDirectory { .. } => Kind::Curve,
        WatchSource::PlainFile { .. } => Kind::Plain,
    }
}

/// Lists, compares, reads what settled: the whole look, blocking.
pub(crate) fn run(look: Look) -> Looked {
    let Look {
        source,
        mut files,
        closed,
        settle,
        hook,
    } = look;
    let kind = kind_of(&source);
    let listing = list(&source, hook.as_ref());
    let stamps = match &listing {
        Listing::Files { files, .. } => files.clone(),
        Listing::Unreadable(_) => BTreeMap::new(),
    };
    let changes: Changes = match files.observe(listing, &closed, Instant::now(), settle) {
        Ok(changes) => changes,
        Err(error) => {
            let install = files.fail(&error).then(|| Install::refuse_all(kind, error));
            return Looked { files, install };
        }
    };
    if changes.is_empty() {
        return Looked {
            files,
            install: None,
        };
    }
    let read: Vec<_> = changes
        .read
        .iter()
        .filter_map(|path| {
            let listed = stamps[path];
            let content = read(kind, path, listed, hook.as_ref())?;
            Some((path.clone(), listed, content))
        })
        .collect();
    files.apply(&changes, read);
    let install = Some(files.install(kind, source.path()));
    Looked { files, install }
}

/// Every file of the source with its stamp. A password file is read to hash its content.
fn list(source: &WatchSource, hook: Option<&ReadHook>) -> Listing {
    match source {
        WatchSource::CurveDirectory { path, layout } => {
            let mut rejected = Vec::new();
            let paths = match candidates(path, *layout, &mut rejected) {
                Ok(paths) => paths,
                Err(CertError::File { path, cause }) => {
                    let cause = cause.to_string();
                    return Listing::Unreadable(ReloadError::Unreadable { path, cause });
                }
                Err(error) => {
                    let (path, cause) = (path.clone(), error.to_string());
                    return Listing::Unreadable(ReloadError::Unreadable { path, cause });
                }
            };
            let mut skipped: Vec<ReloadError> = rejected
                .into_iter()
                .map(|r| match r.cause {
                    FileError::ListDirectory(_) | FileError::Read(_) => ReloadError::Unreadable {
                        path: r.path,
                        cause: r.cause.to_string(),
                    },
                    _ => ReloadError::InvalidFile {
                        path: r.path,
                        cause: r.cause.to_string(),
                    },
                })
                .collect();
            let mut files = BTreeMap::new();
            for path in paths {
                // Follows links to files, like the read will.
                match std::fs::metadata(&path) {
                    Ok(meta) if meta.is_file() => {
                        files.insert(path, Stamp::of(&meta, None));
                    }
                    Ok(_) => skipped.push(ReloadError::InvalidFile {
                        path,
                        cause: FileError::NotARegularFile.to_string(),
                    }),
                    Err(error) => skipped.push(ReloadError::Unreadable {
                        path,
                        cause: format!("cannot read: {error}"),
                    }),
                }
            }
            skipped.sort_by_cached_key(ToString::to_string);
            Listing::Files { files, skipped }
        }
        WatchSource::PlainFile { path } => match read_regular(path, None, hook) {
            Ok(read) => Listing::Files {
                files: BTreeMap::from([(path.clone(), Stamp::of(&read.opened, Some(&read.bytes)))]),
                skipped: Vec::new(),
            },
            Err(cause) => Listing::Unreadable(ReloadError::Unreadable {
                path: path.clone(),
                cause,
            }),
        },
    }
}

/// Reads a file the listing chose. `None` if it is no longer the version listed, or changed
/// while being read (a writer is at work): it stays unsettled, and keeps its previous
/// content until it settles, rather than being installed half-written.
fn read(kind: Kind, path: &Path, listed: Stamp, hook: Option<&ReadHook>) -> Option<Content> {
    let limit = (kind == Kind::Curve).then_some(MAX_CERTIFICATE_BYTES);
    let bytes = match read_regular(path, limit, hook) {
        Ok(Steady {
            opened,
            bytes,
            steady,
        }) => {
            let hashed = listed.content.is_some().then_some(&bytes[..]);
            if !steady || Stamp::of(&opened, hashed) != listed {
                return None;
            }
            Ok(bytes)
        }
        Err(error) => Err(error),
    };
    Some(match kind {
        Kind::Curve => Content::Cert(
            bytes.and_then(|bytes| parse_cert_file(&bytes).map_err(|e| e.to_string())),
        ),
        Kind::Plain => Content::Passwords(bytes.and_then(|bytes| {
            String::from_utf8(bytes)
                .map(|text| PasswordTable::parse_password_file(&text))
                .map_err(|_| "not valid UTF-8".to_owned())
        })),
    })
}

/// A file's content with its metadata when opened, and whether it was unchanged by the end
/// of the read.
struct Steady {
    opened: std::fs::Metadata,
    bytes: Vec<u8>,
    steady: bool,
}

/// Reads a regular file, refusing anything else. The file is opened without blocking and
/// checked after opening, so a FIFO swapped in after the listing is refused, never waited on.
fn read_regular(
    path: &Path,
    limit: Option<u64>,
    hook: Option<&ReadHook>,
) -> Result<Steady, String> {
    let cannot = |e: std::io::Error| format!("cannot read: {e}");
    if let Some(hook) = hook {
        let opened = std::fs::metadata(path).map_err(cannot)?;
        let bytes = hook(path).map_err(cannot)?;
        let after = std::fs::metadata(path).map_err(cannot)?;
        let steady = Stamp::of(&opened, None) == Stamp::of(&after, None);
        return Ok(Steady {
            opened,
            bytes,
            steady,
        });
    }
    let mut file: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(cannot)?;
    let opened = file.metadata().map_err(cannot)?;
    if !opened.is_file() {
        return Err("not a regular file; skipped".to_owned());
    }
    let mut bytes = Vec::with_capacity(opened.len().min(1 << 20) as usize);
    let cap = limit.map_or(u64::MAX, |limit| limit + 1);
    (&mut file)
        .take(cap)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if let Some(limit) = limit {
        if bytes.len() as u64 > limit {
            return Err(format!("larger than {limit} bytes, not a certificate"));
        }
    }
    let after = file.metadata().map_err(cannot)?;
    let steady = Stamp::of(&opened, None) == Stamp::of(&after, None);
    Ok(Steady {
        opened,
        bytes,
        steady,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::Layout;

    fn look(source: &WatchSource, files: Files) -> Looked {
        run(Look {
            source: source.clone(),
            files,
            closed: BTreeSet::new(),
            settle: Duration::from_secs(3600),
            hook: None,
        })
    }

    #[test]
    fn unreadable_sources_install_refuse_all_with_an_error() {
        for source in [
            WatchSource::PlainFile {
                path: "/nonexistent/pw".into(),
            },
            WatchSource::CurveDirectory {
                path: "/nonexistent/dir".into(),
                layout: Layout::Pyzmq,
            },
        ] {
            let looked = look(&source, Files::default());
            let install = looked.install.unwrap();
            assert_eq!(install.entries, 0);
            assert!(install.error.unwrap().to_string().contains("/nonexistent/"));
            // The same failure again is not news.
            assert!(look(&source, looked.files).install.is_none());
        }
    }

    #[test]
    fn fifos_are_reported_and_never_opened() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pw");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let source = WatchSource::PlainFile { path: fifo.clone() };
        let install = look(&source, Files::default()).install.unwrap();
        assert!(install
            .error
            .unwrap()
            .to_string()
            .contains("not a regular file"));
        std::fs::rename(&fifo, dir.path().join("x.key")).unwrap();
        let source = WatchSource::CurveDirectory {
            path: dir.path().into(),
            layout: Layout::Pyzmq,
        };
        let install = look(&source, Files::default()).install.unwrap();
        assert_eq!(install.entries, 0);
        assert!(
            install.rejected[0]
                .to_string()
                .contains("not a regular file"),
            "{:?}",
            install.rejected
        );
    }

    #[test]
    fn a_file_that_is_not_the_version_listed_is_left_unsettled() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.key");
        std::fs::write(&file, "first").unwrap();
        let listed = Stamp::of(&std::fs::metadata(&file).unwrap(), None);
        assert!(read(Kind::Curve, &file, listed, None).is_some());
        std::fs::write(&file, "second, longer").unwrap();
        assert!(read(Kind::Curve, &file, listed, None).is_none());
    }

    #[test]
    fn a_same_size_rewrite_with_the_mtime_restored_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "admin=one\n").unwrap();
        let source = WatchSource::PlainFile { path: file.clone() };
        let looked = look(&source, Files::default());
        assert_eq!(looked.install.unwrap().entries, 1);
        let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
        std::fs::write(&file, "admin=two\n").unwrap();
        File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let mut closed = BTreeSet::new();
        closed.insert(file.clone());
        let looked = run(Look {
            source,
            files: looked.files,
            closed,
            settle: Duration::from_secs(3600),
            hook: None,
        });
        let install = looked.install.expect("the rewrite is seen");
        let super::super::files::Config::Plain(table) = install.config else {
            panic!()
        };
        assert_eq!(
            table.check(b"admin", b"two"),
            crate::policy::PasswordCheck::Valid
        );
    }
}
