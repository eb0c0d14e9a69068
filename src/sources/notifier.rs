//! Kernel notifications (the `notify` crate: inotify on Linux) turned into looks.
//!
//! One notifier per policy actor, shared by all its watches and created at the first watch:
//! inotify instances are limited per user. Each watch registers the directory it follows (a
//! password file's parent directory, so that a rename over the file or its deletion is seen).
//! Notifications only say *when* to look; what changed is always decided by a look, so a
//! lost or coalesced notification costs latency (polling catches up), never correctness.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use futures::channel::mpsc::{unbounded, UnboundedReceiver};
use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{Config, Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};

/// One notification as the notifier's thread delivers it.
pub(crate) struct Notice(pub(crate) notify::Result<Event>);

/// What a notification says about a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Touch {
    /// Removed or renamed away: look now, the removal applies at once.
    Gone(PathBuf),
    /// Closed after writing, or renamed into place: settled, read it at the next look.
    Settled(PathBuf),
    /// Created or being written: look, it settles later.
    Changed(PathBuf),
    /// Events were lost: look at everything.
    Everything,
}

/// What a notification means for the watches (pure, so it is tested without a kernel).
pub(crate) fn touches(notice: &Notice) -> Vec<Touch> {
    let event = match &notice.0 {
        Ok(event) if !event.need_rescan() => event,
        _ => return vec![Touch::Everything],
    };
    let each = |touch: fn(PathBuf) -> Touch| event.paths.iter().cloned().map(touch).collect();
    match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => each(Touch::Settled),
        // Opens and reads (ours included) change nothing.
        EventKind::Access(_) => Vec::new(),
        EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(RenameMode::From)) => {
            each(Touch::Gone)
        }
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => each(Touch::Settled),
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
            let mut paths = event.paths.iter().cloned();
            let from = paths.next().map(Touch::Gone);
            from.into_iter().chain(paths.map(Touch::Settled)).collect()
        }
        _ => each(Touch::Changed),
    }
}

/// The shared watcher and how many watches use each directory.
#[derive(Default)]
pub(crate) struct Notifier {
    watcher: Option<RecommendedWatcher>,
    /// Set once creating the watcher failed: every watch polls.
    unavailable: bool,
    users: HashMap<(PathBuf, bool), usize>,
}

impl Notifier {
    /// Creates the watcher on first use; its notifications arrive on the returned stream.
    pub(crate) fn start(&mut self) -> Option<UnboundedReceiver<Notice>> {
        if self.watcher.is_some() || self.unavailable {
            return None;
        }
        let (sender, receiver) = unbounded();
        let created = RecommendedWatcher::new(
            move |event| {
                let _ = sender.unbounded_send(Notice(event));
            },
            Config::default().with_follow_symlinks(false),
        );
        match created {
            Ok(watcher) => {
                self.watcher = Some(watcher);
                Some(receiver)
            }
            Err(error) => {
                log::warn!(
                    target: "actix_zap::messages::Watch",
                    "live reload: no kernel notifications ({error}); polling only"
                );
                self.unavailable = true;
                None
            }
        }
    }

    /// Follows `dir` (and its subdirectories if `recursive`); false if it cannot (e.g. the
    /// directory does not exist yet: the caller tries again later, polling meanwhile).
    pub(crate) fn register(&mut self, dir: &Path, recursive: bool) -> bool {
        let Some(watcher) = self.watcher.as_mut() else {
            return false;
        };
        let key = (dir.to_path_buf(), recursive);
        if let Some(count) = self.users.get_mut(&key) {
            *count += 1;
            return true;
        }
        let mode = if recursive {
            RecursiveMode::Recursive
        } else {
            RecursiveMode::NonRecursive
        };
        match watcher.watch(dir, mode) {
            Ok(()) => {
                self.users.insert(key, 1);
                true
            }
            Err(error) => {
                log::debug!(
                    target: "actix_zap::messages::Watch",
                    "live reload: cannot follow {}: {error}", dir.display()
                );
                false
            }
        }
    }

    /// Undoes one [`register`](Self::register).
    pub(crate) fn unregister(&mut self, dir: &Path, recursive: bool) {
        let key = (dir.to_path_buf(), recursive);
        let Some(count) = self.users.get_mut(&key) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            self.users.remove(&key);
            if let Some(watcher) = self.watcher.as_mut() {
                let _ = watcher.unwatch(dir);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, RemoveKind};

    fn notice(kind: EventKind, paths: &[&str]) -> Notice {
        let mut event = Event::new(kind);
        for path in paths {
            event = event.add_path(PathBuf::from(path));
        }
        Notice(Ok(event))
    }

    #[test]
    fn notifications_say_gone_settled_or_changed() {
        let p = |s: &str| PathBuf::from(s);
        let close = EventKind::Access(AccessKind::Close(AccessMode::Write));
        assert_eq!(
            touches(&notice(close, &["/d/a"])),
            [Touch::Settled(p("/d/a"))]
        );
        let read = EventKind::Access(AccessKind::Close(AccessMode::Read));
        assert!(touches(&notice(read, &["/d/a"])).is_empty());
        let removed = EventKind::Remove(RemoveKind::File);
        assert_eq!(
            touches(&notice(removed, &["/d/a"])),
            [Touch::Gone(p("/d/a"))]
        );
        let both = EventKind::Modify(ModifyKind::Name(RenameMode::Both));
        assert_eq!(
            touches(&notice(both, &["/d/a", "/d/b"])),
            [Touch::Gone(p("/d/a")), Touch::Settled(p("/d/b"))]
        );
        let to = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        assert_eq!(touches(&notice(to, &["/d/b"])), [Touch::Settled(p("/d/b"))]);
        let written = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        assert_eq!(
            touches(&notice(written, &["/d/a"])),
            [Touch::Changed(p("/d/a"))]
        );
        let created = EventKind::Create(CreateKind::File);
        assert_eq!(
            touches(&notice(created, &["/d/a"])),
            [Touch::Changed(p("/d/a"))]
        );
        let lost = Notice(Err(notify::Error::generic("overflow")));
        assert_eq!(touches(&lost), [Touch::Everything]);
    }
}
