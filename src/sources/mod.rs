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
//!   the files hold now: the watch's owned change, through the policy's one way in
//!   ([`Policy::apply`](crate::policy::Policy::apply)); every install is a [`Reloaded`] report.
//!
//! `files` is the sans-IO core (per-file state, what changed, what to install);
//! `reader` does a look's file I/O on a thread of its own, under a deadline, with the one
//! file reader of `certs` (the same listing and reads as
//! [`load_directory`](crate::certs::load_directory), which a `ConfigureCurve` of a directory
//! runs on such a thread too); `notifier` turns kernel notifications (the `notify` crate:
//! inotify on Linux) into looks. The file-watch actor (`actors::watch`) drives them.

pub(crate) mod files;
pub(crate) mod notifier;
#[cfg(feature = "postgres")]
pub mod postgres;
pub(crate) mod reader;

pub(crate) use reader::load_directory_within;
