//! The policy actor's side of live reload: polling fingerprints, debouncing, reloading off
//! the actix thread, and installing what was read (see `watch` for the types).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use actix::prelude::*;
use log::{debug, warn};

use super::messages::MechanismKind;
use super::policy_actor::{require_curve, PolicyActor};
use super::watch::{self, source_fingerprint, Loaded, Reloaded, Unwatch, Watch, Watches, Watching};
use crate::error::ConfigError;
use crate::policy::CurvePolicy;

impl PolicyActor {
    /// Ends the watch of a domain's mechanism (an explicit configuration replaces it).
    pub(super) fn stop_watch(
        &mut self,
        domain: &str,
        mechanism: MechanismKind,
        ctx: &mut Context<Self>,
    ) -> bool {
        match self.watches.remove(&(domain.to_owned(), mechanism)) {
            Some(watching) => {
                ctx.cancel_future(watching.timer);
                debug!(
                    "stopped watching {} for domain {domain:?}",
                    watching.source_path()
                );
                true
            }
            None => false,
        }
    }

    /// Reads the source off the actix thread, then installs what it holds.
    fn reload(
        &mut self,
        key: (String, MechanismKind),
    ) -> ResponseActFuture<Self, Result<Reloaded, ConfigError>> {
        let Some(watching) = self.watches.get_mut(&key) else {
            return Box::pin(fut::ready(Err(ConfigError::Stopped)));
        };
        watching.busy = true;
        let (source, generation) = (watching.source.clone(), watching.generation);
        let domain = key.0.clone();
        let read = tokio::task::spawn_blocking(move || {
            let fingerprint = source_fingerprint(&source);
            let (loaded, report) = watch::load(&domain, &source);
            (fingerprint, loaded, report)
        });
        Box::pin(read.into_actor(self).map(move |read, act, _| {
            let (fingerprint, loaded, report) =
                read.map_err(|join| ConfigError::LoadFailed(join.to_string()))?;
            act.install_watched(&key, generation, fingerprint, loaded, report)
        }))
    }

    fn install_watched(
        &mut self,
        key: &(String, MechanismKind),
        generation: u64,
        fingerprint: u64,
        loaded: Loaded,
        report: Reloaded,
    ) -> Result<Reloaded, ConfigError> {
        // Unwatched or replaced meanwhile: this read is stale, leave the policy alone.
        let Some(watching) = self
            .watches
            .get_mut(key)
            .filter(|w| w.generation == generation)
        else {
            return Err(ConfigError::Stopped);
        };
        watching.applied = fingerprint;
        watching.seen = fingerprint;
        watching.busy = false;
        watching.last = report.clone();
        let on_reload = watching.on_reload.clone();
        let domain = &key.0;
        match loaded {
            Loaded::Curve(store) => {
                self.install_curve(domain, CurvePolicy::Keys(Arc::new(store)))?
            }
            Loaded::Plain(table) => self.policy.replace_plain(domain, table),
        }
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
        if let Some(callback) = on_reload {
            if catch_unwind(AssertUnwindSafe(|| callback(&report))).is_err() {
                warn!("a reload callback panicked");
            }
        }
        Ok(report)
    }

    /// One look at a watched source: reload once a change has held still for an interval.
    fn look(&mut self, key: &(String, MechanismKind), ctx: &mut Context<Self>) {
        let Some(watching) = self.watches.get_mut(key) else {
            return;
        };
        if watching.busy {
            return;
        }
        watching.busy = true;
        let source = watching.source.clone();
        let key = key.clone();
        let fingerprint = tokio::task::spawn_blocking(move || source_fingerprint(&source));
        ctx.spawn(
            fingerprint
                .into_actor(self)
                .map(move |fingerprint, act, ctx| {
                    let Some(watching) = act.watches.get_mut(&key) else {
                        return;
                    };
                    let fingerprint = fingerprint.unwrap_or(0);
                    let settled = fingerprint == watching.seen;
                    watching.seen = fingerprint;
                    if fingerprint == watching.applied || !settled {
                        watching.busy = false;
                        return;
                    }
                    let reload = act.reload(key);
                    ctx.spawn(reload.map(|_, _, _| ()));
                }),
        );
    }
}

impl Handler<Watch> for PolicyActor {
    type Result = ResponseActFuture<Self, Result<Reloaded, ConfigError>>;

    fn handle(&mut self, msg: Watch, ctx: &mut Self::Context) -> Self::Result {
        let Watch {
            domain,
            source,
            interval,
            on_reload,
        } = msg;
        let mechanism = source.mechanism();
        let checked = match mechanism {
            MechanismKind::Curve => require_curve(zmq::has("curve")),
            _ => Ok(()),
        }
        .and_then(|()| Ok(crate::policy::check_domain(&domain)?));
        if let Err(error) = checked {
            return Box::pin(fut::ready(Err(error)));
        }
        self.stop_watch(&domain, mechanism, ctx);
        if mechanism == MechanismKind::Curve {
            self.curve_ticket(&domain);
        }
        let key = (domain.clone(), mechanism);
        let looked_at = key.clone();
        let timer = ctx.run_interval(interval, move |act, ctx| act.look(&looked_at, ctx));
        let last = Reloaded {
            domain,
            path: source.path().to_owned(),
            entries: 0,
            error: Some("not loaded yet".into()),
            rejected: Vec::new(),
        };
        let watching = Watching {
            generation: self.next_generation(),
            source,
            on_reload,
            timer,
            applied: 0,
            seen: 0,
            busy: true,
            last,
        };
        self.watches.insert(key.clone(), watching);
        self.reload(key)
    }
}

impl Handler<Unwatch> for PolicyActor {
    type Result = Result<bool, ConfigError>;

    fn handle(&mut self, msg: Unwatch, ctx: &mut Self::Context) -> Self::Result {
        Ok(self.stop_watch(&msg.domain, msg.mechanism, ctx))
    }
}

impl Handler<Watches> for PolicyActor {
    type Result = Result<Vec<Reloaded>, ConfigError>;

    fn handle(&mut self, _: Watches, _: &mut Self::Context) -> Self::Result {
        let mut all: Vec<Reloaded> = self.watches.values().map(|w| w.last.clone()).collect();
        all.sort_by(|a, b| (&a.domain, &a.path).cmp(&(&b.domain, &b.path)));
        Ok(all)
    }
}
