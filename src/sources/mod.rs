//! Live reload: follow a CURVE certificate directory or a PLAIN password file and apply its
//! changes by themselves — per file, atomically, and failing closed.
//!
//! One vocabulary throughout:
//! - a **source** ([`WatchSource`]) is what a watch follows: a directory or a password file;
//! - a **look** lists the source and takes each file's *stamp* — identity,
//!   change time, size (and, for a password file, a hash of its content): what user space
//!   cannot set back, unlike a modification time;
//! - a file's changes are **settled** once it was closed after writing (inotify
//!   `CLOSE_WRITE`), renamed into place, or unchanged since the previous look at least half
//!   an interval earlier; a **removal** is applied at once;
//! - an **install** replaces the domain's configuration of that mechanism with exactly what
//!   the files hold now, through the same [`Policy`](crate::policy::Policy) methods as an
//!   explicit configuration; every install is a [`Reloaded`] report.
//!
//! `files` is the sans-IO core (per-file state, what changed, what to install);
//! `reader` does the file I/O on a thread of its own per look, under a deadline — and is the
//! one reader of certificate directories: a `ConfigureCurve` of a directory and
//! [`load_directory`](crate::certs::load_directory) are a first look through it; `notifier`
//! turns kernel notifications (the `notify` crate: inotify on Linux) into looks; `actor` is
//! the thin glue in the policy actor.

mod actor;
pub(crate) mod files;
mod notifier;
#[cfg(feature = "postgres")]
pub mod postgres;
mod reader;
mod served;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

pub(crate) use actor::Sources;
#[cfg(test)]
pub(crate) use reader::PARALLEL_THRESHOLD;
pub(crate) use reader::{load_directory, load_directory_within, ReadHook};
pub(crate) use served::Served;
pub use served::SourceStats;
#[cfg(feature = "postgres")]
pub(crate) use served::{Apply, Report, Serve, SourceId, Unserve};

use crate::certs::Layout;
use crate::error::ConfigError;
use crate::messages::MechanismKind;

/// Called after every (re)load of a watched source, on the authenticator's thread.
pub type ReloadCallback = Arc<dyn Fn(&Reloaded) + Send + Sync>;

/// The shortest [`Watch::every`] interval and [`Watch::read_deadline`] accepted: 10 ms.
/// Shorter ones would spend the authenticator's thread on looking at files.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// What a watch follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchSource {
    /// A directory of public certificates, for the domain's CURVE keys.
    CurveDirectory {
        /// The directory.
        path: PathBuf,
        /// pyzmq's or CZMQ's layout.
        layout: Layout,
    },
    /// A CZMQ-format password file (`name=password` per line), for the domain's PLAIN users.
    PlainFile {
        /// The file.
        path: PathBuf,
    },
}

impl WatchSource {
    /// The mechanism the source configures.
    pub fn mechanism(&self) -> MechanismKind {
        match self {
            WatchSource::CurveDirectory { .. } => MechanismKind::Curve,
            WatchSource::PlainFile { .. } => MechanismKind::Plain,
        }
    }

    /// The directory or file.
    pub fn path(&self) -> &Path {
        match self {
            WatchSource::CurveDirectory { path, .. } | WatchSource::PlainFile { path } => path,
        }
    }
}

/// A [`Watch`] that cannot be started; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// [`Watch::every`] below [`Watch::MIN_INTERVAL`].
    #[error("watch interval {interval:?} is below the floor of {floor:?}")]
    IntervalTooShort {
        /// The interval asked for.
        interval: Duration,
        /// [`Watch::MIN_INTERVAL`].
        floor: Duration,
    },
    /// [`Watch::read_deadline`] below [`Watch::MIN_INTERVAL`].
    #[error("watch read deadline {deadline:?} is below the floor of {floor:?}")]
    DeadlineTooShort {
        /// The deadline asked for.
        deadline: Duration,
        /// [`Watch::MIN_INTERVAL`].
        floor: Duration,
    },
}

