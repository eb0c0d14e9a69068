//! The delta messages' handlers: each is one [`Change`] through the one way in.

use actix::prelude::*;

use super::policy_actor::PolicyActor;
use crate::messages::error::ConfigError;
use crate::messages::{
    AddCurveKeys, AddPlainUsers, ConfigureHashedPlain, RemoveCurveKeys, RemovePlainUsers,
};
use crate::policy::{Change, Origin, PlainTable, Removed};

/// A change by hand, taking over if the message says so.
fn by_hand(take_over: bool) -> Origin {
    Origin::Hand { take_over }
}

impl Handler<AddCurveKeys> for PolicyActor {
    type Result = Result<usize, ConfigError>;

    fn handle(&mut self, msg: AddCurveKeys, _: &mut Self::Context) -> Self::Result {
        let AddCurveKeys {
            domain,
            keys,
            take_over,
        } = msg;
        let change = Change::AddCurveKeys {
            domain,
            entries: keys,
        };
        Ok(self.change(by_hand(take_over), change)?.count())
    }
}

impl Handler<RemoveCurveKeys> for PolicyActor {
    type Result = Result<Removed, ConfigError>;

    fn handle(&mut self, msg: RemoveCurveKeys, _: &mut Self::Context) -> Self::Result {
        let RemoveCurveKeys { domain, keys } = msg;
        let change = Change::RemoveCurveKeys { domain, keys };
        Ok(self.change(Origin::HAND, change)?.removed())
    }
}

impl Handler<ConfigureHashedPlain> for PolicyActor {
    type Result = Result<(), ConfigError>;

    fn handle(&mut self, msg: ConfigureHashedPlain, _: &mut Self::Context) -> Self::Result {
        let ConfigureHashedPlain {
            domain,
            table,
            take_over,
        } = msg;
        let table = PlainTable::from(table);
        let change = Change::ConfigurePlain { domain, table };
        self.change(by_hand(take_over), change).map(drop)
    }
}

impl Handler<AddPlainUsers> for PolicyActor {
    type Result = Result<usize, ConfigError>;

    fn handle(&mut self, msg: AddPlainUsers, _: &mut Self::Context) -> Self::Result {
        let AddPlainUsers {
            domain,
            users,
            take_over,
        } = msg;
        let users = users
            .into_iter()
            .map(|(n, h)| (n.into_bytes(), h))
            .collect();
        let change = Change::AddPlainUsers { domain, users };
        Ok(self.change(by_hand(take_over), change)?.count())
    }
}

impl Handler<RemovePlainUsers> for PolicyActor {
    type Result = Result<Removed, ConfigError>;

    fn handle(&mut self, msg: RemovePlainUsers, _: &mut Self::Context) -> Self::Result {
        let RemovePlainUsers { domain, users } = msg;
        let users = users.into_iter().map(String::into_bytes).collect();
        let change = Change::RemovePlainUsers { domain, users };
        Ok(self.change(Origin::HAND, change)?.removed())
    }
}
