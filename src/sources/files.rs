//! The sans-IO core of live reload: what a source holds, the state of each file, what changed
//! since the last look, and what to install.
//!
//! A look hands [`Files::observe`] a [`Listing`] (every file with its [`Stamp`]); it answers
//! with the [`Changes`] to make: files to drop at once (removed) and files to read (settled).
//! After the reads, [`Files::apply`] records what they hold and [`Files::install`] builds the
//! configuration to install. Nothing here touches the filesystem or a clock.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub(crate) use crate::certs::Stamp;
use crate::certs::{assemble, CertFile, CertStore, FileError, RejectedFile, SkippedFile};
use crate::messages::error::ReloadError;
use crate::policy::PasswordTable;

/// What one look found.
#[derive(Debug)]
pub(crate) enum Listing {
    /// The files to load, and what the listing passed over.
    Files {
        files: BTreeMap<PathBuf, Stamp>,
        skipped: Skipped,
    },
    /// The source itself cannot be read: the domain refuses that mechanism.
    Unreadable(Failure),
}

/// What a listing passed over.
#[derive(Debug, Default)]
pub(crate) struct Skipped {
    /// Files that will not be read, each with its cause (not regular files, unlistable
    /// subdirectories, dangling links), in path order.
    pub(crate) rejected: Vec<RejectedFile>,
    /// Entries the directory's layout does not read, with the reason, in path order.
    pub(crate) ignored: Vec<SkippedFile>,
}

impl Skipped {
    /// Whether a report would say the same (an `io::Error` has no equality: its text does).
    fn same_as(&self, other: &Skipped) -> bool {
        self.ignored == other.ignored
            && self.rejected.len() == other.rejected.len()
            && self
                .rejected
                .iter()
                .zip(&other.rejected)
                .all(|(a, b)| a.path == b.path && a.cause.to_string() == b.cause.to_string())
    }
}

/// Why an install refuses everyone of its mechanism.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The source itself cannot be read: the directory is missing, not a directory or cannot
    /// be listed, or the password file cannot be read (or is no regular file).
    Unreadable { path: PathBuf, cause: FileError },
    /// Anything else, as a watch reports it (no entries, an invalid password file, a look
    /// past its deadline, a panic, no thread).
    Reload(ReloadError),
}

impl Failure {
    /// As a watch reports it.
    pub(crate) fn report(&self) -> ReloadError {
        match self {
            Failure::Unreadable {
                path,
                cause: FileError::OverLimit { size, limit },
            } => ReloadError::TooLarge {
                path: path.clone(),
                size: *size,
                limit: *limit,
            },
            Failure::Unreadable {
                path,
                cause: FileError::TooManyEntries { limit },
            } => ReloadError::TooManyEntries {
                path: path.clone(),
                limit: *limit,
            },
            Failure::Unreadable { path, cause } => ReloadError::Unreadable {
                path: path.clone(),
                cause: cause.to_string(),
            },
            Failure::Reload(error) => error.clone(),
        }
    }
}

impl From<ReloadError> for Failure {
    fn from(error: ReloadError) -> Self {
        Failure::Reload(error)
    }
}

/// A skipped file as a watch reports it: one that cannot be read (or listed) is
/// [`ReloadError::Unreadable`], any other [`ReloadError::InvalidFile`].
pub(crate) fn reported(rejected: &RejectedFile) -> ReloadError {
    let (path, cause) = (rejected.path.clone(), rejected.cause.to_string());
    match rejected.cause {
        FileError::ListDirectory(_) | FileError::Read(_) | FileError::Changing => {
            ReloadError::Unreadable { path, cause }
        }
        _ => ReloadError::InvalidFile { path, cause },
    }
}

/// What one file holds, as read; an error names the file's problem.
#[derive(Debug)]
pub(crate) enum Content {
    /// A certificate: its key, metadata, and whether it (wrongly) holds a secret key.
    Cert(CertFile),
    /// A password file.
    /// The table, and the users whose entry was refused (an empty password).
    Passwords(Result<(PasswordTable, Vec<String>), String>),
}

/// What a look asks for: drop these files now, read those.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Changes {
    /// Files that are gone: their entries are dropped at once.
    pub(crate) removed: Vec<PathBuf>,
    /// New or edited files that have settled, in path order, each with the stamp the listing
    /// saw: read them now.
    pub(crate) read: Vec<(PathBuf, Stamp)>,
    /// Something to install even if no file changed (the first look, a recovery, a change in
    /// the skipped files).
    pub(crate) reinstall: bool,
}

impl Changes {
    /// Whether nothing needs installing.
    pub(crate) fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.read.is_empty() && !self.reinstall
    }
}

