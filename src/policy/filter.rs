//! One scope's address filter (global, or one domain's): its IP list and its IPC rules, and
//! the verdict for a request's address frame (see [`AddressFilter::check`]).

use super::address::{AddressRules, AddressVerdict, ListKind};
use super::ipc::{IpcRule, IpcRules};
use super::peer::Peer;
use super::{AddressPattern, PolicyError, Refusal};

/// One scope's address rules: an IP allow- or deny-list, and an IPC allow-list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressFilter {
    ip: AddressRules,
    ipc: Option<IpcRules>,
}

impl AddressFilter {
    /// The IP list.
    pub fn ip(&self) -> &AddressRules {
        &self.ip
    }

    /// The IPC allow-list, if one is in force (an empty one refuses every IPC peer).
    pub fn ipc(&self) -> Option<&IpcRules> {
        self.ipc.as_ref()
    }

    /// Whether no rule at all is in force: every peer passes.
    pub fn is_open(&self) -> bool {
        self.ip.is_open() && self.ipc.is_none()
    }

    /// See [`AddressRules::add`].
    pub fn add(
        &mut self,
        kind: ListKind,
        patterns: impl IntoIterator<Item = AddressPattern>,
    ) -> Result<(), PolicyError> {
        self.ip.add(kind, patterns)
    }

