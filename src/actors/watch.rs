//! The policy actor's side of live reload, kept thin: start looks (on a timer, and when a
//! notification arrives), enforce one look per watch and its deadline, install what a look
//! brings back, and report.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures::channel::oneshot;
use log::{debug, warn};

use super::{require_curve, PolicyActor};
use crate::certs::Layout;
use crate::messages::error::{ConfigError, ReloadError};
use crate::messages::watch::{
    ReadHook, ReloadCallback, Reloaded, Unwatch, Watch, WatchSource, Watches,
};
use crate::messages::MechanismKind;
use crate::policy::{Change, CurvePolicy, Origin, Owner, OwnerId, PlainTable};
use crate::sources::files::{reported, Config, Files, Install};
use crate::sources::notifier::{touches, Notice, Notifier, Touch};
use crate::sources::reader::{self, kind_of, Look, Looked};

type Key = (String, MechanismKind);

/// Every watch of one policy actor, and their shared notifier.
#[derive(Default)]
pub(crate) struct Sources {
    watches: HashMap<Key, Watching>,
    notifier: Notifier,
    /// Numbers looks, so that a look of a replaced watch, or one past its deadline, is
    /// never installed.
    looks: u64,
}

/// Where notifications for a watch come from, and how their paths map to the source's.
struct Followed {
    /// The directory registered with the notifier (canonical, as notifications name it).
    dir: PathBuf,
    recursive: bool,
    /// Whether the notifier follows `dir` now.
    registered: bool,
}

/// A running watch.
struct Watching {
    /// The watch's id as the owner of its domain's mechanism.
    owner: OwnerId,
    source: WatchSource,
    interval: Duration,
    read_deadline: Duration,
    hook: Option<ReadHook>,
    on_reload: Option<ReloadCallback>,
    timer: SpawnHandle,
    followed: Option<Followed>,
    /// The file state; away (`None`) while a look holds it.
    files: Option<Files>,
    /// The look outstanding, if any; `overdue` once it passed its deadline.
    look: Option<u64>,
    overdue: bool,
    /// The outstanding look's deadline timer.
    deadline: Option<SpawnHandle>,
    /// Look again as soon as the outstanding look is back.
    again: bool,
    /// Files closed after writing (or renamed into place) since the last look started.
    closed: BTreeSet<PathBuf>,
    last: Reloaded,
    /// Who waits for the first load (the `Watch` message's answer).
    first: Option<oneshot::Sender<Reloaded>>,
}

impl Followed {
    fn of(source: &WatchSource) -> Followed {
        let absolute = |path: &Path| {
            path.canonicalize().unwrap_or_else(|_| {
                std::env::current_dir()
                    .map(|cwd| cwd.join(path))
                    .unwrap_or_else(|_| path.to_path_buf())
            })
        };
        let (dir, recursive) = match source {
            WatchSource::CurveDirectory { path, layout } => {
                (absolute(path), *layout == Layout::Czmq)
            }
            WatchSource::PlainFile { path } => {
                let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
                (absolute(parent.unwrap_or(Path::new("."))), false)
            }
        };
        Followed {
            dir,
            recursive,
            registered: false,
        }
    }

    /// The source's own name for a notified path, if the path concerns the source.
    fn source_path(&self, source: &WatchSource, notified: &Path) -> Option<PathBuf> {
        match source {
            WatchSource::CurveDirectory { path, .. } => notified
                .strip_prefix(&self.dir)
                .ok()
                .map(|relative| path.join(relative)),
            WatchSource::PlainFile { path } => {
                let name = path.file_name()?;
                (notified == self.dir || notified == self.dir.join(name)).then(|| path.clone())
            }
        }
    }
}