/// What to install for the domain, with its report fields.
#[derive(Debug)]
pub(crate) struct Install {
    pub(crate) config: Config,
    pub(crate) entries: usize,
    /// Why the domain refuses everyone of that mechanism, if it does.
    pub(crate) error: Option<Failure>,
    /// Every file skipped, with its cause, in path order.
    pub(crate) rejected: Vec<RejectedFile>,
    /// The entries a directory's layout passed over, with the reason; set by the reader.
    pub(crate) skipped: Vec<SkippedFile>,
    /// What the files the layout passed over say (see `certs::layout_warning`); set by the
    /// reader, which knows the layout.
    pub(crate) warning: Option<String>,
    /// Entries of an installed file that were left out (a user with an empty password).
    pub(crate) refused: Vec<ReloadError>,
}

/// The configuration a source yields.
#[derive(Debug, Clone)]
pub(crate) enum Config {
    Curve(CertStore),
    Plain(PasswordTable),
}

/// Which mechanism a source configures, for building an empty (refuse-all) configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Curve,
    Plain,
}

impl Install {
    /// Refuse everyone of that mechanism, saying why.
    pub(crate) fn refuse_all(kind: Kind, error: impl Into<Failure>) -> Install {
        Install {
            config: match kind {
                Kind::Curve => Config::Curve(CertStore::new()),
                Kind::Plain => Config::Plain(PasswordTable::default()),
            },
            entries: 0,
            error: Some(error.into()),
            rejected: Vec::new(),
            skipped: Vec::new(),
            warning: None,
            refused: Vec::new(),
        }
    }
}

/// The state of a watched source's files: what is installed (per file, with the stamp it was
/// read at) and what changed but has not settled yet.
#[derive(Debug, Default)]
pub(crate) struct Files {
    /// Each installed file's stamp and content.
    held: BTreeMap<PathBuf, (Stamp, Content)>,
    /// Changed files not yet read: the stamp seen, and when it was first seen.
    unsettled: BTreeMap<PathBuf, (Stamp, Instant)>,
    /// What the listing passed over, as last reported.
    skipped: Skipped,
    /// Whether the held files are installed (false at first and after a failure: then every
    /// file is read at once).
    loaded: bool,
    /// The failure last installed, so a lasting failure is reported once.
    failure: Option<ReloadError>,
    /// For a held file whose content a look hashed: when that look started, if the hash
    /// matched what is held (the held content was confirmed then).
    confirmed: BTreeMap<PathBuf, SystemTime>,
}

/// How coarse a file system's timestamps may be: one second (ext3, HFS+, some NFS).
const COARSEST_TIMESTAMP: Duration = Duration::from_secs(1);

impl Files {
    /// Records that a look started at `at` hashed `path`'s content and listed it as `listed`:
    /// if that is what is held, the held content is confirmed as of `at`.
    pub(crate) fn confirm(&mut self, path: &Path, listed: Stamp, at: SystemTime) {
        if self.held.get(path).map(|(held, _)| *held) == Some(listed) {
            self.confirmed.insert(path.to_path_buf(), at);
        } else {
            self.confirmed.remove(path);
        }
    }

    /// The held stamp of `path` (its content hash included), if `current` (its stamp now,
    /// without content) shows it cannot have changed since its content was last confirmed:
    /// the same identity, size and times, and a change time more than a second older than
    /// that confirmation — any write since would have moved it, however coarse the file
    /// system's timestamps (git's "racily clean" rule). Otherwise the file must be read.
    pub(crate) fn clean(&self, path: &Path, current: Stamp) -> Option<Stamp> {
        let (held, _) = self.held.get(path)?;
        let confirmed = *self.confirmed.get(path)?;
        if (Stamp {
            content: None,
            ..*held
        }) != current
        {
            return None;
        }
        let (seconds, nanos) = held.ctime;
        let changed = UNIX_EPOCH
            + Duration::from_secs(u64::try_from(seconds).ok()?)
            + Duration::from_nanos(u64::try_from(nanos).ok()?);
        (changed + COARSEST_TIMESTAMP < confirmed).then_some(*held)
    }

