//! A watch's look: list the source, stamp each file, read the settled ones — with the one file
//! reader of `certs` ([`read_regular`], [`candidates`]), which
//! [`load_directory`](crate::certs::load_directory) and a `ConfigureCurve` of a directory use
//! too. Off the actix thread a look (and such a load) runs on a thread of its own that nobody
//! waits for, so a read that hangs (an NFS stall) can neither
//! block the authenticator nor its shutdown (tokio's blocking pool would: runtime shutdown
//! waits for its tasks); the caller holds the deadline.

use crate::provider::{call_guarded, Panicked};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use futures::channel::oneshot;

use super::files::{Changes, Content, Failure, Files, Install, Kind, Listing, Skipped};
use crate::certs::{
    candidates, in_parallel, layout_warning, parse_cert_file, read_certificate, read_directory,
    read_regular, CertError, DirectoryLoad, FileError, Layout, ReadHook, RejectedFile, Stamp,
    Steady,
};
use crate::messages::error::ReloadError;
use crate::messages::watch::WatchSource;
use crate::policy::PasswordTable;

/// One look, handed to its thread with the watch's file state (so a watch has at most one
/// look outstanding: the state is away while it runs).
pub(crate) struct Look {
    pub(crate) source: WatchSource,
    pub(crate) files: Files,
    pub(crate) closed: BTreeSet<PathBuf>,
    pub(crate) settle: Duration,
    pub(crate) hook: Option<ReadHook>,
    pub(crate) limits: Limits,
}

/// What a look reads at most: the bytes of a password file, the entries of a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) file_bytes: u64,
    pub(crate) entries: usize,
}

/// What a look brings back: the file state, and what to install if anything changed.
pub(crate) struct Looked {
    pub(crate) files: Files,
    pub(crate) install: Option<Install>,
}

/// Runs `job` on a new thread that nobody joins; the answer arrives on the receiver, or never
/// (a hung read). A panic arrives as `Err`.
fn detached<T: Send + 'static>(
    name: &str,
    job: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<oneshot::Receiver<Result<T, Panicked>>> {
    let (answer, answered) = oneshot::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _ = answer.send(call_guarded(job));
        })?;
    Ok(answered)
}

/// Runs `look` on a new thread; the answer arrives on the receiver, or never (a hung read).
/// A panic arrives as `Err`.
pub(crate) fn spawn(look: Look) -> std::io::Result<oneshot::Receiver<Result<Looked, Panicked>>> {
    detached("zap-reload", move || run(look))
}

pub(crate) fn kind_of(source: &WatchSource) -> Kind {
    match source {
        WatchSource::CurveDirectory { .. } => Kind::Curve,
        WatchSource::PlainFile { .. } => Kind::Plain,
    }
}

/// [`read_directory`] on a thread of its own, within `deadline`. Past it the caller gets
/// [`ReloadError::TimedOut`] and the thread is left behind, waited for by nobody; a panic is
/// [`ReloadError::Panicked`], a thread that cannot start [`ReloadError::NoThread`].
pub(crate) async fn load_directory_within(
    dir: PathBuf,
    layout: Layout,
    hook: Option<ReadHook>,
    deadline: Duration,
) -> Result<Result<DirectoryLoad, CertError>, ReloadError> {
    let path = dir.clone();
    let answered = detached("zap-load-certs", move || {
        read_directory(&dir, layout, hook.as_ref())
    })
    .map_err(|error| ReloadError::NoThread {
        cause: error.to_string(),
    })?;
    match tokio::time::timeout(deadline, answered).await {
        Ok(Ok(Ok(loaded))) => Ok(loaded),
        // A panic, or (never seen) a thread that ended without answering.
        Ok(Ok(Err(Panicked))) | Ok(Err(oneshot::Canceled)) => Err(ReloadError::Panicked { path }),
        Err(_) => Err(ReloadError::TimedOut { path, deadline }),
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
        limits,
    } = look;
    let kind = kind_of(&source);
    let first = !files.loaded();
    let started = SystemTime::now();
    let (listing, hashed) = list(&source, hook.as_ref(), limits, &files);
    let observed = files.observe(listing, &closed, Instant::now(), settle);
    if let Some(listed) = hashed {
        files.confirm(source.path(), listed, started);
    }
    let mut changes: Changes = match observed {
        Ok(changes) => changes,
        Err(error) => {
            let news = files.fail(&error);
            let install = news.then(|| Install::refuse_all(kind, error));
            return Looked { files, install };
        }
    };
    if changes.is_empty() {
        return Looked {
            files,
            install: None,
        };
    }
    let chosen = std::mem::take(&mut changes.read);
    let read = read_all(kind, chosen, hook.as_ref(), limits, first);
    files.apply(&changes, read);
    if let Some(listed) = hashed {
        files.confirm(source.path(), listed, started);
    }
    let mut install = files.install(kind, source.path());
    if let WatchSource::CurveDirectory { path, layout } = &source {
        let (keys, rejected) = (install.entries, install.rejected.len());
        install.warning = layout_warning(path, *layout, keys, rejected, files.ignored());
    }
    Looked {
        files,
        install: Some(install),
    }
}