    /// See [`AddressRules::remove`]. IPC rules are kept.
    pub fn remove<'p>(&mut self, patterns: impl IntoIterator<Item = &'p AddressPattern>) -> usize {
        self.ip.remove(patterns)
    }

    /// Replaces the IP list (an empty one stays in force); IPC rules are kept.
    pub fn set(&mut self, rules: AddressRules) {
        self.ip = rules;
    }

    /// Adds IPC rules, putting the IPC allow-list in force (even with no rules given).
    pub fn allow_ipc(&mut self, rules: impl IntoIterator<Item = IpcRule>) {
        let list = self.ipc.get_or_insert_with(IpcRules::default);
        for rule in rules {
            list.insert(rule);
        }
    }

    /// Removes IPC rules; returns how many were there. The IPC allow-list stays in force
    /// when emptied, refusing every IPC peer.
    pub fn remove_ipc<'r>(&mut self, rules: impl IntoIterator<Item = &'r IpcRule>) -> usize {
        match &mut self.ipc {
            Some(list) => rules.into_iter().filter(|r| list.remove(r)).count(),
            None => 0,
        }
    }

    /// Drops the IPC allow-list: IPC peers are then judged as if no IPC rule existed
    /// (refused while an IP list is in force, admitted otherwise).
    pub fn clear_ipc(&mut self) {
        self.ipc = None;
    }

    /// Drops every rule: the scope no longer filters addresses.
    pub fn clear(&mut self) {
        *self = AddressFilter::default();
    }

    /// Applies the rules to a request's address frame: the one address filter, what the
    /// authenticator asks of the global filter and then of the request domain's own.
    ///
    /// | rules in force | IP peer | IPC peer | unknown address |
    /// |---|---|---|---|
    /// | none | passes | passes | passes |
    /// | IP list only | the list decides | refused | refused |
    /// | IPC rules only | passes | a rule must match | refused |
    /// | both | the list decides | a rule must match | refused |
    ///
    /// The frame is read with [`Peer::parse`]; an IP peer's zone is matched as
    /// [`AddressPattern`](super::AddressPattern) says (an interface name; an index, when
    /// libzmq could not name the interface, goes against the peer in zoned entries). Every
    /// refusal that is not a deny-list entry reads `Address not allowed`. When no rule is in
    /// force the frame is not even parsed.
    #[inline]
    pub fn check(&self, address: &str) -> AddressVerdict {
        // Parse only when a rule is in force: most policies have none (inlined, that costs
        // the decision one branch).
        if self.is_open() {
            return AddressVerdict::NotFiltered;
        }
        self.check_peer(address)
    }

    /// [`check`](Self::check) with some rule in force.
    #[inline(never)]
    fn check_peer(&self, address: &str) -> AddressVerdict {
        match Peer::parse(address) {
            Peer::Ip { ip, zone } => self.ip.check_ip(ip, zone),
            Peer::Ipc(peer) => match &self.ipc {
                Some(rules) if rules.matches(&peer) => AddressVerdict::Allowed,
                _ => AddressVerdict::Refused(Refusal::AddressNotAllowed),
            },
            Peer::Unknown => AddressVerdict::Refused(Refusal::AddressNotAllowed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IPC_ROOT: &str = "localhost:0:0:30085";
    const IPC_USER: &str = "localhost:1000:1000:4242";

    fn filter(kind: Option<ListKind>, ips: &[&str], ipc: Option<&[IpcRule]>) -> AddressFilter {
        let mut filter = AddressFilter::default();
        if let Some(kind) = kind {
            let patterns = ips.iter().map(|p| p.parse().unwrap());
            filter.add(kind, patterns).unwrap();
        }
        if let Some(rules) = ipc {
            filter.allow_ipc(rules.iter().copied());
        }
        filter
    }

    #[test]
    fn without_rules_every_address_passes_unparsed() {
        let open = AddressFilter::default();
        for address in ["10.0.0.1", IPC_ROOT, "", "garbage", "fe80::1%eth0"] {
            assert_eq!(
                open.check(address),
                AddressVerdict::NotFiltered,
                "{address}"
            );
        }
    }

    #[test]
    fn an_ip_list_refuses_ipc_and_unknown_peers() {
        for kind in [ListKind::Allow, ListKind::Deny] {
            let f = filter(Some(kind), &["0.0.0.0/0", "::/0"], None);
            for address in [IPC_ROOT, "localhost", "", "garbage", "10.0.0.1%eth0"] {
                assert_eq!(
                    f.check(address),
                    AddressVerdict::Refused(Refusal::AddressNotAllowed),
                    "{kind:?} {address:?}"
                );
            }
        }
    }

    #[test]
    fn ipc_rules_decide_ipc_peers_and_leave_ip_peers_alone() {
        let f = filter(None, &[], Some(&[IpcRule::Uid(1000)]));
        assert_eq!(f.check(IPC_USER), AddressVerdict::Allowed);
        assert_eq!(
            f.check(IPC_ROOT),
            AddressVerdict::Refused(Refusal::AddressNotAllowed)
        );
        assert_eq!(f.check("10.0.0.1"), AddressVerdict::NotFiltered);
        assert_eq!(
            f.check("not an address"),
            AddressVerdict::Refused(Refusal::AddressNotAllowed)
        );

        let f = filter(
            Some(ListKind::Deny),
            &["0.0.0.0/0"],
            Some(&[IpcRule::Gid(0)]),
        );
        assert_eq!(f.check(IPC_ROOT), AddressVerdict::Allowed);
        assert_eq!(
            f.check(IPC_USER),
            AddressVerdict::Refused(Refusal::AddressNotAllowed)
        );
        assert_eq!(
            f.check("10.0.0.1"),
            AddressVerdict::Refused(Refusal::AddressDenied)
        );
    }

    #[test]
    fn emptied_ipc_rules_refuse_until_cleared() {
        let mut f = filter(None, &[], Some(&[IpcRule::Uid(0)]));
        assert_eq!(f.remove_ipc(&[IpcRule::Uid(0), IpcRule::Uid(1)]), 1);
        assert!(!f.is_open());
        assert_eq!(
            f.check(IPC_ROOT),
            AddressVerdict::Refused(Refusal::AddressNotAllowed)
        );
        f.clear_ipc();
        assert!(f.is_open());
        assert_eq!(f.check(IPC_ROOT), AddressVerdict::NotFiltered);
    }

    #[test]
    fn an_emptied_allow_list_refuses_everyone_until_cleared() {
        let mut f = filter(Some(ListKind::Allow), &["10.0.0.5"], None);
        let pattern: AddressPattern = "10.0.0.5".parse().unwrap();
        assert_eq!(f.remove([&pattern]), 1);
        assert_eq!(
            f.check("10.0.0.5"),
            AddressVerdict::Refused(Refusal::AddressNotAllowed)
        );
        assert!(f.add(ListKind::Deny, [pattern]).is_err());
        f.clear();
        assert_eq!(f, AddressFilter::default());
        assert_eq!(f.check("10.0.0.5"), AddressVerdict::NotFiltered);
    }
}
