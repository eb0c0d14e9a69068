//! `PolicyActor`: owns the [`Policy`], applies configuration messages, decides requests.
//!
//! Decisions that need no provider are answered inside the handler. Provider lookups run
//! concurrently (asynchronous ones on this thread, synchronous ones on the bounded pool),
//! each under the deadline and with panics caught, so one slow or broken provider delays
//! only its own client.

use std::collections::HashMap;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use futures::future::{ready, LocalBoxFuture};
use futures::FutureExt as _;
use log::{debug, warn};

use super::messages::*;
use super::observe::{Observers, Stats, SubscriptionId};
use super::pool::{BlockingPool, JobError};
use super::watch::{self, source_fingerprint, Loaded, Reloaded, Unwatch, Watch, Watches, Watching};
use crate::certs::{load_directory, CertStore};
use crate::error::ConfigError;
use crate::policy::{
    Consultation, CurvePolicy, Decision, ListKind, Policy, PolicySnapshot, ProviderFailure, Scope,
};
use crate::provider::{CurveVerdict, Provider, ProviderError};
use crate::settings::Settings;
use crate::zap::{Reply, Request};

/// Fails unless the linked libzmq can do CURVE (`zmq::has("curve")`).
pub(crate) fn require_curve(has_curve: Option<bool>) -> Result<(), ConfigError> {
    match has_curve {
        Some(true) => Ok(()),
        _ => Err(ConfigError::NoCurveSupport),
    }
}

/// The actor that owns the authentication policy. See the [module docs](self).
pub struct PolicyActor {
    policy: Policy,
    settings: Settings,
    pool: BlockingPool,
    /// The latest CURVE configuration per domain; a directory load applies only if no later
    /// configuration of its domain arrived while it was reading files.
    curve_tickets: HashMap<String, u64>,
    next_ticket: u64,
    observers: Observers,
    watches: HashMap<(String, MechanismKind), Watching>,
}

impl PolicyActor {
    /// A policy actor with an empty policy (everything that needs a policy is refused).
    pub fn new(settings: Settings) -> std::io::Result<Self> {
        let pool = BlockingPool::new(settings.provider_threads, settings.provider_queue)?;
        Ok(PolicyActor {
            policy: Policy::default(),
            settings,
            pool,
            curve_tickets: HashMap::new(),
            next_ticket: 0,
            observers: Observers::default(),
            watches: HashMap::new(),
        })
    }

    fn curve_ticket(&mut self, domain: &str) -> u64 {
        self.next_ticket += 1;
        self.curve_tickets
            .insert(domain.to_owned(), self.next_ticket);
        self.next_ticket
    }

    fn install_curve(&mut self, domain: &str, curve: CurvePolicy) -> Result<(), ConfigError> {
        require_curve(zmq::has("curve"))?;
        self.policy.configure_curve(domain, curve)?;
        Ok(())
    }

    /// Runs the provider and then the user-id mapping (whichever the consultation needs),
    /// together under one deadline, with panics caught, and builds the reply.
    fn consult(&self, consultation: Consultation) -> impl Future<Output = Reply> {
        let deadline = tokio::time::Instant::now() + self.settings.provider_deadline;
        let (domain, key) = (consultation.domain.clone(), consultation.public_key);
        let verdict: LocalBoxFuture<'static, Result<CurveVerdict, ProviderFailure>> =
            match &consultation.provider {
                None => Box::pin(ready(Ok(consultation.admitted_without_provider()))),
                Some(Provider::Blocking(provider)) => {
                    let provider = Arc::clone(provider);
                    on_pool(&self.pool, move || provider.check_curve(&domain, &key))
                }
                Some(Provider::Async(provider)) => {
                    match catch_unwind(AssertUnwindSafe(|| provider.check_curve(&domain, &key))) {
                        Err(_) => Box::pin(ready(Err(ProviderFailure::Panicked))),
                        Ok(future) => Box::pin(async move {
                            match AssertUnwindSafe(future).catch_unwind().await {
                                Ok(Ok(verdict)) => Ok(verdict),
                                Ok(Err(error)) => Err(ProviderFailure::Error(error)),
                                Err(_) => Err(ProviderFailure::Panicked),
                            }
                        }),
                    }
                }
            };
        let pool = self.pool.clone();
        async move {
            let mut verdict = within(deadline, verdict).await;
            if let (Ok(CurveVerdict::Admit(admission)), Some(map)) =
                (&mut verdict, consultation.user_id_mapper.clone())
            {
                if admission.user_id.is_none() {
                    match within(deadline, on_pool(&pool, move || map(&key))).await {
                        Ok(user_id) => admission.user_id = Some(user_id),
                        Err(failure) => verdict = Err(failure),
                    }
                }
            }
            if let Err(failure) = &verdict {
                warn!(
                    target: "actix_zap::provider",
                    "CURVE provider or user-id mapping for domain {:?}, key {}: {failure}",
                    consultation.domain, consultation.public_key
                );
            }
            consultation.finish(verdict)
        }
    }
}

