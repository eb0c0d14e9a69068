//! The actor shell of the one way in: every change to the policy — from a message, a
//! directory load, a watch reload or a store — is made by [`PolicyActor::change`], which
//! hands it to [`Policy::apply`](crate::policy::Policy::apply) and then does what the answer
//! says: stop a displaced watch, detach a store from a domain taken over, forget cached
//! password verifications of what was narrowed.

use log::{debug, warn};

use super::policy_actor::{require_curve, PolicyActor};
use crate::messages::error::ConfigError;
use crate::policy::{
    Change, CurvePolicy, Displaced, MechanismKind, Narrowing, Origin, Outcome, Owner, PolicyError,
};

/// Whether the change installs or admits something for CURVE (which needs a libzmq with
/// CURVE to mean anything); removals and lifts do not.
fn configures_curve(change: &Change) -> bool {
    matches!(
        change,
        Change::ConfigureCurve { .. }
            | Change::AddCurveKeys { .. }
            | Change::Claim {
                mechanism: MechanismKind::Curve,
                ..
            }
    )
}

impl PolicyActor {
    /// Applies one change through the policy's one way in and acts on its answer. A refused
    /// change changes nothing; a change from an owner no longer in charge is
    /// [`ConfigError::Superseded`].
    pub(crate) fn change(
        &mut self,
        origin: Origin,
        change: Change,
    ) -> Result<Outcome, ConfigError> {
        if configures_curve(&change) {
            require_curve(zmq::has("curve"))?;
        }
        debug!(target: "actix_zap::control", "{change:?} from {origin:?}");
        let applied = self
            .policy
            .apply(origin, change)
            .map_err(|error| match error {
                PolicyError::Superseded => ConfigError::Superseded,
                error => ConfigError::Policy(error),
            })?;
        for displaced in applied.displaced {
            self.displaced(displaced);
        }
        for narrowing in &applied.narrowed {
            match narrowing {
                Narrowing::Setting {
                    domain,
                    mechanism: MechanismKind::Plain,
                } => self.verifier.forget_domain(domain),
                Narrowing::Names {
                    domain,
                    mechanism: MechanismKind::Plain,
                    names,
                } => names
                    .iter()
                    .for_each(|name| self.verifier.forget_user(domain, name)),
                _ => {}
            }
        }
        self.end_sessions(&applied.narrowed);
        Ok(applied.outcome)
    }

    /// An owner stopped being in charge of a domain's mechanism.
    fn displaced(&mut self, displaced: Displaced) {
        let Displaced {
            domain,
            mechanism,
            owner,
            taken_over,
        } = displaced;
        if taken_over {
            warn!(
                target: "actix_zap::control",
                "{mechanism} of domain {domain:?} taken over by hand from {owner}: it no longer \
                 changes that domain"
            );
        }
        match owner {
            Owner::Watch { id, .. } => self.end_watch(id),
            Owner::Store { id, .. } => self.served.taken_over(id, &domain, mechanism),
            Owner::Load { path, .. } => debug!(
                target: "actix_zap::control",
                "the load of {} for domain {domain:?} is superseded",
                path.display()
            ),
            _ => {}
        }
    }

    /// Installs a CURVE setting as `origin` (a load, watch or store installing what it read).
    pub(crate) fn install_curve(
        &mut self,
        origin: Origin,
        domain: &str,
        curve: CurvePolicy,
    ) -> Result<(), ConfigError> {
        let domain = domain.to_owned();
        self.change(origin, Change::ConfigureCurve { domain, curve })
            .map(drop)
    }
}
