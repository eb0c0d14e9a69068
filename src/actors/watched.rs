//! The policy actor's side of live reload: a [`Watch`] claims its domain's mechanism through
//! the one way in and hands the source to the [`FileWatcher`]; what the watcher reads comes
//! back as the watch's owned change ([`Reload`]), which the one way in refuses once the watch
//! no longer owns the domain (unwatched, or taken over).

use actix::prelude::*;
use futures::channel::oneshot;

use super::require_curve;
use super::watch::{EndWatch, FileWatcher, Follow, Reload};
use super::PolicyActor;
use crate::messages::error::ConfigError;
use crate::messages::watch::{Reloaded, Unwatch, Watch, Watches};
use crate::messages::{MechanismKind, Stop};
use crate::policy::{Change, Origin, Owner, OwnerId};

impl PolicyActor {
    /// The file watcher, started at the first watch.
    fn watcher(&mut self, ctx: &mut Context<Self>) -> Addr<FileWatcher> {
        let policy = ctx.address().downgrade();
        (self
            .watcher
            .get_or_insert_with(|| FileWatcher::new(policy).start()))
        .clone()
    }

    /// Ends the watch `owner` once it no longer owns its domain's mechanism.
    pub(crate) fn end_watch(&mut self, owner: OwnerId) {
        if let Some(watcher) = &self.watcher {
            watcher.do_send(EndWatch(owner));
        }
    }

    /// Stops the file watcher with the policy actor.
    pub(crate) fn stop_watcher(&mut self) {
        if let Some(watcher) = self.watcher.take() {
            watcher.do_send(Stop);
        }
    }
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
        // The watch owns the domain's mechanism from now on: refused on a domain another watch
        // or a store owns unless it takes over (which ends that owner's hold).
        let owner = self.policy.new_owner_id();
        let claim = Change::Claim {
            domain: msg.domain.clone(),
            mechanism,
            owner: Owner::Watch {
                id: owner,
                path: msg.source.path().to_owned(),
            },
        };
        let take_over = msg.take_over;
        if let Err(error) = self.change(Origin::Hand { take_over }, claim) {
            return Box::pin(fut::ready(Err(error)));
        }
        let (first, loaded) = oneshot::channel();
        self.watcher(ctx).do_send(Follow {
            watch: msg,
            owner,
            first,
        });
        Box::pin(fut::wrap_future(async move {
            // The answer is dropped unsent when a later message replaced (or ended) this watch
            // before its first load, or when the authenticator stopped.
            loaded.await.map_err(|_| ConfigError::Superseded)
        }))
    }
}

impl Handler<Reload> for PolicyActor {
    type Result = Result<(), ConfigError>;

    fn handle(&mut self, msg: Reload, _: &mut Self::Context) -> Self::Result {
        self.change(Origin::Owner(msg.owner), msg.change).map(drop)
    }
}

impl Handler<Unwatch> for PolicyActor {
    type Result = Result<bool, ConfigError>;

    fn handle(&mut self, msg: Unwatch, _: &mut Self::Context) -> Self::Result {
        let Unwatch { domain, mechanism } = msg;
        let change = Change::Release { domain, mechanism };
        Ok(self.change(Origin::HAND, change)?.existed())
    }
}

impl Handler<Watches> for PolicyActor {
    type Result = ResponseFuture<Vec<Reloaded>>;

    fn handle(&mut self, msg: Watches, _: &mut Self::Context) -> Self::Result {
        let watcher = self.watcher.clone();
        Box::pin(async move {
            match watcher {
                Some(watcher) => watcher.send(msg).await.unwrap_or_default(),
                None => Vec::new(),
            }
        })
    }
}
