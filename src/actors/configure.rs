//! The configuration messages' handlers: each change to the policy is one message, applied
//! whole or not at all. An explicit configuration of a domain's mechanism replaces a watch
//! of it (see [`crate::sources`]), once the message has been validated: a refused message
//! changes nothing, not even the watch.

use std::sync::Arc;

use actix::prelude::*;
use log::{debug, warn};

use super::policy_actor::{require_curve, PolicyActor};
use std::path::PathBuf;

use crate::certs::{load_directory, CertError, CertStore, DirectoryLoad, Layout};
use crate::error::ConfigError;
use crate::messages::*;
use crate::policy::{CurvePolicy, ListKind, Scope};

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
        debug!(
            "remove addresses {} ({:?})",
            list(&msg.addresses),
            msg.scope
        );
        Ok(self.policy.remove_addresses(&msg.scope, &msg.addresses)?)
    }
}

impl Handler<ClearAddressRules> for PolicyActor {
    type Result = Result<(), ConfigError>;

    fn handle(&mut self, msg: ClearAddressRules, _: &mut Self::Context) -> Self::Result {
        debug!("clear address rules ({:?})", msg.scope);
        Ok(self.policy.clear_address_rules(&msg.scope)?)
    }
}

impl Handler<AllowIpc> for PolicyActor {
    type Result = Result<(), ConfigError>;

    fn handle(&mut self, msg: AllowIpc, _: &mut Self::Context) -> Self::Result {
        debug!("allow {} ({:?})", list(&msg.rules), msg.scope);
        Ok(self.policy.allow_ipc(&msg.scope, msg.rules)?)
    }
}

impl Handler<RemoveIpc> for PolicyActor {
    type Result = Result<usize, ConfigError>;

    fn handle(&mut self, msg: RemoveIpc, _: &mut Self::Context) -> Self::Result {
        debug!("remove {} ({:?})", list(&msg.rules), msg.scope);
        Ok(self.policy.remove_ipc(&msg.scope, &msg.rules)?)
    }
}

impl Handler<ClearIpcRules> for PolicyActor {
    type Result = Result<(), ConfigError>;

    fn handle(&mut self, msg: ClearIpcRules, _: &mut Self::Context) -> Self::Result {
        debug!("clear IPC rules ({:?})", msg.scope);
        Ok(self.policy.clear_ipc_rules(&msg.scope)?)
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
        debug!(
            "configure PLAIN for domain {:?}: {} user(s)",
            msg.domain,
            msg.passwords.len()
        );
        // Validated and applied first: a refused table leaves the domain's watch running.
        self.policy.configure_plain(&msg.domain, msg.passwords)?;
        self.stop_watch(&msg.domain, MechanismKind::Plain, ctx);
        Ok(())
    }
}

impl Handler<ConfigureCurve> for PolicyActor {
    type Result = ResponseActFuture<Self, Result<CurveReport, ConfigError>>;

    fn handle(&mut self, msg: ConfigureCurve, ctx: &mut Self::Context) -> Self::Result {
        let ConfigureCurve { domain, source } = msg;
        // Validate before anything changes: a refused message leaves the watch running.
        let checked = require_curve(zmq::has("curve"))
            .and_then(|()| Ok(crate::policy::check_domain(&domain)?));
        if let Err(error) = checked {
            return Box::pin(fut::ready(Err(error)));
        }
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
                    warning: None,
                };
                installed(CurvePolicy::Keys(Arc::new(store)), report)
            }
            CurveSource::Directory { path, layout } => {
                let load = load_off_thread(path, layout);
                Box::pin(load.into_actor(self).map(move |loaded, act, _| {
                    if act.curve_tickets.get(&domain) != Some(&ticket) {
                        debug!(
                            "CURVE directory for {domain:?} superseded by a later configuration"
                        );
                        return Err(ConfigError::Superseded);
                    }
                    let error = match loaded {
                        Ok(Ok(load)) => {
                            let report = CurveReport {
                                keys: load.store.len(),
                                rejected: load.rejected,
                                warning: load.warning,
                            };
                            debug!("CURVE for domain {domain:?}: {} key(s)", report.keys);
                            act.install_curve(&domain, CurvePolicy::Keys(Arc::new(load.store)))?;
                            return Ok(report);
                        }
                        Ok(Err(error)) => ConfigError::from(error),
                        Err(failure) => ConfigError::LoadFailed(failure),
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

/// How long a certificate directory may take to load before the domain fails closed (an NFS
/// stall, a FIFO in place of a file). 100,000 local files load in under a second.
const DIRECTORY_LOAD_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// Loads a directory on a thread that nobody waits for: a read that hangs leaves that thread
/// behind, never the actix runtime (whose shutdown would wait for a blocking-pool task), and
/// the caller gets an error at the deadline.
async fn load_off_thread(
    path: PathBuf,
    layout: Layout,
) -> Result<Result<DirectoryLoad, CertError>, String> {
    let (answer, answered) = futures::channel::oneshot::channel();
    std::thread::Builder::new()
        .name("zap-load-certs".into())
        .spawn(move || {
            let loaded = crate::provider::call_guarded(|| load_directory(&path, layout));
            let _ = answer.send(loaded);
        })
        .map_err(|e| format!("could not start a thread: {e}"))?;
    match tokio::time::timeout(DIRECTORY_LOAD_DEADLINE, answered).await {
        Ok(Ok(Ok(loaded))) => Ok(loaded),
        Ok(Ok(Err(_))) => Err("the loading thread panicked".into()),
        Ok(Err(_)) => Err("the loading thread ended without an answer".into()),
        Err(_) => Err(format!(
            "did not finish within {} s",
            DIRECTORY_LOAD_DEADLINE.as_secs()
        )),
    }
}

impl Handler<ConfigureCurveCallback> for PolicyActor {
    type Result = Result<(), ConfigError>;

    fn handle(&mut self, msg: ConfigureCurveCallback, ctx: &mut Self::Context) -> Self::Result {
        debug!(
            "configure CURVE provider ({}) for domain {:?}",
            msg.provider.kind(),
            msg.domain
        );
        // Applied first: a refused message leaves the watch running.
        self.install_curve(&msg.domain, CurvePolicy::Provider(msg.provider))?;
        self.stop_watch(&msg.domain, MechanismKind::Curve, ctx);
        self.curve_ticket(&msg.domain);
        Ok(())
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
