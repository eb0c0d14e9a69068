//! Live reload: watch a CURVE certificate directory or a PLAIN password file and apply its
//! changes by themselves — debounced, atomic, and failing closed.
//!
//! The policy actor polls a cheap fingerprint (names, sizes, times) off the actix thread.
//! A change is applied once the fingerprint has held still for one interval, so a file
//! being written is not read half-way. Each reload is the same atomic replacement that
//! `ConfigureCurve` / `ConfigurePlain` does: the domain admits exactly what the files say
//! now. A directory or file that cannot be read leaves the domain refusing everyone of that
//! mechanism until it is fixed, and every problem is reported (log, callback, `Inspect`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::messages::MechanismKind;
use crate::certs::{fingerprint, load_directory, CertStore, Layout};
use crate::error::ConfigError;
use crate::policy::PasswordTable;

/// Called after every (re)load of a watched source, on the authenticator's thread.
pub type ReloadCallback = Arc<dyn Fn(&Reloaded) + Send + Sync>;

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

    pub(crate) fn path(&self) -> &Path {
        match self {
            WatchSource::CurveDirectory { path, .. } | WatchSource::PlainFile { path } => path,
        }
    }
}

/// Starts watching a source for one domain; replaces an earlier watch or configuration of
/// that domain's mechanism. Answers with the first load. If that fails, the watch stays and
/// the domain refuses everyone of that mechanism until the source is fixed.
#[derive(Clone, Message)]
#[rtype(result = "Result<Reloaded, ConfigError>")]
pub struct Watch {
    /// The ZAP domain, or `"*"`.
    pub domain: String,
    /// What to follow.
    pub source: WatchSource,
    /// How often to look for changes (default 250 ms: changes apply within about 0.75 s).
    pub interval: Duration,
    /// Told about every reload, successful or not.
    pub on_reload: Option<ReloadCallback>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("domain", &self.domain)
            .field("source", &self.source)
            .field("interval", &self.interval)
            .finish()
    }
}

impl Watch {
    const DEFAULT_INTERVAL: Duration = Duration::from_millis(250);

    /// Follow a certificate directory (pyzmq layout) for `domain`'s CURVE keys.
    pub fn curve(domain: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        let source = WatchSource::CurveDirectory {
            path: path.into(),
            layout: Layout::Pyzmq,
        };
        Self::new(domain, source)
    }

    /// Follow a CZMQ password file for `domain`'s PLAIN users.
    pub fn plain(domain: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self::new(domain, WatchSource::PlainFile { path: path.into() })
    }

    fn new(domain: impl Into<String>, source: WatchSource) -> Self {
        Watch {
            domain: domain.into(),
            source,
            interval: Self::DEFAULT_INTERVAL,
            on_reload: None,
        }
    }

    /// Look for changes this often. Each look lists the directory and reads every file's
    /// size and times (off the actix thread, no file is opened); for directories of tens of
    /// thousands of files, a longer interval keeps that cheap.
    pub fn every(self, interval: Duration) -> Self {
        Watch { interval, ..self }
    }