impl PolicyActor {
    /// Ends the watch of a domain's mechanism once it no longer owns it (unwatched, or taken
    /// over); its outstanding look, if any, is never installed.
    pub(crate) fn end_watch(
        &mut self,
        domain: &str,
        mechanism: MechanismKind,
        ctx: &mut Context<Self>,
    ) {
        let Some(watching) = self.sources.watches.remove(&(domain.to_owned(), mechanism)) else {
            return;
        };
        ctx.cancel_future(watching.timer);
        if let Some(followed) = &watching.followed {
            if followed.registered {
                let notifier = &mut self.sources.notifier;
                notifier.unregister(&followed.dir, followed.recursive);
            }
        }
        debug!(
            "stopped watching {} for domain {domain:?}",
            watching.source.path().display()
        );
    }

    /// Starts a look unless one is outstanding (then looks again once it is back).
    fn look(&mut self, key: &Key, ctx: &mut Context<Self>) {
        self.sources.looks += 1;
        let id = self.sources.looks;
        let Some(watching) = self.sources.watches.get_mut(key) else {
            return;
        };
        if watching.look.is_some() {
            watching.again = true;
            return;
        }
        let look = Look {
            source: watching.source.clone(),
            files: watching.files.take().unwrap_or_default(),
            closed: std::mem::take(&mut watching.closed),
            settle: watching.interval / 2,
            hook: watching.hook.clone(),
        };
        let deadline = watching.read_deadline;
        let answered = match reader::spawn(look) {
            Ok(answered) => answered,
            Err(error) => {
                let cause = error.to_string();
                return self.fail(key, ReloadError::NoThread { cause }, ctx);
            }
        };
        watching.look = Some(id);
        watching.overdue = false;
        let key = key.clone();
        let overdue = key.clone();
        watching.deadline =
            Some(ctx.run_later(deadline, move |act, ctx| act.overdue(&overdue, id, ctx)));
        ctx.spawn(answered.into_actor(self).map(move |answer, act, ctx| {
            act.looked(&key, id, answer, ctx);
        }));
    }

    /// A look is back: install what it found, unless the watch moved on meanwhile.
    fn looked(
        &mut self,
        key: &Key,
        id: u64,
        answer: Result<Result<Looked, crate::provider::Panicked>, oneshot::Canceled>,
        ctx: &mut Context<Self>,
    ) {
        let Some(watching) = self
            .sources
            .watches
            .get_mut(key)
            .filter(|w| w.look == Some(id))
        else {
            return; // unwatched or replaced meanwhile: this look is stale
        };
        watching.look = None;
        if let Some(deadline) = watching.deadline.take() {
            ctx.cancel_future(deadline);
        }
        let overdue = std::mem::take(&mut watching.overdue);
        let again = std::mem::take(&mut watching.again) || overdue;
        match answer {
            // Past its deadline the domain already failed closed: start afresh.
            Ok(Ok(_)) if overdue => {}
            Ok(Ok(Looked { files, install })) => {
                watching.files = Some(files);
                if let Some(install) = install {
                    self.install(key, install, ctx);
                }
            }
            Ok(Err(_)) | Err(_) => {
                let path = watching.source.path().to_owned();
                self.fail(key, ReloadError::Panicked { path }, ctx);
            }
        }
        if again {
            self.look(key, ctx);
        }
    }

    /// A look passed its deadline: the domain refuses that mechanism, and the watch looks
    /// again once the hung read returns (never two reads at once).
    fn overdue(&mut self, key: &Key, id: u64, ctx: &mut Context<Self>) {
        let Some(watching) = self.sources.watches.get_mut(key) else {
            return;
        };
        if watching.look != Some(id) || watching.overdue {
            return;
        }
        watching.overdue = true;
        let error = ReloadError::TimedOut {
            path: watching.source.path().to_owned(),
            deadline: watching.read_deadline,
        };
        self.fail(key, error, ctx);
    }

    /// Refuses everyone of the watch's mechanism, and says why.
    fn fail(&mut self, key: &Key, error: ReloadError, ctx: &mut Context<Self>) {
        let Some(watching) = self.sources.watches.get_mut(key) else {
            return;
        };
        watching.files = None;
        let kind = kind_of(&watching.source);
        self.install(key, Install::refuse_all(kind, error), ctx);
    }

