//! The I/O side of a look: list the source, stamp each file, read the settled ones — on a
//! thread of its own that nobody waits for, so a read that hangs (an NFS stall) can neither
//! block the authenticator nor its shutdown (tokio's blocking pool would: runtime shutdown
//! waits for its tasks).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::oneshot;

use super::files::{Changes, Content, Files, Install, Kind, Listing, Stamp};
use super::WatchSource;
use crate::certs::{candidates, parse_cert_file, MAX_CERTIFICATE_BYTES};
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
pub(crate) fn spawn(look: Look) -> std::io::Result<oneshot::Receiver<std::thread::Result<Looked>>> {
    let (answer, answered) = oneshot::channel();
    std::thread::Builder::new()
        .name("zap-reload".into())
        .spawn(move || {
            let _ = answer.send(catch_unwind(AssertUnwindSafe(|| run(look))));
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
        .map(|path| (path.clone(), stamps[path], read(kind, path, hook.as_ref())))
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
                Err(error) => return Listing::Unreadable(error.to_string()),
            };
            let mut skipped: Vec<String> = rejected
                .iter()
                .map(|r| format!("{}: {}", r.path.display(), r.cause))
                .collect();
            let mut files = BTreeMap::new();
            for path in paths {
                // Follows links to files, like the read will.
                match std::fs::metadata(&path) {
                    Ok(meta) if meta.is_file() => {
                        files.insert(path, Stamp::of(&meta, None));
                    }
                    Ok(_) => {
                        skipped.push(format!("{}: not a regular file; skipped", path.display()))
                    }
                    Err(error) => skipped.push(format!("{}: cannot read: {error}", path.display())),
                }
            }
            skipped.sort();
            Listing::Files { files, skipped }
        }
        WatchSource::PlainFile { path } => match read_regular(path, None, hook) {
            Ok((meta, bytes)) => Listing::Files {
                files: BTreeMap::from([(path.clone(), Stamp::of(&meta, Some(&bytes)))]),
                skipped: Vec::new(),
            },
            Err(error) => Listing::Unreadable(format!("{}: {error}", path.display())),
        },
    }
}

fn read(kind: Kind, path: &Path, hook: Option<&ReadHook>) -> Content {
    match kind {
        Kind::Curve => Content::Cert(
            read_regular(path, Some(MAX_CERTIFICATE_BYTES), hook)
                .and_then(|(_, bytes)| parse_cert_file(&bytes).map_err(|e| e.to_string())),
        ),
        Kind::Plain => Content::Passwords(read_regular(path, None, hook).and_then(|(_, bytes)| {
            String::from_utf8(bytes)
                .map(|text| PasswordTable::parse_password_file(&text))
                .map_err(|_| "not valid UTF-8".to_owned())
        })),
    }
}

/// Reads a regular file, refusing anything else. The file is opened without blocking and
/// checked after opening, so a FIFO swapped in after the listing is refused, never waited on.
fn read_regular(
    path: &Path,
    limit: Option<u64>,
    hook: Option<&ReadHook>,
) -> Result<(std::fs::Metadata, Vec<u8>), String> {
    if let Some(hook) = hook {
        let bytes = hook(path).map_err(|e| format!("cannot read: {e}"))?;
        let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
        return Ok((meta, bytes));
    }
    let file: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("cannot read: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("cannot read: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file; skipped".to_owned());
    }
    let mut bytes = Vec::with_capacity(meta.len().min(1 << 20) as usize);
    let cap = limit.map_or(u64::MAX, |limit| limit + 1);
    file.take(cap)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if let Some(limit) = limit {
        if bytes.len() as u64 > limit {
            return Err(format!("larger than {limit} bytes, not a certificate"));
        }
    }
    Ok((meta, bytes))
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
            assert!(install.error.unwrap().contains("/nonexistent/"));
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
        assert!(install.error.unwrap().contains("not a regular file"));
        std::fs::rename(&fifo, dir.path().join("x.key")).unwrap();
        let source = WatchSource::CurveDirectory {
            path: dir.path().into(),
            layout: Layout::Pyzmq,
        };
        let install = look(&source, Files::default()).install.unwrap();
        assert_eq!(install.entries, 0);
        assert!(
            install.rejected[0].contains("not a regular file"),
            "{:?}",
            install.rejected
        );
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
