//! The configuration messages' handlers: each message is one [`Change`], applied whole or
//! not at all through [`PolicyActor::change`] (the one way in). Who may change a domain's
//! mechanism is decided there: see [`crate::policy::Change`] and the ownership table in the
//! README. A refused message changes nothing, not even a watch.

use std::sync::Arc;

use actix::prelude::*;
use log::{debug, warn};

use super::policy_actor::PolicyActor;

use crate::certs::{CertStore, DirectoryLoad};
use crate::messages::error::ConfigError;
use crate::messages::*;
use crate::policy::{Change, CurvePolicy, ListKind, Origin, Owner, PlainTable, Scope};
use crate::sources::load_directory_within;

/// A change by hand, taking over if the message says so.
fn by_hand(take_over: bool) -> Origin {
    Origin::Hand { take_over }
}

impl Handler<Allow> for PolicyActor {
    type Result = Result<(), ConfigError>;

    fn handle(&mut self, msg: Allow, _: &mut Self::Context) -> Self::Result {
        let Allow { addresses, scope } = msg;
        let (kind, patterns) = (ListKind::Allow, addresses);
        let change = Change::AddAddresses {
            scope,
            kind,
            patterns,
        };
        self.change(Origin::HAND, change).map(drop)
    }
}

impl Handler<Deny> for PolicyActor {
    type Result = Result<(), ConfigError>;

    fn handle(&mut self, msg: Deny, _: &mut Self::Context) -> Self::Result {
        let Deny { addresses, scope } = msg;
        let (kind, patterns) = (ListKind::Deny, addresses);
        let change = Change::AddAddresses {
            scope,
            kind,
            patterns,
        };
        self.change(Origin::HAND, change).map(drop)
    }
}

impl Handler<RemoveAddresses> for PolicyActor {
    type Result = Result<usize, ConfigError>;

    fn handle(&mut self, msg: RemoveAddresses, _: &mut Self::Context) -> Self::Result {
        let RemoveAddresses { addresses, scope } = msg;
        let change = Change::RemoveAddresses {
            scope,
            patterns: addresses,
        };
        Ok(self.change(Origin::HAND, change)?.count())
    }
}

impl Handler<ClearAddressRules> for PolicyActor {
    type Result = Result<(), ConfigError>;

    fn handle(&mut self, msg: ClearAddressRules, _: &mut Self::Context) -> Self::Result {
        let change = Change::ClearAddressRules { scope: msg.scope };
        self.change(Origin::HAND, change).map(drop)
    }
}

impl Handler<AllowIpc> for PolicyActor {
    type Result = Result<(), ConfigError>;

    fn handle(&mut self, msg: AllowIpc, _: &mut Self::Context) -> Self::Result {
        let AllowIpc { rules, scope } = msg;
        let change = Change::AllowIpc { scope, rules };
        self.change(Origin::HAND, change).map(drop)
    }
}

impl Handler<RemoveIpc> for PolicyActor {
    type Result = Result<usize, ConfigError>;

    fn handle(&mut self, msg: RemoveIpc, _: &mut Self::Context) -> Self::Result {
        let RemoveIpc { rules, scope } = msg;
        let change = Change::RemoveIpc { scope, rules };
        Ok(self.change(Origin::HAND, change)?.count())
    }
}

impl Handler<ClearIpcRules> for PolicyActor {
    type Result = Result<(), ConfigError>;

    fn handle(&mut self, msg: ClearIpcRules, _: &mut Self::Context) -> Self::Result {
        let change = Change::ClearIpcRules { scope: msg.scope };
        self.change(Origin::HAND, change).map(drop)
    }
}

impl Handler<SetAddressRules> for PolicyActor {
    type Result = Result<(), ConfigError>;

    fn handle(&mut self, msg: SetAddressRules, _: &mut Self::Context) -> Self::Result {
        let change = Change::SetAddressRules {
            scope: Scope::Global,
            rules: msg.0,
        };
        self.change(Origin::HAND, change).map(drop)
    }
}

impl Handler<SetDomainAddressRules> for PolicyActor {
    type Result = Result<(), ConfigError>;

    fn handle(&mut self, msg: SetDomainAddressRules, _: &mut Self::Context) -> Self::Result {
        let change = Change::SetAddressRules {
            scope: Scope::Domain(msg.domain),
            rules: msg.rules,
        };
        self.change(Origin::HAND, change).map(drop)
    }
}

impl Handler<ConfigurePlain> for PolicyActor {
    type Result = Result<(), ConfigError>;

    fn handle(&mut self, msg: ConfigurePlain, _: &mut Self::Context) -> Self::Result {
        let ConfigurePlain {
            domain,
            passwords,
            take_over,
        } = msg;
        let table = PlainTable::Clear(passwords);
        let change = Change::ConfigurePlain { domain, table };
        self.change(by_hand(take_over), change).map(drop)
    }
}

impl Handler<ConfigureCurve> for PolicyActor {
    type Result = ResponseActFuture<Self, Result<CurveReport, ConfigError>>;

