//! Rules for `ipc://` peers, which have no IP address: libzmq identifies them by the
//! credentials the kernel vouches for (`SO_PEERCRED`), so rules name a user or a group.
//!
//! IPC rules are an allow-list only. With no address rules in a scope, IPC peers pass its
//! filter; once the scope has IPC rules, an IPC peer passes only if one matches; a scope with
//! an IP allow- or deny-list and no IPC rules refuses IPC peers (fail closed: an IP list
//! cannot say anything about them). See [`AddressFilter`](super::AddressFilter).

use std::collections::BTreeSet;
use std::fmt;

use super::peer::IpcPeer;

/// One rule admitting IPC peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpcRule {
    /// Every IPC peer, whatever its credentials (even when the kernel gave none).
    Any,
    /// Peers whose process runs with this effective user id.
    Uid(u32),
    /// Peers whose process runs with this effective primary group id (the kernel does not
    /// pass supplementary groups).
    Gid(u32),
}

impl IpcRule {
    /// Whether `peer` is admitted by this rule. A credential libzmq could not read matches
    /// no `Uid` or `Gid` rule.
    pub fn matches(&self, peer: &IpcPeer) -> bool {
        match *self {
            IpcRule::Any => true,
            IpcRule::Uid(uid) => peer.uid == Some(uid),
            IpcRule::Gid(gid) => peer.gid == Some(gid),
        }
    }
}

impl fmt::Display for IpcRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpcRule::Any => f.write_str("ipc:any"),
            IpcRule::Uid(uid) => write!(f, "ipc:uid={uid}"),
            IpcRule::Gid(gid) => write!(f, "ipc:gid={gid}"),
        }
    }
}

/// A scope's IPC allow-list. Empty still means "in force": it refuses every IPC peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpcRules {
    rules: BTreeSet<IpcRule>,
}

impl IpcRules {
    /// An allow-list holding `rules`.
    pub fn new(rules: impl IntoIterator<Item = IpcRule>) -> Self {
        IpcRules {
            rules: rules.into_iter().collect(),
        }
    }

    /// Adds a rule; false if it was already there.
    pub fn insert(&mut self, rule: IpcRule) -> bool {
        self.rules.insert(rule)
    }

    /// Removes a rule; false if it was not there.
    pub fn remove(&mut self, rule: &IpcRule) -> bool {
        self.rules.remove(rule)
    }

    /// Whether some rule admits `peer`.
    pub fn matches(&self, peer: &IpcPeer) -> bool {
        self.rules.iter().any(|rule| rule.matches(peer))
    }

    /// The rules, sorted.
    pub fn rules(&self) -> impl Iterator<Item = &IpcRule> {
        self.rules.iter()
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True when there are no rules (and so no IPC peer is admitted).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: Option<u32>, gid: Option<u32>) -> IpcPeer {
        IpcPeer {
            uid,
            gid,
            pid: None,
        }
    }

    #[test]
    fn uid_and_gid_rules_match_only_known_credentials() {
        let rules = IpcRules::new([IpcRule::Uid(1000), IpcRule::Gid(50)]);
        assert!(rules.matches(&peer(Some(1000), Some(1))));
        assert!(rules.matches(&peer(Some(7), Some(50))));
        assert!(!rules.matches(&peer(Some(7), Some(1))));
        assert!(!rules.matches(&peer(None, None)));
        assert!(IpcRules::new([IpcRule::Any]).matches(&peer(None, None)));
    }

    #[test]
    fn an_emptied_ipc_list_admits_nobody() {
        let mut rules = IpcRules::new([IpcRule::Uid(0)]);
        assert!(rules.remove(&IpcRule::Uid(0)));
        assert!(!rules.remove(&IpcRule::Uid(0)));
        assert!(rules.is_empty());
        assert!(!rules.matches(&peer(Some(0), Some(0))));
    }
}