/// `future`'s answer, or `TimedOut` at the deadline.
async fn within<T>(
    deadline: tokio::time::Instant,
    future: impl Future<Output = Result<T, ProviderFailure>>,
) -> Result<T, ProviderFailure> {
    tokio::time::timeout_at(deadline, future)
        .await
        .unwrap_or(Err(ProviderFailure::TimedOut))
}

/// Runs user code on the pool; a full queue is `Overloaded`, a panic `Panicked`.
fn on_pool<T: Send + 'static>(
    pool: &BlockingPool,
    job: impl FnOnce() -> Result<T, ProviderError> + Send + 'static,
) -> LocalBoxFuture<'static, Result<T, ProviderFailure>> {
    match pool.run(job) {
        Err(_) => Box::pin(ready(Err(ProviderFailure::Overloaded))),
        Ok(answer) => Box::pin(async move {
            match answer.await {
                Ok(Ok(Ok(value))) => Ok(value),
                Ok(Ok(Err(error))) => Err(ProviderFailure::Error(error)),
                Ok(Err(JobError::Overloaded)) => Err(ProviderFailure::Overloaded),
                Ok(Err(JobError::Panicked)) | Err(_) => Err(ProviderFailure::Panicked),
            }
        }),
    }
}

impl Actor for PolicyActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Requests arrive in bursts of up to `max_in_flight` (the ZapSocket's bound); room for
        // all of them plus configuration messages means nobody waits for mailbox space.
        ctx.set_mailbox_capacity(self.settings.max_in_flight.saturating_add(64));
    }
}

fn log_decision(frames: &[Vec<u8>], reply: &Reply) {
    if !log::log_enabled!(target: "actix_zap::decision", log::Level::Debug) {
        return;
    }
    if let Ok(request) = Request::parse(frames) {
        debug!(
            target: "actix_zap::decision",
            "{} {:?} domain={:?} address={} mechanism={} user_id={:?}",
            reply.status,
            reply.text,
            request.domain,
            request.address,
            request.mechanism.name(),
            reply.user_id
        );
    } else {
        debug!(target: "actix_zap::decision", "{} {:?} for a malformed request", reply.status, reply.text);
    }
}

impl PolicyActor {
    fn decided(&mut self, frames: &[Vec<u8>], reply: &Reply, received: Instant) {
        log_decision(frames, reply);
        self.observers.record(frames, reply, received.elapsed());
    }
}

impl Handler<Authenticate> for PolicyActor {
    type Result = ActorResponse<Self, Option<Reply>>;

    fn handle(
        &mut self,
        Authenticate(frames): Authenticate,
        _: &mut Self::Context,
    ) -> Self::Result {
        let received = Instant::now();
        match self.policy.handle(&frames) {
            Decision::Reply(reply) => {
                self.decided(&frames, &reply, received);
                ActorResponse::reply(Some(reply))
            }
            Decision::Drop(error) => {
                warn!(target: "actix_zap::decision", "dropped a request: {error}");
                self.observers.dropped();
                ActorResponse::reply(None)
            }
            Decision::Consult(consultation) => {
                let reply = self.consult(consultation);
                ActorResponse::r#async(reply.into_actor(self).map(move |reply, act, _| {
                    act.decided(&frames, &reply, received);
                    Some(reply)
                }))
            }
        }
    }
}

impl Handler<Inspect> for PolicyActor {
    type Result = Result<PolicySnapshot, ConfigError>;

    fn handle(&mut self, _: Inspect, _: &mut Self::Context) -> Self::Result {
        Ok(self.policy.snapshot())
    }
}

