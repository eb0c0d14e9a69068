//! Live reload's vocabulary: what a watch follows, the messages that start, stop and list
//! watches, and what each (re)load reports.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::error::{ConfigError, ReloadError, WatchError};
use super::MechanismKind;
use crate::certs::{Layout, SkippedFile};

pub(crate) use crate::certs::ReadHook;

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
    /// The largest password file read (default 64 MiB, see [`max_file_bytes`](Self::max_file_bytes)).
    pub max_file_bytes: u64,
    /// The most entries a certificate directory may hold (default
    /// [`MAX_DIRECTORY_ENTRIES`](crate::certs::MAX_DIRECTORY_ENTRIES), see
    /// [`max_entries`](Self::max_entries)).
    pub max_entries: usize,
    /// Replaces file reads, for tests of hanging or panicking reads.
    pub(crate) reader: Option<ReadHook>,
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
    /// The default [`max_file_bytes`](Self::max_file_bytes): 64 MiB.
    pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 << 20;

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
            max_file_bytes: Self::DEFAULT_MAX_FILE_BYTES,
            max_entries: crate::certs::MAX_DIRECTORY_ENTRIES,
            reader: None,
        }
    }

    /// Refuse a password file larger than this (default 64 MiB): the domain then refuses
    /// everyone of PLAIN and the reload reports
    /// [`ReloadError::TooLarge`](crate::ReloadError::TooLarge) with the file's size. A file
    /// whose size says so is not read at all. (Certificate files have their own cap,
    /// [`MAX_CERTIFICATE_BYTES`](crate::certs::MAX_CERTIFICATE_BYTES): a larger one is
    /// skipped and named.)
    pub fn max_file_bytes(self, bytes: u64) -> Self {
        Watch {
            max_file_bytes: bytes,
            ..self
        }
    }

    /// Refuse a certificate directory holding more entries than this (files,
    /// subdirectories and files the layout passes over, counted as they are listed; default
    /// [`MAX_DIRECTORY_ENTRIES`](crate::certs::MAX_DIRECTORY_ENTRIES)): the domain then
    /// refuses everyone of CURVE and the reload reports
    /// [`ReloadError::TooManyEntries`](crate::ReloadError::TooManyEntries).
    pub fn max_entries(self, entries: usize) -> Self {
        Watch {
            max_entries: entries,
            ..self
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
    /// from the filesystem): for tests of reads that hang or panic. Not a stable API (feature
    /// `test-hooks`).
    #[cfg(feature = "test-hooks")]
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

impl super::TakeOver for Watch {
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
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Reloaded {
    /// The domain.
    pub domain: String,
    /// The file or directory.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::serialize::path"))]
    pub path: PathBuf,
    /// Keys or users now in force (0 after a failure: everyone is refused).
    pub entries: usize,
    /// Why the domain now refuses everyone of that mechanism, if it does.
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serialize::opt_text")
    )]
    pub error: Option<ReloadError>,
    /// Files that were skipped, each with its cause (the rest was installed).
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::serialize::texts"))]
    pub rejected: Vec<ReloadError>,
    /// For a certificate directory, every entry its layout passed over, with the reason, in
    /// path order, as in [`CurveReport::skipped`](crate::messages::CurveReport::skipped).
    pub skipped: Vec<SkippedFile>,
    /// For a certificate directory, the files its layout passed over, named, as in
    /// [`CurveReport::warning`](crate::messages::CurveReport::warning): set when the directory
    /// holds files but no certificate in the layout asked for, or (pyzmq's layout) files beside
    /// the `NAME.key` ones that are neither `NAME.key` nor secret files.
    pub warning: Option<String>,
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