    /// Compares a listing with what is held. A removed file is dropped at once; a new or
    /// edited file is read once settled: named in `closed` (closed after writing or renamed
    /// into place) or seen with the same stamp at least `settle` ago. A file still changing
    /// never delays another.
    pub(crate) fn observe(
        &mut self,
        listing: Listing,
        closed: &BTreeSet<PathBuf>,
        now: Instant,
        settle: Duration,
    ) -> Result<Changes, Failure> {
        let (listed, skipped) = match listing {
            Listing::Files { files, skipped } => (files, skipped),
            Listing::Unreadable(error) => return Err(error),
        };
        let mut changes = Changes {
            reinstall: !self.loaded || !skipped.same_as(&self.skipped),
            ..Changes::default()
        };
        self.skipped = skipped;
        changes.removed = self
            .held
            .keys()
            .filter(|path| !listed.contains_key(*path))
            .cloned()
            .collect();
        self.unsettled.retain(|path, _| listed.contains_key(path));
        for (path, stamp) in listed {
            if self.held.get(&path).map(|(held, _)| held) == Some(&stamp) {
                self.unsettled.remove(&path);
                continue;
            }
            let settled = !self.loaded
                || closed.contains(&path)
                || self.unsettled.get(&path).is_some_and(|(seen, since)| {
                    *seen == stamp && now.saturating_duration_since(*since) >= settle
                });
            if settled {
                changes.read.push((path, stamp));
            } else if self.unsettled.get(&path).map(|(seen, _)| seen) != Some(&stamp) {
                self.unsettled.insert(path, (stamp, now));
            }
        }
        Ok(changes)
    }

    /// Records a look's changes: drops removed files and holds what the read ones contain,
    /// each with the stamp of the listing that chose it (a file that changed while it was
    /// read differs from that stamp at the next look, and is read again).
    pub(crate) fn apply(
        &mut self,
        changes: &Changes,
        read: impl IntoIterator<Item = (PathBuf, Stamp, Content)>,
    ) {
        for path in &changes.removed {
            self.held.remove(path);
        }
        let read = read.into_iter();
        if self.held.is_empty() && self.unsettled.is_empty() {
            // A first look (or one after a failure): built in one go, from reads in path
            // order, rather than file by file.
            self.held = read
                .map(|(path, stamp, content)| (path, (stamp, content)))
                .collect();
        } else {
            for (path, stamp, content) in read {
                self.unsettled.remove(&path);
                self.held.insert(path, (stamp, content));
            }
        }
        self.loaded = true;
        self.failure = None;
    }

    /// Forgets every file after a failure; returns whether this failure is news (a failure
    /// that lasts is installed and reported once).
    pub(crate) fn fail(&mut self, error: &Failure) -> bool {
        self.held.clear();
        self.unsettled.clear();
        self.skipped = Skipped::default();
        self.loaded = false;
        let error = error.report();
        let news = self.failure.as_ref() != Some(&error);
        self.failure = Some(error);
        news
    }

    /// Whether the held files are installed: false at first and after a failure, when a look
    /// reads every file at once and holds nothing from before.
    pub(crate) fn loaded(&self) -> bool {
        self.loaded
    }

    /// The entries the layout does not read, as last listed.
    pub(crate) fn ignored(&self) -> &[SkippedFile] {
        &self.skipped.ignored
    }