impl Handler<Subscribe> for PolicyActor {
    type Result = Result<SubscriptionId, ConfigError>;

    fn handle(&mut self, msg: Subscribe, _: &mut Self::Context) -> Self::Result {
        Ok(self.observers.subscribe(msg.0))
    }
}

impl Handler<Unsubscribe> for PolicyActor {
    type Result = Result<bool, ConfigError>;

    fn handle(&mut self, msg: Unsubscribe, _: &mut Self::Context) -> Self::Result {
        Ok(self.observers.unsubscribe(msg.0))
    }
}

impl Handler<GetStats> for PolicyActor {
    type Result = Result<Stats, ConfigError>;

    fn handle(&mut self, _: GetStats, _: &mut Self::Context) -> Self::Result {
        Ok(self.observers.stats())
    }
}

impl Handler<Allow> for PolicyActor {
    type Result = Result<(), ConfigError>;

    fn handle(&mut self, msg: Allow, _: &mut Self::Context) -> Self::Result {
        debug!("allow {} ({:?})", list(&msg.addresses), msg.scope);
        Ok(self
            .policy
            .add_addresses(&msg.scope, ListKind::Allow, msg.addresses)?)
    }
}

impl Handler<Deny> for PolicyActor {
    type Result = Result<(), ConfigError>;

    fn handle(&mut self, msg: Deny, _: &mut Self::Context) -> Self::Result {
        debug!("deny {} ({:?})", list(&msg.addresses), msg.scope);
        Ok(self
            .policy
            .add_addresses(&msg.scope, ListKind::Deny, msg.addresses)?)
    }
}