    fn handle(&mut self, mut msg: ConfigureCurve, ctx: &mut Self::Context) -> Self::Result {
        let (hook, deadline) = match msg.take_reader() {
            Some(test) => (Some(test.read), test.deadline),
            None => (None, ConfigureCurve::READ_DEADLINE),
        };
        let ConfigureCurve {
            domain,
            source,
            take_over,
            ..
        } = msg;
        let origin = by_hand(take_over);
        let installed = |act: &mut Self, curve, report, _: &mut Self::Context| -> Self::Result {
            let answer = act.install_curve(origin, &domain, curve).map(|()| report);
            Box::pin(fut::ready(answer))
        };
        let (path, layout) = match source {
            CurveSource::AllowAny => {
                return installed(self, CurvePolicy::AllowAny, CurveReport::default(), ctx)
            }
            CurveSource::Keys(store) => {
                let report = CurveReport {
                    keys: store.len(),
                    ..CurveReport::default()
                };
                return installed(self, CurvePolicy::Keys(Arc::new(store)), report, ctx);
            }
            CurveSource::Directory { path, layout } => (path, layout),
        };
        // The load owns the domain while it reads: a removal meanwhile is kept as a revocation
        // over what it installs, a later configuration supersedes it.
        let id = self.policy.new_owner_id();
        let owner = Owner::Load {
            id,
            path: path.clone(),
        };
        let claim = Change::Claim {
            domain: domain.clone(),
            mechanism: MechanismKind::Curve,
            owner,
        };
        if let Err(error) = self.change(origin, claim) {
            return Box::pin(fut::ready(Err(error)));
        }
        // The watches' reader, as their first look: on a thread nobody waits for, under a
        // deadline.
        let load = load_directory_within(path, layout, hook, deadline);
        Box::pin(load.into_actor(self).map(move |loaded, act, _| {
            let load = Origin::Owner(id);
            let error = match loaded {
                Ok(Ok(DirectoryLoad {
                    store,
                    rejected,
                    skipped,
                    warning,
                    ..
                })) => {
                    let report = CurveReport {
                        keys: store.len(),
                        rejected,
                        skipped,
                        warning,
                    };
                    let store = CurvePolicy::Keys(Arc::new(store));
                    act.install_curve(load, &domain, store)?;
                    debug!(
                        target: "actix_zap::actors::PolicyActor",
                        "CURVE for domain {domain:?}: {} key(s)", report.keys
                    );
                    return Ok(report);
                }
                Ok(Err(unreadable)) => ConfigError::Certificates(unreadable),
                Err(unfinished) => ConfigError::LoadFailed(unfinished),
            };
            // Fail closed: an unreadable directory admits nobody in this domain.
            let nobody = CurvePolicy::Keys(Arc::new(CertStore::new()));
            act.install_curve(load, &domain, nobody)?;
            warn!(
                target: "actix_zap::actors::PolicyActor",
                "CURVE for domain {domain:?}: {error}; refusing every key"
            );
            Err(error)
        }))
    }
}

impl Handler<ConfigureCurveCallback> for PolicyActor {
    type Result = Result<(), ConfigError>;

    fn handle(&mut self, msg: ConfigureCurveCallback, _: &mut Self::Context) -> Self::Result {
        let ConfigureCurveCallback {
            domain,
            provider,
            take_over,
        } = msg;
        let curve = CurvePolicy::Provider(provider);
        self.install_curve(by_hand(take_over), &domain, curve)
    }
}

impl Handler<ConfigureGssapi> for PolicyActor {
    type Result = Result<(), ConfigError>;

    fn handle(&mut self, msg: ConfigureGssapi, _: &mut Self::Context) -> Self::Result {
        let ConfigureGssapi { domain, policy } = msg;
        let change = Change::ConfigureGssapi {
            domain,
            gssapi: policy,
        };
        self.change(Origin::HAND, change).map(drop)
    }
}

impl Handler<Unconfigure> for PolicyActor {
    type Result = Result<bool, ConfigError>;

    fn handle(&mut self, msg: Unconfigure, _: &mut Self::Context) -> Self::Result {
        let Unconfigure {
            domain,
            mechanism,
            take_over,
        } = msg;
        let change = Change::Unconfigure { domain, mechanism };
        Ok(self.change(by_hand(take_over), change)?.existed())
    }
}

impl Handler<SetCurveUserId> for PolicyActor {
    type Result = Result<(), ConfigError>;

    fn handle(&mut self, msg: SetCurveUserId, _: &mut Self::Context) -> Self::Result {
        let change = Change::SetCurveUserId(msg.0);
        self.change(Origin::HAND, change).map(drop)
    }
}

impl Handler<LiftRevocations> for PolicyActor {
    type Result = Result<usize, ConfigError>;

    fn handle(&mut self, msg: LiftRevocations, _: &mut Self::Context) -> Self::Result {
        let LiftRevocations {
            domain,
            mechanism,
            names,
        } = msg;
        let change = Change::LiftRevocations {
            domain,
            mechanism,
            names,
        };
        Ok(self.change(Origin::HAND, change)?.count())
    }
}