    /// Be told about every reload.
    pub fn on_reload(self, callback: impl Fn(&Reloaded) + Send + Sync + 'static) -> Self {
        Watch {
            on_reload: Some(Arc::new(callback)),
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
#[rtype(result = "Result<Vec<Reloaded>, ConfigError>")]
pub struct Watches;

/// The outcome of one (re)load of a watched source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// The domain.
    pub domain: String,
    /// The file or directory.
    pub path: PathBuf,
    /// Keys or users now in force (0 after a failure: everyone is refused).
    pub entries: usize,
    /// Why the source could not be read, if it could not.
    pub error: Option<String>,
    /// Files that were skipped, each with its cause.
    pub rejected: Vec<String>,
}

/// What a load produced, ready to install.
pub(crate) enum Loaded {
    Curve(CertStore),
    Plain(PasswordTable),
}

/// Reads a source; failures give an empty (refuse-all) configuration and the error.
pub(crate) fn load(domain: &str, source: &WatchSource) -> (Loaded, Reloaded) {
    let mut report = Reloaded {
        domain: domain.to_owned(),
        path: source.path().to_owned(),
        entries: 0,
        error: None,
        rejected: Vec::new(),
    };
    let loaded = match source {
        WatchSource::CurveDirectory { path, layout } => match load_directory(path, *layout) {
            Ok(load) => {
                report.rejected = load
                    .rejected
                    .iter()
                    .map(|r| format!("{}: {}", r.path.display(), r.cause))
                    .collect();
                Loaded::Curve(load.store)
            }
            Err(error) => {
                report.error = Some(error.to_string());
                Loaded::Curve(CertStore::new())
            }
        },
        WatchSource::PlainFile { path } => match std::fs::read_to_string(path) {
            Ok(text) => Loaded::Plain(PasswordTable::parse_password_file(&text)),
            Err(error) => {
                report.error = Some(format!("{}: {error}", path.display()));
                Loaded::Plain(PasswordTable::default())
            }
        },
    };
    report.entries = match &loaded {
        Loaded::Curve(store) => store.len(),
        Loaded::Plain(table) => table.len(),
    };
    if report.entries == 0 && report.error.is_none() {
        report.error = Some(format!("{} has no entries", source.path().display()));
    }
    (loaded, report)
}

/// The source's fingerprint; a source that cannot be listed has a fingerprint of its own,
/// so that its disappearance is a change too.
pub(crate) fn source_fingerprint(source: &WatchSource) -> u64 {
    match source {
        WatchSource::CurveDirectory { path, layout } => fingerprint(path, *layout).unwrap_or(0),
        WatchSource::PlainFile { path } => match std::fs::metadata(path) {
            Ok(meta) => {
                use std::hash::{Hash, Hasher};
                use std::os::unix::fs::MetadataExt;
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                (meta.len(), meta.mtime(), meta.mtime_nsec(), meta.ino()).hash(&mut hasher);
                hasher.finish() | 1
            }
            Err(_) => 0,
        },
    }
}

/// A running watch, owned by the policy actor.
pub(crate) struct Watching {
    /// Tells this watch's reads from those of a watch it replaced.
    pub(crate) generation: u64,
    pub(crate) source: WatchSource,
    pub(crate) on_reload: Option<ReloadCallback>,
    pub(crate) timer: SpawnHandle,
    /// The fingerprint of what is installed.
    pub(crate) applied: u64,
    /// The fingerprint seen at the previous look (a change applies once it holds still).
    pub(crate) seen: u64,
    /// Ignore results of looks started before the latest reload was installed.
    pub(crate) busy: bool,
    pub(crate) last: Reloaded,
}

impl Watching {
    pub(crate) fn source_path(&self) -> String {
        self.source.path().display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_sources_load_as_refuse_all_with_an_error() {
        let (loaded, report) = load(
            "d",
            &WatchSource::PlainFile {
                path: "/nonexistent/pw".into(),
            },
        );
        assert!(matches!(loaded, Loaded::Plain(t) if t.is_empty()));
        assert!(report.error.unwrap().contains("/nonexistent/pw"));
        let dir = WatchSource::CurveDirectory {
            path: "/nonexistent/dir".into(),
            layout: Layout::Pyzmq,
        };
        let (loaded, report) = load("d", &dir);
        assert!(matches!(loaded, Loaded::Curve(s) if s.is_empty()));
        assert!(report.error.is_some());
        assert_eq!(source_fingerprint(&dir), 0);
    }

    #[test]
    fn fingerprints_change_when_files_do() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        let source = WatchSource::PlainFile { path: file.clone() };
        assert_eq!(source_fingerprint(&source), 0);
        std::fs::write(&file, "a=b\n").unwrap();
        let first = source_fingerprint(&source);
        assert_ne!(first, 0);
        std::fs::write(&file, "a=b\nc=d\n").unwrap();
        assert_ne!(source_fingerprint(&source), first);
        let (_, report) = load("d", &source);
        assert_eq!((report.entries, report.error), (2, None));
    }
}