/// Starts watching a source for one domain: the watch becomes the owner of that domain's
/// mechanism (see [`Change`](crate::policy::Change) and the README's "Who may change a
/// domain"). On a domain the hand owns it replaces the configuration; on a domain another
/// watch or a store owns it is refused with
/// [`PolicyError::OwnedBy`](crate::policy::PolicyError::OwnedBy) unless it takes over
/// ([`TakeOver`](crate::messages::TakeOver)). Answers with the first load. If that fails, the
/// watch stays and the domain refuses everyone of that mechanism until the source is fixed.
///
/// While it runs, a removal by hand (`RemoveCurveKeys`, `RemovePlainUsers`) is applied and
/// holds over every later reload (a local revocation); a configuration by hand is refused
/// unless it takes over, which ends the watch.
///
/// Changes are noticed through kernel notifications (inotify on Linux), with polling every
/// [`interval`](Self::every) as the fallback and safety net; [`polling_only`](Self::polling_only)
/// skips notifications (e.g. for NFS, where changes made on other machines raise none).
/// A deleted file is applied at once; a created or edited file once it has settled (closed
/// after writing, renamed into place, or unchanged for an interval), each file on its own.
///
/// A message that is refused (bad domain, interval or deadline below [`Watch::MIN_INTERVAL`], no
/// CURVE support, owned by another watch or a store) changes nothing: an existing watch or
/// configuration stays.
#[derive(Clone, Message)]
#[rtype(result = "Result<Reloaded, ConfigError>")]
pub struct Watch {
    /// The ZAP domain, or `"*"`.
    pub domain: String,
    /// What to follow.
    pub source: WatchSource,
    /// How often to poll for changes (default 250 ms, at least [`Watch::MIN_INTERVAL`]).
    pub interval: Duration,
    /// How long one look at the source may take (default 5 s, at least [`Watch::MIN_INTERVAL`]).
    /// Past it the domain refuses everyone of that mechanism and the failure is reported; the
    /// watch looks again as soon as the hung read returns (never two reads at once), and
    /// stopping the authenticator never waits for it. A read that panics is handled alike.
    pub read_deadline: Duration,
    /// Poll only, without kernel notifications.
    pub polling_only: bool,
    /// Take the domain over from a watch or store that owns it (see
    /// [`TakeOver`](crate::messages::TakeOver)).
    pub take_over: bool,
    /// Told about every reload, successful or not.
    pub on_reload: Option<ReloadCallback>,
    /// Replaces file reads, for tests of hanging or panicking reads.
    reader: Option<ReadHook>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("domain", &self.domain)
            .field("source", &self.source)
            .field("interval", &self.interval)
            .field("read_deadline", &self.read_deadline)
            .field("polling_only", &self.polling_only)
            .field("take_over", &self.take_over)
            .finish()
    }
}

impl Watch {
    /// The shortest [`every`](Self::every) interval and [`read_deadline`](Self::read_deadline)
    /// accepted: 10 ms. Shorter ones would spend the authenticator's thread on looking at
    /// files.
    pub const MIN_INTERVAL: Duration = MIN_INTERVAL;
    const DEFAULT_INTERVAL: Duration = Duration::from_millis(250);
    const DEFAULT_READ_DEADLINE: Duration = Duration::from_secs(5);

    /// Follow a certificate directory (pyzmq layout: the `*.key` files directly in it) for
    /// `domain`'s CURVE keys.
    pub fn curve(domain: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        let source = WatchSource::CurveDirectory {
            path: path.into(),
            layout: Layout::Pyzmq,
        };
        Self::new(domain, source)
    }

    /// Follow a CZMQ certificate store (every file in the directory and its subdirectories,
    /// whatever its name, except `*_secret`) for `domain`'s CURVE keys.
    pub fn czmq(domain: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        let source = WatchSource::CurveDirectory {
            path: path.into(),
            layout: Layout::Czmq,
        };
        Self::new(domain, source)
    }

    /// Follow a CZMQ password file for `domain`'s PLAIN users.
    pub fn plain(domain: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self::new(domain, WatchSource::PlainFile { path: path.into() })
    }

    /// Follow any source.
    pub fn new(domain: impl Into<String>, source: WatchSource) -> Self {
        Watch {
            domain: domain.into(),
            source,
            interval: Self::DEFAULT_INTERVAL,
            read_deadline: Self::DEFAULT_READ_DEADLINE,
            polling_only: false,
            take_over: false,
            on_reload: None,
            reader: None,
        }
    }

    /// Poll for changes this often. Each poll lists the directory and takes every file's
    /// identity, size and times off the actix thread (a password file is also read, to hash
    /// its content); for directories of tens of thousands of files, a longer interval keeps
    /// that cheap. An interval below [`Watch::MIN_INTERVAL`] (10 ms) is refused with
    /// [`WatchError::IntervalTooShort`] when the message is handled.
    pub fn every(self, interval: Duration) -> Self {
        Watch { interval, ..self }
    }

    /// Give each look at the source this long before failing closed (see the field).
    pub fn read_deadline(self, read_deadline: Duration) -> Self {
        Watch {
            read_deadline,
            ..self
        }
    }

    /// Poll only; no kernel notifications (as on network filesystems, where changes made by
    /// other machines raise none). Deletions then apply within one interval.
    pub fn polling_only(self) -> Self {
        Watch {
            polling_only: true,
            ..self
        }
    }

    /// Be told about every reload.
    pub fn on_reload(self, callback: impl Fn(&Reloaded) + Send + Sync + 'static) -> Self {
        Watch {
            on_reload: Some(Arc::new(callback)),
            ..self
        }
    }