    /// Installs a look's result through the one way in, as the watch (the domain's owner),
    /// and reports it.
    fn install(&mut self, key: &Key, install: Install, ctx: &mut Context<Self>) {
        let domain = &key.0;
        let Some(owner) = self.sources.watches.get(key).map(|w| w.owner) else {
            return;
        };
        let Install {
            config,
            entries,
            error,
            rejected,
            warning,
        } = install;
        let change = match config {
            Config::Curve(store) => Change::ConfigureCurve {
                domain: domain.clone(),
                curve: CurvePolicy::Keys(Arc::new(store)),
            },
            Config::Plain(table) => Change::ConfigurePlain {
                domain: domain.clone(),
                table: PlainTable::Clear(table),
            },
        };
        if let Err(error) = self.change(Origin::Owner(owner), change, ctx) {
            // Only if the watch no longer owns the domain, which ends it first.
            warn!("reload for domain {domain:?} not installed: {error}");
            return;
        }
        let Some(watching) = self.sources.watches.get_mut(key) else {
            return;
        };
        let report = Reloaded {
            domain: domain.clone(),
            path: watching.source.path().to_owned(),
            entries,
            error: error.as_ref().map(|error| error.report()),
            rejected: rejected.iter().map(reported).collect(),
            warning,
        };
        match &report.error {
            Some(error) => warn!("reload for domain {domain:?}: {error}; refusing everyone"),
            None => debug!(
                "reloaded {} for domain {domain:?}: {} entries",
                report.path.display(),
                report.entries
            ),
        }
        for rejected in &report.rejected {
            warn!("reload for domain {domain:?}: skipped {rejected}");
        }
        if let Some(warning) = &report.warning {
            warn!("reload for domain {domain:?}: {warning}");
        }
        watching.last = report.clone();
        if let Some(first) = watching.first.take() {
            let _ = first.send(report.clone());
        }
        if let Some(callback) = watching.on_reload.clone() {
            if crate::provider::call_guarded(|| callback(&report)).is_err() {
                warn!("a reload callback panicked");
            }
        }
        self.follow(key);
    }

    /// Registers the watch with the notifier if it is not yet (its directory may only now
    /// exist).
    fn follow(&mut self, key: &Key) {
        let Some(followed) = self
            .sources
            .watches
            .get_mut(key)
            .and_then(|w| w.followed.as_mut())
        else {
            return;
        };
        if !followed.registered {
            followed.registered = self
                .sources
                .notifier
                .register(&followed.dir, followed.recursive);
        }
    }
}

impl StreamHandler<Notice> for PolicyActor {
    fn handle(&mut self, notice: Notice, ctx: &mut Context<Self>) {
        let mut due: Vec<Key> = Vec::new();
        let mut lost = Vec::new();
        for touch in touches(&notice) {
            for (key, watching) in &mut self.sources.watches {
                let Some(followed) = &mut watching.followed else {
                    continue;
                };
                let path = match &touch {
                    Touch::Everything => None,
                    Touch::Gone(p) | Touch::Settled(p) | Touch::Changed(p) => {
                        match followed.source_path(&watching.source, p) {
                            Some(path) => Some(path),
                            None => continue,
                        }
                    }
                };
                match (&touch, path) {
                    (Touch::Settled(_), Some(path)) => {
                        watching.closed.insert(path);
                    }
                    // Written again after it was closed: not settled any more.
                    (Touch::Changed(_), Some(path)) => {
                        watching.closed.remove(&path);
                    }
                    // The followed directory itself went away: follow it again once a look
                    // finds it back.
                    (Touch::Gone(p), _) if *p == followed.dir && followed.registered => {
                        followed.registered = false;
                        lost.push((followed.dir.clone(), followed.recursive));
                    }
                    _ => {}
                }
                if !due.contains(key) {
                    due.push(key.clone());
                }
            }
        }
        for (dir, recursive) in lost {
            self.sources.notifier.unregister(&dir, recursive);
        }
        for key in due {
            self.look(&key, ctx);
        }
    }