    /// The configuration the held files make: exactly their valid entries (a broken file's
    /// key is never admitted), in path order, a key held by an earlier file refusing a later
    /// one. No entries at all is reported as an error: the domain refuses everyone.
    pub(crate) fn install(&self, kind: Kind, source: &Path) -> Install {
        let mut rejected: Vec<RejectedFile> = self
            .skipped
            .rejected
            .iter()
            .map(RejectedFile::duplicate)
            .collect();
        let mut error = None;
        let mut refused = Vec::new();
        let config = match kind {
            Kind::Curve => {
                let files = self.held.iter().filter_map(|(path, (_, content))| {
                    let cert = match content {
                        Content::Cert(Ok(cert)) => Ok(cert.clone()),
                        Content::Cert(Err(cause)) => Err(cause.duplicate()),
                        Content::Passwords(_) => return None,
                    };
                    Some((path.clone(), cert))
                });
                let (store, refused) = assemble(source, files, |key, first| {
                    FileError::DuplicateKey { key, first }
                });
                rejected.extend(
                    refused
                        .into_iter()
                        .map(|(path, cause)| RejectedFile { path, cause }),
                );
                rejected.sort_by_cached_key(|r| (r.path.clone(), r.cause.to_string()));
                Config::Curve(store)
            }
            Kind::Plain => {
                let mut table = PasswordTable::default();
                for (path, (_, content)) in &self.held {
                    match content {
                        Content::Passwords(Ok((held, empty))) => {
                            table = held.clone();
                            refused.extend(empty.iter().map(|user| ReloadError::InvalidFile {
                                path: path.clone(),
                                cause: format!("user {user:?}: empty password, entry refused"),
                            }));
                        }
                        Content::Passwords(Err(cause)) => {
                            error = Some(Failure::Reload(ReloadError::InvalidFile {
                                path: path.clone(),
                                cause: cause.clone(),
                            }))
                        }
                        Content::Cert(_) => {}
                    }
                }
                Config::Plain(table)
            }
        };
        let entries = match &config {
            Config::Curve(store) => store.len(),
            Config::Plain(table) => table.len(),
        };
        if entries == 0 && error.is_none() {
            error = Some(Failure::Reload(ReloadError::NoEntries {
                path: source.to_path_buf(),
            }));
        }
        Install {
            config,
            entries,
            error,
            rejected,
            skipped: self.skipped.ignored.clone(),
            warning: None,
            refused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_file_is_clean_only_if_unchanged_and_confirmed_over_a_second_after_its_change() {
        let mut files = Files::default();
        let path = Path::new("passwords");
        let changed = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let held = Stamp {
            dev: 1,
            ino: 2,
            size: 3,
            ctime: (1_000_000, 0),
            mtime: (1_000_000, 0),
            content: Some(42),
        };
        let now = Stamp {
            content: None,
            ..held
        };
        files.held.insert(
            path.to_path_buf(),
            (held, Content::Cert(Err(FileError::Changing))),
        );
        // Never confirmed: read it.
        assert_eq!(files.clean(path, now), None);
        // Confirmed within a second of its change: a write in the same second could hide.
        files.confirm(path, held, changed + Duration::from_millis(900));
        assert_eq!(files.clean(path, now), None);
        // Confirmed later: any write since would have moved its change time.
        files.confirm(path, held, changed + Duration::from_millis(1500));
        assert_eq!(files.clean(path, now), Some(held));
        // Another size, inode or time now: read it.
        for other in [
            Stamp { size: 4, ..now },
            Stamp { ino: 9, ..now },
            Stamp {
                ctime: (1_000_001, 0),
                ..now
            },
        ] {
            assert_eq!(files.clean(path, other), None);
        }
        // A listing that does not match what is held withdraws the confirmation.
        files.confirm(
            path,
            Stamp { size: 4, ..held },
            changed + Duration::from_secs(5),
        );
        assert_eq!(files.clean(path, now), None);
    }
    use crate::certs::CertificateError;
    use crate::keys::CurvePublicKey;
    use crate::zap::Metadata;

    fn stamp(ino: u64, ctime: i64) -> Stamp {
        Stamp {
            dev: 1,
            ino,
            size: 10,
            ctime: (ctime, 0),
            mtime: (0, 0),
            content: None,
        }
    }

    fn listing(files: &[(&str, Stamp)]) -> Listing {
        Listing::Files {
            files: files.iter().map(|(p, s)| (PathBuf::from(p), *s)).collect(),
            skipped: Skipped::default(),
        }
    }

    fn key(byte: u8) -> Content {
        Content::Cert(Ok((
            CurvePublicKey::from_bytes([byte; 32]),
            Metadata::empty(),
            false,
        )))
    }

    const SETTLE: Duration = Duration::from_millis(100);

    /// Observes and applies, reading each chosen file as `content(path)`.
    fn look(
        files: &mut Files,
        list: &[(&str, Stamp)],
        closed: &[&str],
        now: Instant,
        content: impl Fn(&Path) -> Content,
    ) -> Changes {
        let closed = closed.iter().map(PathBuf::from).collect();
        let changes = files.observe(listing(list), &closed, now, SETTLE).unwrap();
        let read: Vec<_> = changes
            .read
            .iter()
            .map(|(p, s)| (p.clone(), *s, content(p)))
            .collect();
        files.apply(&changes, read);
        changes
    }

    /// The files a look chose to read.
    fn paths(changes: &Changes) -> Vec<PathBuf> {
        changes.read.iter().map(|(path, _)| path.clone()).collect()
    }

    #[test]
    fn the_first_look_reads_everything_at_once() {
        let mut files = Files::default();
        let t = Instant::now();
        let changes = look(&mut files, &[("a", stamp(1, 1))], &[], t, |_| key(1));
        assert_eq!(paths(&changes), [PathBuf::from("a")]);
        assert!(changes.reinstall);
        assert_eq!(files.install(Kind::Curve, Path::new("d")).entries, 1);
    }

    #[test]
    fn a_removal_applies_at_once_while_another_file_keeps_changing() {
        let mut files = Files::default();
        let t = Instant::now();
        look(
            &mut files,
            &[("busy", stamp(1, 1)), ("gone", stamp(2, 1))],
            &[],
            t,
            |p| key(if p.ends_with("busy") { 1 } else { 2 }),
        );
        // "busy" changes at every look; "gone" is deleted: dropped at the first look after.
        let changes = look(&mut files, &[("busy", stamp(1, 2))], &[], t, |_| key(9));
        assert_eq!(changes.removed, [PathBuf::from("gone")]);
        assert!(changes.read.is_empty(), "busy has not settled");
        let install = files.install(Kind::Curve, Path::new("d"));
        assert_eq!(install.entries, 1, "busy keeps its previous content");
    }

    #[test]
    fn an_edit_settles_when_closed_or_unchanged_for_the_settle_time() {
        let mut files = Files::default();
        let t = Instant::now();
        look(&mut files, &[("a", stamp(1, 1))], &[], t, |_| key(1));
        let edited = [("a", stamp(1, 2))];
        assert!(look(&mut files, &edited, &[], t, |_| key(2)).is_empty());
        let early = t + SETTLE / 2;
        assert!(look(&mut files, &edited, &[], early, |_| key(2)).is_empty());
        let later = look(&mut files, &edited, &[], t + SETTLE, |_| key(2));
        assert_eq!(paths(&later), [PathBuf::from("a")]);
        // Closed after writing (or renamed into place): read at once.
        let closed = look(&mut files, &[("a", stamp(1, 3))], &["a"], t, |_| key(3));
        assert_eq!(paths(&closed), [PathBuf::from("a")]);
        // A file still being written restarts its settle time at every change.
        look(&mut files, &[("a", stamp(1, 4))], &[], t, |_| key(4));
        let again = look(&mut files, &[("a", stamp(1, 5))], &[], t + SETTLE, |_| {
            key(5)
        });
        assert!(again.is_empty());
    }

    #[test]
    fn a_same_size_rewrite_with_the_old_mtime_is_a_change() {
        let mut files = Files::default();
        let t = Instant::now();
        let before = stamp(1, 1);
        look(&mut files, &[("pw", before)], &[], t, |_| key(1));
        // Same inode, size and mtime; only the change time (or the content hash) differs.
        let after = Stamp {
            ctime: (1, 5),
            ..before
        };
        let hashed = Stamp {
            content: Some(7),
            ..before
        };
        for changed in [after, hashed] {
            let changes = look(&mut files, &[("pw", changed)], &["pw"], t, |_| key(2));
            assert_eq!(paths(&changes), [PathBuf::from("pw")]);
        }
    }

    #[test]
    fn failures_refuse_everyone_and_are_reported_once_then_everything_is_read_again() {
        let mut files = Files::default();
        let t = Instant::now();
        look(&mut files, &[("a", stamp(1, 1))], &[], t, |_| key(1));
        let error = files
            .observe(
                Listing::Unreadable(Failure::Unreadable {
                    path: "d".into(),
                    cause: FileError::NotADirectory,
                }),
                &BTreeSet::new(),
                t,
                SETTLE,
            )
            .unwrap_err();
        assert!(files.fail(&error));
        assert!(!files.fail(&error), "a lasting failure is news once");
        let refused = Install::refuse_all(Kind::Curve, error);
        assert_eq!(refused.entries, 0);
        let back = look(&mut files, &[("a", stamp(1, 1))], &[], t, |_| key(1));
        assert_eq!(paths(&back), [PathBuf::from("a")]);
        assert_eq!(files.install(Kind::Curve, Path::new("d")).entries, 1);
    }

    #[test]
    fn installs_hold_exactly_the_valid_files_and_report_the_rest() {
        let mut files = Files::default();
        let t = Instant::now();
        look(
            &mut files,
            &[("a", stamp(1, 1)), ("b", stamp(2, 1)), ("c", stamp(3, 1))],
            &[],
            t,
            |p| match p.to_str() {
                Some("c") => {
                    Content::Cert(Err(FileError::Certificate(CertificateError::NoPublicKey)))
                }
                _ => key(1),
            },
        );
        let install = files.install(Kind::Curve, Path::new("d"));
        assert_eq!(install.entries, 1);
        assert_eq!(install.rejected.len(), 2, "{:?}", install.rejected);
        assert!(install.rejected[0]
            .cause
            .to_string()
            .contains("already loaded from a"));
        assert!(install.error.is_none(), "{:?}", install.error);

        let mut plain = Files::default();
        look(&mut plain, &[("pw", stamp(1, 1))], &[], t, |_| {
            Content::Passwords(Ok((PasswordTable::default(), Vec::new())))
        });
        let install = plain.install(Kind::Plain, Path::new("pw"));
        assert_eq!((install.entries, install.error.is_some()), (0, true));
    }
}
