//! The file-watch actor: one per policy actor, started at the first [`Watch`]. It keeps every
//! watch's file state, starts looks (on a timer, and when a notification arrives), enforces one
//! look per watch and its deadline, and hands what a look found to the policy actor as the
//! watch's owned change ([`Reload`]) — through the one way in, which refuses it once the watch
//! no longer owns the domain. It never touches the policy itself.
//!
//! [`Watch`]: crate::messages::Watch

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix::WeakAddr;
use futures::channel::oneshot;
use log::{debug, warn};

use super::PolicyActor;
use crate::certs::Layout;
use crate::messages::error::{ConfigError, ReloadError};
use crate::messages::watch::{ReadHook, ReloadCallback, Reloaded, Watch, WatchSource, Watches};
use crate::messages::{MechanismKind, Stop};
use crate::policy::{Change, CurvePolicy, OwnerId, PlainTable};
use crate::sources::files::{reported, Config, Files, Install};
use crate::sources::notifier::{touches, Notice, Notifier, Touch};
use crate::sources::reader::{self, kind_of, Limits, Look, Looked};

/// The log target: a public path, what a user looks up.
const LOG_TARGET: &str = "actix_zap::messages::Watch";

type Key = (String, MechanismKind);

/// Starts following a source for a domain whose mechanism `owner` now owns (the policy actor
/// checked and claimed it). `first` gets the first load's report.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct Follow {
    /// The checked message (its `take_over` was used by the claim).
    pub(super) watch: Watch,
    pub(super) owner: OwnerId,
    pub(super) first: oneshot::Sender<Reloaded>,
}

/// The watch `owner` no longer owns its domain (unwatched, or taken over): end it; a look it
/// has outstanding is never handed over.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct EndWatch(pub(super) OwnerId);

/// A watch's owned change: what its look found (or refuse-all when the look failed).
/// Refused with [`ConfigError::Superseded`] once the watch no longer owns the domain.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), ConfigError>")]
pub(super) struct Reload {
    pub(super) owner: OwnerId,
    pub(super) change: Change,
}

/// Every watch of one policy actor, and their shared notifier.
pub(super) struct FileWatcher {
    /// Weak: the policy actor holds this actor's address, and stops it when it stops.
    policy: WeakAddr<PolicyActor>,
    watches: HashMap<Key, Watching>,
    notifier: Notifier,
    /// Numbers looks, so that a look of a replaced watch, or one past its deadline, is
    /// never installed.
    looks: u64,
}

impl Actor for FileWatcher {
    type Context = Context<Self>;
}