    /// The notifier lives as long as the actor; its stream ending changes nothing.
    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl Handler<Watch> for PolicyActor {
    type Result = ResponseActFuture<Self, Result<Reloaded, ConfigError>>;

    fn handle(&mut self, msg: Watch, ctx: &mut Self::Context) -> Self::Result {
        // Validate everything first: a refused message changes nothing.
        let mechanism = msg.source.mechanism();
        let checked = match mechanism {
            MechanismKind::Curve => require_curve(zmq::has("curve")),
            _ => Ok(()),
        }
        .and_then(|()| Ok(crate::policy::check_domain(&msg.domain)?))
        .and_then(|()| Ok(msg.check()?));
        if let Err(error) = checked {
            return Box::pin(fut::ready(Err(error)));
        }
        let Watch {
            domain,
            source,
            interval,
            read_deadline,
            polling_only,
            take_over,
            on_reload,
            reader: hook,
        } = msg;
        // The watch owns the domain's mechanism from now on: refused on a domain another watch
        // or a store owns unless it takes over (which ends that owner's hold).
        let owner = self.policy.new_owner_id();
        let claim = Change::Claim {
            domain: domain.clone(),
            mechanism,
            owner: Owner::Watch {
                id: owner,
                path: source.path().to_owned(),
            },
        };
        if let Err(error) = self.change(Origin::Hand { take_over }, claim, ctx) {
            return Box::pin(fut::ready(Err(error)));
        }
        let followed = if polling_only {
            None
        } else {
            if let Some(notices) = self.sources.notifier.start() {
                ctx.add_stream(notices);
            }
            Some(Followed::of(&source))
        };
        let key = (domain.clone(), mechanism);
        let ticking = key.clone();
        let timer = ctx.run_interval(interval, move |act, ctx| act.look(&ticking, ctx));
        let (first, loaded) = oneshot::channel();
        let last = Reloaded {
            domain,
            path: source.path().to_owned(),
            entries: 0,
            error: Some(ReloadError::NotLoadedYet),
            rejected: Vec::new(),
            warning: None,
        };
        let watching = Watching {
            owner,
            source,
            interval,
            read_deadline,
            hook,
            on_reload,
            timer,
            followed,
            files: None,
            look: None,
            overdue: false,
            deadline: None,
            again: false,
            closed: BTreeSet::new(),
            last,
            first: Some(first),
        };
        self.sources.watches.insert(key.clone(), watching);
        // Follow before the first look, so no change after it goes unnoticed.
        self.follow(&key);
        self.look(&key, ctx);
        Box::pin(fut::wrap_future(async move {
            // The answer is dropped unsent when a later message replaced (or ended) this watch
            // before its first load, or when the authenticator stopped.
            loaded.await.map_err(|_| ConfigError::Superseded)
        }))
    }
}

impl Handler<Unwatch> for PolicyActor {
    type Result = Result<bool, ConfigError>;

    fn handle(&mut self, msg: Unwatch, ctx: &mut Self::Context) -> Self::Result {
        let Unwatch { domain, mechanism } = msg;
        let change = Change::Release { domain, mechanism };
        Ok(self.change(Origin::HAND, change, ctx)?.existed())
    }
}

impl Handler<Watches> for PolicyActor {
    type Result = MessageResult<Watches>;

    fn handle(&mut self, _: Watches, _: &mut Self::Context) -> Self::Result {
        let mut all: Vec<Reloaded> = self
            .sources
            .watches
            .values()
            .map(|w| w.last.clone())
            .collect();
        all.sort_by(|a, b| (&a.domain, &a.path).cmp(&(&b.domain, &b.path)));
        MessageResult(all)
    }
}
