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

pub(crate) mod files;
pub(crate) mod notifier;
#[cfg(feature = "postgres")]
pub mod postgres;
pub(crate) mod reader;

#[cfg(test)]
pub(crate) use reader::PARALLEL_THRESHOLD;
pub(crate) use reader::{load_directory, load_directory_within};