    /// Reads every file through `read` instead of the filesystem (its metadata still comes
    /// from the filesystem): for tests of reads that hang or panic. Not a stable API.
    #[doc(hidden)]
    pub fn read_through(
        self,
        read: impl Fn(&Path) -> std::io::Result<Vec<u8>> + Send + Sync + 'static,
    ) -> Self {
        Watch {
            reader: Some(Arc::new(read)),
            ..self
        }
    }

    /// Refuses what cannot be started, before anything is changed.
    pub(crate) fn check(&self) -> Result<(), WatchError> {
        if self.interval < MIN_INTERVAL {
            return Err(WatchError::IntervalTooShort {
                interval: self.interval,
                floor: MIN_INTERVAL,
            });
        }
        if self.read_deadline < MIN_INTERVAL {
            return Err(WatchError::DeadlineTooShort {
                deadline: self.read_deadline,
                floor: MIN_INTERVAL,
            });
        }
        Ok(())
    }
}

impl crate::messages::TakeOver for Watch {
    fn take_over(self) -> Self {
        Watch {
            take_over: true,
            ..self
        }
    }
}

/// Stops watching a domain's source; its last loaded configuration stays in force.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<bool, ConfigError>")]
pub struct Unwatch {
    /// The ZAP domain, or `"*"`.
    pub domain: String,
    /// Which mechanism's watch.
    pub mechanism: MechanismKind,
}

/// Asks for the latest reload of every watch.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Vec<Reloaded>")]
pub struct Watches;

/// The outcome of one (re)load of a watched source.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reloaded {
    /// The domain.
    pub domain: String,
    /// The file or directory.
    pub path: PathBuf,
    /// Keys or users now in force (0 after a failure: everyone is refused).
    pub entries: usize,
    /// Why the domain now refuses everyone of that mechanism, if it does.
    pub error: Option<ReloadError>,
    /// Files that were skipped, each with its cause (the rest was installed).
    pub rejected: Vec<ReloadError>,
    /// For a certificate directory, the files its layout passed over, named, as in
    /// [`CurveReport::warning`](crate::messages::CurveReport::warning): set when the directory
    /// holds files but no certificate in the layout asked for, or (pyzmq's layout) files beside
    /// the `NAME.key` ones that are neither `NAME.key` nor secret files.
    pub warning: Option<String>,
}

/// Why a watched source, or one of its files, was not loaded.
///
/// As [`Reloaded::error`] the domain refuses everyone of that mechanism until a later
/// reload succeeds (fail closed); as an entry of [`Reloaded::rejected`], only that file was
/// skipped. The text of an I/O or parse failure is kept as `cause`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// The watch has started and its first load has not finished.
    #[error("not loaded yet")]
    NotLoadedYet,
    /// The directory (or a subdirectory) cannot be listed, or a file cannot be read (or
    /// changed while it was read).
    #[error("{}: {cause}", path.display())]
    Unreadable {
        /// The directory or file.
        path: PathBuf,
        /// The failure, as the system reported it.
        cause: String,
    },
    /// A file holds no valid entry: a broken certificate, a duplicate key, a password file
    /// that is not UTF-8, or not a regular file at all.
    #[error("{}: {cause}", path.display())]
    InvalidFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        cause: String,
    },
    /// The source holds no entries at all, so the domain would refuse everyone.
    #[error("{} has no entries", path.display())]
    NoEntries {
        /// The directory or file.
        path: PathBuf,
    },
    /// One look at the source took longer than [`Watch::read_deadline`].
    #[error(
        "reading {} took longer than {deadline:?}; refusing everyone until it can be read",
        path.display()
    )]
    TimedOut {
        /// The directory or file.
        path: PathBuf,
        /// The deadline it passed.
        deadline: Duration,
    },
    /// Reading the source panicked.
    #[error("reading {} panicked; refusing everyone", path.display())]
    Panicked {
        /// The directory or file.
        path: PathBuf,
    },
    /// No thread could be started to read the source.
    #[error("cannot start a thread to read the source: {cause}")]
    NoThread {
        /// The failure, as the system reported it.
        cause: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_and_deadlines_below_the_floor_are_refused() {
        let ok = Watch::plain("d", "/pw").every(MIN_INTERVAL);
        assert_eq!(ok.check(), Ok(()));
        for short in [Duration::ZERO, Duration::from_millis(9)] {
            assert_eq!(
                Watch::plain("d", "/pw").every(short).check(),
                Err(WatchError::IntervalTooShort {
                    interval: short,
                    floor: MIN_INTERVAL
                })
            );
            assert!(matches!(
                Watch::plain("d", "/pw").read_deadline(short).check(),
                Err(WatchError::DeadlineTooShort { .. })
            ));
        }
    }
}