fn list(patterns: &[impl std::fmt::Display]) -> String {
    patterns
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Handler<RemoveAddresses> for PolicyActor {
    type Result = Result<usize, ConfigError>;

    fn handle(&mut self, msg: RemoveAddresses, _: &mut Self::Context) -> Self::Result {
        Ok(self.policy.remove_addresses(&msg.scope, &msg.addresses))
    }
}

impl Handler<SetAddressRules> for PolicyActor {
    type Result = Result<(), ConfigError>;

    fn handle(&mut self, msg: SetAddressRules, _: &mut Self::Context) -> Self::Result {
        Ok(self.policy.set_address_rules(&Scope::Global, msg.0)?)
    }
}

impl Handler<SetDomainAddressRules> for PolicyActor {
    type Result = Result<(), ConfigError>;

    fn handle(&mut self, msg: SetDomainAddressRules, _: &mut Self::Context) -> Self::Result {
        let scope = Scope::Domain(msg.domain);
        Ok(self.policy.set_address_rules(&scope, msg.rules)?)
    }
}

impl Handler<ConfigurePlain> for PolicyActor {
    type Result = Result<(), ConfigError>;

    fn handle(&mut self, msg: ConfigurePlain, ctx: &mut Self::Context) -> Self::Result {
        self.stop_watch(&msg.domain, MechanismKind::Plain, ctx);
        debug!(
            "configure PLAIN for domain {:?}: {} user(s)",
            msg.domain,
            msg.passwords.len()
        );
        Ok(self.policy.configure_plain(&msg.domain, msg.passwords)?)
    }
}

impl Handler<ConfigureCurve> for PolicyActor {
    type Result = ResponseActFuture<Self, Result<CurveReport, ConfigError>>;

    fn handle(&mut self, msg: ConfigureCurve, ctx: &mut Self::Context) -> Self::Result {
        let ConfigureCurve { domain, source } = msg;
        self.stop_watch(&domain, MechanismKind::Curve, ctx);
        let ticket = self.curve_ticket(&domain);
        let mut installed = |curve, report| -> Self::Result {
            Box::pin(fut::ready(
                self.install_curve(&domain, curve).map(|()| report),
            ))
        };
        match source {
            CurveSource::AllowAny => installed(CurvePolicy::AllowAny, CurveReport::default()),
            CurveSource::Keys(store) => {
                let report = CurveReport {
                    keys: store.len(),
                    rejected: Vec::new(),
                };
                installed(CurvePolicy::Keys(Arc::new(store)), report)
            }
            CurveSource::Directory { path, layout } => {
                let load = tokio::task::spawn_blocking(move || load_directory(&path, layout));
                Box::pin(load.into_actor(self).map(move |loaded, act, _| {
                    if act.curve_tickets.get(&domain) != Some(&ticket) {
                        debug!(
                            "CURVE directory for {domain:?} superseded by a later configuration"
                        );
                        return Ok(CurveReport::default());
                    }
                    let error = match loaded {
                        Ok(Ok(load)) => {
                            let report = CurveReport {
                                keys: load.store.len(),
                                rejected: load.rejected,
                            };
                            debug!("CURVE for domain {domain:?}: {} key(s)", report.keys);
                            act.install_curve(&domain, CurvePolicy::Keys(Arc::new(load.store)))?;
                            return Ok(report);
                        }
                        Ok(Err(error)) => ConfigError::from(error),
                        Err(join) => ConfigError::LoadFailed(join.to_string()),
                    };
                    // Fail closed: an unreadable directory admits nobody in this domain.
                    warn!("CURVE for domain {domain:?}: {error}; refusing every key");
                    act.install_curve(&domain, CurvePolicy::Keys(Arc::new(CertStore::new())))?;
                    Err(error)
                }))
            }
        }
    }
}

impl Handler<ConfigureCurveCallback> for PolicyActor {
    type Result = Result<(), ConfigError>;

    fn handle(&mut self, msg: ConfigureCurveCallback, ctx: &mut Self::Context) -> Self::Result {
        self.stop_watch(&msg.domain, MechanismKind::Curve, ctx);
        self.curve_ticket(&msg.domain);
        debug!(
            "configure CURVE provider ({}) for domain {:?}",
            msg.provider.kind(),
            msg.domain
        );
        self.install_curve(&msg.domain, CurvePolicy::Provider(msg.provider))
    }
}

impl Handler<ConfigureGssapi> for PolicyActor {
    type Result = Result<(), ConfigError>;

    fn handle(&mut self, msg: ConfigureGssapi, _: &mut Self::Context) -> Self::Result {
        Ok(self.policy.configure_gssapi(&msg.domain, msg.policy)?)
    }
}

impl Handler<Unconfigure> for PolicyActor {
    type Result = Result<bool, ConfigError>;

    fn handle(&mut self, msg: Unconfigure, ctx: &mut Self::Context) -> Self::Result {
        self.stop_watch(&msg.domain, msg.mechanism, ctx);
        Ok(match msg.mechanism {
            MechanismKind::Plain => self.policy.unconfigure_plain(&msg.domain),
            MechanismKind::Curve => {
                self.curve_ticket(&msg.domain);
                self.policy.unconfigure_curve(&msg.domain)
            }
            MechanismKind::Gssapi => self.policy.unconfigure_gssapi(&msg.domain),
        })
    }
}

impl Handler<SetCurveUserId> for PolicyActor {
    type Result = Result<(), ConfigError>;

    fn handle(&mut self, msg: SetCurveUserId, _: &mut Self::Context) -> Self::Result {
        self.policy.set_curve_user_id(msg.0);
        Ok(())
    }
}

impl Handler<Stop> for PolicyActor {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl PolicyActor {
    /// Ends the watch of a domain's mechanism (an explicit configuration replaces it).
    fn stop_watch(
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
        let source = watching.source.clone();
        let domain = key.0.clone();
        let read = tokio::task::spawn_blocking(move || {
            let fingerprint = source_fingerprint(&source);
            let (loaded, report) = watch::load(&domain, &source);
            (fingerprint, loaded, report)
        });
        Box::pin(read.into_actor(self).map(move |read, act, _| {
            let (fingerprint, loaded, report) =
                read.map_err(|join| ConfigError::LoadFailed(join.to_string()))?;
            act.install_watched(&key, fingerprint, loaded, report)
        }))
    }

    fn install_watched(
        &mut self,
        key: &(String, MechanismKind),
        fingerprint: u64,
        loaded: Loaded,
        report: Reloaded,
    ) -> Result<Reloaded, ConfigError> {
        let Some(watching) = self.watches.get_mut(key) else {
            return Err(ConfigError::Stopped); // unwatched meanwhile: leave the policy alone
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve_configuration_needs_a_curve_capable_libzmq() {
        assert!(require_curve(Some(true)).is_ok());
        for missing in [Some(false), None] {
            let error = require_curve(missing).unwrap_err();
            assert!(error.to_string().contains("libzmq3-dev"), "{error}");
        }
    }
}