/// Reads the chosen files (see [`in_parallel`]); the results are in the order chosen.
fn read_all(
    kind: Kind,
    chosen: Vec<(PathBuf, Stamp)>,
    hook: Option<&ReadHook>,
    limits: Limits,
    first: bool,
) -> Vec<(PathBuf, Stamp, Content)> {
    let contents = in_parallel(&chosen, |(path, listed)| {
        read(kind, path, *listed, hook, limits, first)
    });
    chosen
        .into_iter()
        .zip(contents)
        .filter_map(|((path, listed), content)| Some((path, listed, content?)))
        .collect()
}

/// Every file of the source with its stamp. A password file is read to hash its content
/// (then its stamp is also returned), unless what is held shows it cannot have changed
/// ([`Files::clean`]).
fn list(
    source: &WatchSource,
    hook: Option<&ReadHook>,
    limits: Limits,
    held: &Files,
) -> (Listing, Option<Stamp>) {
    match source {
        WatchSource::CurveDirectory { path, layout } => {
            let found = match candidates(path, *layout, limits.entries) {
                Ok(found) => found,
                Err(cause) => {
                    let path = path.clone();
                    return (
                        Listing::Unreadable(Failure::Unreadable { path, cause }),
                        None,
                    );
                }
            };
            let mut rejected = found.rejected;
            let mut paths = found.files;
            // Byte order is path order within a directory, and nearly so across them: the map
            // is then built in one go, not file by file.
            paths.sort_unstable_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
            // Follows links to files, like the read will.
            let stamped = in_parallel(&paths, |path| std::fs::metadata(path));
            let mut files = Vec::with_capacity(paths.len());
            for (path, stamped) in paths.into_iter().zip(stamped) {
                match stamped {
                    Ok(meta) if meta.is_file() => files.push((path, Stamp::of(&meta, None))),
                    Ok(_) => rejected.push(RejectedFile {
                        path,
                        cause: FileError::NotARegularFile,
                    }),
                    Err(error) => rejected.push(RejectedFile {
                        path,
                        cause: FileError::Read(error),
                    }),
                }
            }
            let files: BTreeMap<PathBuf, Stamp> = files.into_iter().collect();
            rejected.sort_by_cached_key(|r| (r.path.clone(), r.cause.to_string()));
            let ignored = found.skipped;
            let skipped = Skipped { rejected, ignored };
            (Listing::Files { files, skipped }, None)
        }
        WatchSource::PlainFile { path } => {
            let single = |stamp| Listing::Files {
                files: BTreeMap::from([(path.clone(), stamp)]),
                skipped: Skipped::default(),
            };
            let current = std::fs::metadata(path).map(|meta| Stamp::of(&meta, None));
            if let Some(clean) = current.ok().and_then(|now| held.clean(path, now)) {
                return (single(clean), None);
            }
            match read_regular(path, Some(limits.file_bytes), hook) {
                Ok(read) => {
                    let stamp = Stamp::of(&read.opened, Some(&read.bytes));
                    (single(stamp), Some(stamp))
                }
                Err(cause) => {
                    let path = path.clone();
                    (
                        Listing::Unreadable(Failure::Unreadable { path, cause }),
                        None,
                    )
                }
            }
        }
    }
}