impl FileWatcher {
    pub(super) fn new(policy: WeakAddr<PolicyActor>) -> FileWatcher {
        FileWatcher {
            policy,
            watches: HashMap::new(),
            notifier: Notifier::default(),
            looks: 0,
        }
    }
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
    limits: Limits,
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

impl FileWatcher {
    /// Starts a look unless one is outstanding (then looks again once it is back).
    fn look(&mut self, key: &Key, ctx: &mut Context<Self>) {
        self.looks += 1;
        let id = self.looks;
        let Some(watching) = self.watches.get_mut(key) else {
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
            limits: watching.limits,
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

    /// A look is back: hand over what it found, unless the watch moved on meanwhile.
    fn looked(
        &mut self,
        key: &Key,
        id: u64,
        answer: Result<Result<Looked, crate::provider::Panicked>, oneshot::Canceled>,
        ctx: &mut Context<Self>,
    ) {
        let Some(watching) = self.watches.get_mut(key).filter(|w| w.look == Some(id)) else {
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
        let Some(watching) = self.watches.get_mut(key) else {
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
        let Some(watching) = self.watches.get_mut(key) else {
            return;
        };
        watching.files = None;
        let kind = kind_of(&watching.source);
        self.install(key, Install::refuse_all(kind, error), ctx);
    }

    /// Hands a look's result to the policy actor as the watch's owned change, and reports it
    /// once it is in force. Nothing else happens on this actor until the answer is back, so
    /// changes and reports keep the order of the looks.
    fn install(&mut self, key: &Key, install: Install, ctx: &mut Context<Self>) {
        let Some(watching) = self.watches.get(key) else {
            return;
        };
        let owner = watching.owner;
        let domain = key.0.clone();
        let Install {
            config,
            entries,
            error,
            rejected,
            skipped,
            warning,
            refused,
        } = install;
        let report = Reloaded {
            domain: domain.clone(),
            path: watching.source.path().to_owned(),
            entries,
            error: error.as_ref().map(|error| error.report()),
            rejected: rejected.iter().map(reported).chain(refused).collect(),
            skipped,
            warning,
        };
        let change = match config {
            Config::Curve(store) => Change::ConfigureCurve {
                domain,
                curve: CurvePolicy::Keys(Arc::new(store)),
            },
            Config::Plain(table) => Change::ConfigurePlain {
                domain,
                table: PlainTable::Clear(table),
            },
        };
        let Some(policy) = self.policy.upgrade() else {
            return ctx.stop(); // the policy actor is gone
        };
        let key = key.clone();
        let sent = policy.send(Reload { owner, change });
        ctx.wait(
            sent.into_actor(self)
                .map(move |answer, act, ctx| match answer {
                    Ok(Ok(())) => act.reported(&key, owner, report),
                    // Only if the watch no longer owns the domain: its end is on its way.
                    Ok(Err(error)) => warn!(
                        target: LOG_TARGET,
                        "reload for domain {:?} not installed: {error}", key.0
                    ),
                    Err(MailboxError::Closed | MailboxError::Timeout) => ctx.stop(),
                }),
        );
    }

    /// A reload is in force: log it, keep it for [`Watches`], answer the first load, call the
    /// watch's callback.
    fn reported(&mut self, key: &Key, owner: OwnerId, report: Reloaded) {
        let Some(watching) = self.watches.get_mut(key).filter(|w| w.owner == owner) else {
            return;
        };
        let domain = &key.0;
        match &report.error {
            Some(error) => {
                warn!(
                    target: LOG_TARGET,
                    "reload for domain {domain:?}: {error}; refusing everyone"
                )
            }
            None => debug!(
                target: LOG_TARGET,
                "reloaded {} for domain {domain:?}: {} entries",
                report.path.display(),
                report.entries
            ),
        }
        for rejected in &report.rejected {
            warn!(target: LOG_TARGET, "reload for domain {domain:?}: skipped {rejected}");
        }
        if let Some(warning) = &report.warning {
            warn!(target: LOG_TARGET, "reload for domain {domain:?}: {warning}");
        }
        if let Some(first) = watching.first.take() {
            let _ = first.send(report.clone());
        }
        if let Some(callback) = watching.on_reload.clone() {
            if crate::provider::call_guarded(|| callback(&report)).is_err() {
                warn!(target: LOG_TARGET, "a reload callback panicked");
            }
        }
        watching.last = report;
        self.register(key);
    }

    /// Registers the watch with the notifier if it is not yet (its directory may only now
    /// exist).
    fn register(&mut self, key: &Key) {
        let Some(followed) = self.watches.get_mut(key).and_then(|w| w.followed.as_mut()) else {
            return;
        };
        if !followed.registered {
            followed.registered = self.notifier.register(&followed.dir, followed.recursive);
        }
    }
}

impl Handler<Follow> for FileWatcher {
    type Result = ();

    fn handle(&mut self, msg: Follow, ctx: &mut Self::Context) {
        let Follow {
            watch,
            owner,
            first,
        } = msg;
        let Watch {
            domain,
            source,
            interval,
            read_deadline,
            polling_only,
            on_reload,
            reader: hook,
            max_file_bytes,
            max_entries,
            ..
        } = watch;
        let limits = Limits {
            file_bytes: max_file_bytes,
            entries: max_entries,
        };
        let key = (domain.clone(), source.mechanism());
        // A watch it replaces was displaced first, and its end came before this message.
        self.end(&key, ctx);
        let followed = if polling_only {
            None
        } else {
            if let Some(notices) = self.notifier.start() {
                ctx.add_stream(notices);
            }
            Some(Followed::of(&source))
        };
        let ticking = key.clone();
        let timer = ctx.run_interval(interval, move |act, ctx| act.look(&ticking, ctx));
        let last = Reloaded {
            domain,
            path: source.path().to_owned(),
            entries: 0,
            error: Some(ReloadError::NotLoadedYet),
            rejected: Vec::new(),
            skipped: Vec::new(),
            warning: None,
        };
        let watching = Watching {
            owner,
            source,
            interval,
            read_deadline,
            hook,
            on_reload,
            limits,
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
        self.watches.insert(key.clone(), watching);
        // Follow before the first look, so no change after it goes unnoticed.
        self.register(&key);
        self.look(&key, ctx);
    }
}

impl FileWatcher {
    /// Ends the watch of a key, if any: stops its timer and its notifications; an outstanding
    /// look is never handed over, and a first load never answered (`Superseded`).
    fn end(&mut self, key: &Key, ctx: &mut Context<Self>) {
        let Some(watching) = self.watches.remove(key) else {
            return;
        };
        ctx.cancel_future(watching.timer);
        if let Some(followed) = &watching.followed {
            if followed.registered {
                self.notifier.unregister(&followed.dir, followed.recursive);
            }
        }
        debug!(
            target: LOG_TARGET,
            "stopped watching {} for domain {:?}",
            watching.source.path().display(),
            key.0
        );
    }
}

impl Handler<EndWatch> for FileWatcher {
    type Result = ();

    fn handle(&mut self, msg: EndWatch, ctx: &mut Self::Context) {
        let key = self
            .watches
            .iter()
            .find(|(_, watching)| watching.owner == msg.0)
            .map(|(key, _)| key.clone());
        if let Some(key) = key {
            self.end(&key, ctx);
        }
    }
}

impl Handler<Watches> for FileWatcher {
    type Result = MessageResult<Watches>;

    fn handle(&mut self, _: Watches, _: &mut Self::Context) -> Self::Result {
        let mut all: Vec<Reloaded> = self.watches.values().map(|w| w.last.clone()).collect();
        all.sort_by(|a, b| (&a.domain, &a.path).cmp(&(&b.domain, &b.path)));
        MessageResult(all)
    }
}

impl Handler<Stop> for FileWatcher {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
impl StreamHandler<Notice> for FileWatcher {
    fn handle(&mut self, notice: Notice, ctx: &mut Context<Self>) {
        let mut due: Vec<Key> = Vec::new();
        let mut lost = Vec::new();
        for touch in touches(&notice) {
            for (key, watching) in &mut self.watches {
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
            self.notifier.unregister(&dir, recursive);
        }
        for key in due {
            self.look(&key, ctx);
        }
    }

    /// The notifier lives as long as the actor; its stream ending changes nothing.
    fn finished(&mut self, _: &mut Context<Self>) {}
}