/// Reads a file the listing chose. A file that is not the version listed, or changed while
/// being read (a writer is at work), is never installed half-written: a watch that holds
/// files leaves it unsettled (`None`: it keeps its previous content until it settles); a
/// `first` look, which holds nothing, takes a version read whole, and names a file that
/// changed during its read as [`FileError::Changing`].
fn read(
    kind: Kind,
    path: &Path,
    listed: Stamp,
    hook: Option<&ReadHook>,
    limits: Limits,
    first: bool,
) -> Option<Content> {
    let read = match kind {
        Kind::Curve => read_certificate(path, hook),
        Kind::Plain => read_regular(path, Some(limits.file_bytes), hook),
    };
    let bytes = match read {
        Ok(Steady {
            opened,
            bytes,
            steady,
        }) => {
            let hashed = listed.content.is_some().then_some(&bytes[..]);
            if steady && Stamp::of(&opened, hashed) == listed {
                Ok(bytes)
            } else if !first {
                return None;
            } else if steady {
                Ok(bytes)
            } else {
                Err(FileError::Changing)
            }
        }
        Err(error) => Err(error),
    };
    Some(match kind {
        Kind::Curve => Content::Cert(bytes.and_then(|bytes| parse_cert_file(&bytes))),
        Kind::Plain => {
            Content::Passwords(bytes.map_err(|error| error.to_string()).and_then(|bytes| {
                String::from_utf8(bytes)
                    .map(|text| PasswordTable::parse_password_file_refusing(&text))
                    .map_err(|_| "not valid UTF-8".to_owned())
            }))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        file_bytes: 64 << 20,
        entries: 1 << 22,
    };

    #[test]
    fn a_password_file_over_its_cap_and_a_directory_over_its_entries_are_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("passwords");
        std::fs::write(&file, "admin=secret\n".repeat(100)).unwrap();
        let reads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = std::sync::Arc::clone(&reads);
        let hook: ReadHook = std::sync::Arc::new(move |path: &Path| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::fs::read(path)
        });
        let small = Limits {
            file_bytes: 100,
            entries: 3,
        };
        let looked = run(Look {
            source: WatchSource::PlainFile { path: file.clone() },
            files: Files::default(),
            closed: BTreeSet::new(),
            settle: Duration::ZERO,
            hook: Some(hook),
            limits: small,
        });
        let error = looked.install.unwrap().error.unwrap().report();
        assert_eq!(
            error,
            ReloadError::TooLarge {
                path: file,
                size: 1300,
                limit: 100
            }
        );
        assert!(error.to_string().contains("1300 bytes"), "{error}");
        assert_eq!(
            reads.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "read anyway"
        );

        let certs = dir.path().join("certs");
        std::fs::create_dir(&certs).unwrap();
        for n in 0..4 {
            std::fs::write(certs.join(format!("{n}.key")), "").unwrap();
        }
        let source = WatchSource::CurveDirectory {
            path: certs.clone(),
            layout: Layout::Pyzmq,
        };
        let looked = run(Look {
            source,
            files: Files::default(),
            closed: BTreeSet::new(),
            settle: Duration::ZERO,
            hook: None,
            limits: small,
        });
        let error = looked.install.unwrap().error.unwrap().report();
        assert_eq!(
            error,
            ReloadError::TooManyEntries {
                path: certs,
                limit: 3
            }
        );
    }
    use crate::certs::Layout;
    use std::sync::Arc;

    fn look(source: &WatchSource, files: Files) -> Looked {
        run(Look {
            source: source.clone(),
            files,
            closed: BTreeSet::new(),
            settle: Duration::from_secs(3600),
            limits: LIMITS,
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
            let error = install.error.unwrap().report();
            assert!(error.to_string().contains("/nonexistent/"), "{error}");
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
        assert!(matches!(
            install.error,
            Some(Failure::Unreadable { ref path, cause: FileError::NotARegularFile }) if *path == fifo
        ));
        std::fs::rename(&fifo, dir.path().join("x.key")).unwrap();
        let source = WatchSource::CurveDirectory {
            path: dir.path().into(),
            layout: Layout::Pyzmq,
        };
        let install = look(&source, Files::default()).install.unwrap();
        assert_eq!(install.entries, 0);
        assert!(
            matches!(&install.rejected[..], [RejectedFile { path, cause: FileError::NotARegularFile }]
                if path.ends_with("x.key")),
            "{:?}",
            install.rejected
        );
        let reported = super::super::files::reported(&install.rejected[0]);
        assert!(
            reported.to_string().contains("not a regular file"),
            "{reported}"
        );
    }

    #[test]
    fn a_fifo_swapped_in_after_the_listing_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.key");
        std::fs::write(&file, "listed as a regular file").unwrap();
        let listed = Stamp::of(&std::fs::metadata(&file).unwrap(), None);
        std::fs::remove_file(&file).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(&file)
            .status()
            .unwrap();
        assert!(made.success());
        // Opened without blocking (no writer will ever come), then refused.
        for first in [true, false] {
            let content = read(Kind::Curve, &file, listed, None, LIMITS, first);
            assert!(
                matches!(
                    content,
                    Some(Content::Cert(Err(FileError::NotARegularFile)))
                ),
                "{content:?}"
            );
        }
    }

    #[test]
    fn a_first_look_takes_a_whole_read_and_names_a_file_that_changed_while_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.key");
        std::fs::write(&file, "first").unwrap();
        let listed = Stamp::of(&std::fs::metadata(&file).unwrap(), None);
        // Replaced after the listing, read whole: a first look takes it (a watch would wait).
        std::fs::write(&file, "second, longer").unwrap();
        let content = read(Kind::Curve, &file, listed, None, LIMITS, true);
        assert!(
            matches!(content, Some(Content::Cert(Err(FileError::Certificate(_))))),
            "{content:?}"
        );
        // Written to during the read: named, never parsed half-written.
        let busy: ReadHook = Arc::new(|path: &Path| {
            let bytes = std::fs::read(path)?;
            std::fs::write(path, "a writer is at work, the file grows")?;
            Ok(bytes)
        });
        let listed = Stamp::of(&std::fs::metadata(&file).unwrap(), None);
        let content = read(Kind::Curve, &file, listed, Some(&busy), LIMITS, true);
        assert!(
            matches!(content, Some(Content::Cert(Err(FileError::Changing)))),
            "{content:?}"
        );
        let listed = Stamp::of(&std::fs::metadata(&file).unwrap(), None);
        assert!(read(Kind::Curve, &file, listed, Some(&busy), LIMITS, false).is_none());
    }

    /// A one-shot load runs on a thread of its own: a read that hangs is a typed timeout at
    /// the deadline (the thread is left behind), a read that panics a typed panic.
    #[test]
    fn a_one_shot_load_that_hangs_or_panics_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.key"), "x").unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let (_never_sent, never) = std::sync::mpsc::channel::<()>();
        let never = std::sync::Mutex::new(never);
        let hang: ReadHook = Arc::new(move |_: &Path| {
            let _ = never.lock().unwrap().recv();
            Ok(Vec::new())
        });
        let deadline = Duration::from_millis(50);
        let path = dir.path().to_path_buf();
        let load = load_directory_within(path.clone(), Layout::Pyzmq, Some(hang), deadline);
        let error = runtime.block_on(load).unwrap_err();
        assert_eq!(
            error,
            ReloadError::TimedOut {
                path: path.clone(),
                deadline
            }
        );
        let panics: ReadHook = Arc::new(|_: &Path| panic!("a reader that panics"));
        let load = load_directory_within(path.clone(), Layout::Pyzmq, Some(panics), PATIENCE);
        let error = runtime.block_on(load).unwrap_err();
        assert_eq!(error, ReloadError::Panicked { path });
    }

    const PATIENCE: Duration = Duration::from_secs(20);

    #[test]
    fn a_file_that_is_not_the_version_listed_is_left_unsettled() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.key");
        std::fs::write(&file, "first").unwrap();
        let listed = Stamp::of(&std::fs::metadata(&file).unwrap(), None);
        assert!(read(Kind::Curve, &file, listed, None, LIMITS, false).is_some());
        std::fs::write(&file, "second, longer").unwrap();
        assert!(read(Kind::Curve, &file, listed, None, LIMITS, false).is_none());
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
        std::fs::File::options()
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
            limits: LIMITS,
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
