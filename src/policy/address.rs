//! Address rules: which peer IP addresses may even try to authenticate.
//!
//! Entries are single addresses or CIDR ranges, IPv4 or IPv6. An IPv4-mapped IPv6 address
//! (`::ffff:10.0.0.1`, what an IPv6 listener reports for an IPv4 client) is treated as the
//! IPv4 address, in rules and in requests alike. Matching costs one hash lookup per distinct
//! prefix length in use, so thousands of ranges cost no more than a handful.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::PolicyError;

/// Why a text is not an address rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not an IP address or CIDR range ({why})")]
pub struct AddressError {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// One address rule: an address and a prefix length (32 or 128 for a single address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AddressPattern {
    network: IpAddr,
    prefix: u8,
}

/// Maps `::ffff:a.b.c.d` to `a.b.c.d`; leaves everything else alone.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4) & u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
    }
}

impl AddressPattern {
    /// Whether `ip` falls inside this rule.
    pub fn matches(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.network.is_ipv4() && mask(ip, self.prefix) == self.network
    }
}

impl FromStr for AddressPattern {
    type Err = AddressError;

    fn from_str(text: &str) -> Result<Self, AddressError> {
        let error = |why| AddressError {
            text: text.to_owned(),
            why,
        };
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let parsed: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| error("not an IP address"))?;
        let mapped = matches!(parsed, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some());
        let ip = canonical(parsed);
        let width: u8 = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) => {
                let p: u8 = p.trim().parse().map_err(|_| error("bad prefix length"))?;
                // A mapped range like ::ffff:10.0.0.0/104 means 10.0.0.0/8.
                let p = if mapped {
                    p.checked_sub(96).ok_or(error("bad prefix length"))?
                } else {
                    p
                };
                if p > width {
                    return Err(error("prefix longer than the address"));
                }
                p
            }
        };
        Ok(AddressPattern {
            network: mask(ip, prefix),
            prefix,
        })
    }
}

impl fmt::Display for AddressPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = if self.network.is_ipv4() { 32 } else { 128 };
        if self.prefix == width {
            write!(f, "{}", self.network)
        } else {
            write!(f, "{}/{}", self.network, self.prefix)
        }
    }
}

/// A set of address rules with lookups grouped by prefix length.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressSet {
    by_prefix: BTreeMap<(bool, u8), HashSet<IpAddr>>,
    len: usize,
}

impl AddressSet {
    /// Adds a rule; false if it was already there.
    pub fn insert(&mut self, pattern: AddressPattern) -> bool {
        let group = (pattern.network.is_ipv4(), pattern.prefix);
        let added = self
            .by_prefix
            .entry(group)
            .or_default()
            .insert(pattern.network);
        self.len += usize::from(added);
        added
    }

    /// Removes a rule; false if it was not there.
    pub fn remove(&mut self, pattern: &AddressPattern) -> bool {
        let group = (pattern.network.is_ipv4(), pattern.prefix);
        let Some(set) = self.by_prefix.get_mut(&group) else {
            return false;
        };
        let removed = set.remove(&pattern.network);
        if set.is_empty() {
            self.by_prefix.remove(&group);
        }
        self.len -= usize::from(removed);
        removed
    }

    /// Whether a rule equals `pattern`.
    pub fn contains(&self, pattern: &AddressPattern) -> bool {
        let group = (pattern.network.is_ipv4(), pattern.prefix);
        self.by_prefix
            .get(&group)
            .is_some_and(|set| set.contains(&pattern.network))
    }

    /// Whether any rule covers `ip`.
    pub fn matches(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.by_prefix
            .iter()
            .filter(|((v4, _), _)| *v4 == ip.is_ipv4())
            .any(|((_, prefix), set)| set.contains(&mask(ip, *prefix)))
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The rules, sorted.
    pub fn patterns(&self) -> Vec<AddressPattern> {
        let mut all: Vec<AddressPattern> = self
            .by_prefix
            .iter()
            .flat_map(|(&(_, prefix), set)| {
                set.iter()
                    .map(move |&network| AddressPattern { network, prefix })
            })
            .collect();
        all.sort();
        all
    }
}

/// Whether peers are filtered by an allow-list, a deny-list, or not at all.
///
/// Allow and deny are mutually exclusive, as in pyzmq: mixing them is a configuration error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AddressRules {
    /// Every address may try to authenticate.
    #[default]
    Open,
    /// Only these addresses may; others get `400 Address not allowed`.
    Allow(AddressSet),
    /// These addresses get `400 Address denied`; others may try.
    Deny(AddressSet),
}

/// Which kind of list an address goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// Only listed addresses may authenticate.
    Allow,
    /// Listed addresses may not.
    Deny,
}

/// Where address rules apply.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every request (pyzmq's behaviour).
    Global,
    /// Requests of this ZAP domain, in addition to the global rules.
    Domain(String),
}

impl AddressRules {
    /// Adds patterns to the list of `kind`; an error if the other kind is in force.
    pub fn add(
        &mut self,
        kind: ListKind,
        patterns: impl IntoIterator<Item = AddressPattern>,
    ) -> Result<(), PolicyError> {
        let set = match (kind, &mut *self) {
            (ListKind::Allow, AddressRules::Deny(s)) if !s.is_empty() => {
                return Err(PolicyError::AllowAndDeny { existing: "deny" })
            }
            (ListKind::Deny, AddressRules::Allow(s)) if !s.is_empty() => {
                return Err(PolicyError::AllowAndDeny { existing: "allow" })
            }
            (ListKind::Allow, AddressRules::Allow(set))
            | (ListKind::Deny, AddressRules::Deny(set)) => set,
            (kind, rules) => {
                *rules = match kind {
                    ListKind::Allow => AddressRules::Allow(AddressSet::default()),
                    ListKind::Deny => AddressRules::Deny(AddressSet::default()),
                };
                match rules {
                    AddressRules::Allow(set) | AddressRules::Deny(set) => set,
                    AddressRules::Open => unreachable!("just set"),
                }
            }
        };
        for pattern in patterns {
            set.insert(pattern);
        }
        *self = std::mem::take(self).normalized();
        Ok(())
    }

    /// Removes patterns from whichever list is in force; returns how many were there.
    pub fn remove<'p>(&mut self, patterns: impl IntoIterator<Item = &'p AddressPattern>) -> usize {
        let removed = match self {
            AddressRules::Open => 0,
            AddressRules::Allow(set) | AddressRules::Deny(set) => {
                patterns.into_iter().filter(|p| set.remove(p)).count()
            }
        };
        *self = std::mem::take(self).normalized();
        removed
    }

    /// An empty list filters nothing: it becomes `Open`.
    pub fn normalized(self) -> Self {
        match self {
            AddressRules::Allow(s) | AddressRules::Deny(s) if s.is_empty() => AddressRules::Open,
            rules => rules,
        }
    }
}

/// What the address rules say about a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressVerdict {
    /// On the allow-list: NULL passes on this alone.
    Allowed,
    /// No allow-list says yes, no deny-list says no.
    NotFiltered,
    /// Refused, with the pyzmq status text.
    Refused(&'static str),
}

impl AddressRules {
    /// Applies the rules to a request's address frame.
    ///
    /// An address that is not an IP (e.g. over IPC) matches no rule: with an allow-list it is
    /// refused, with a deny-list it passes the filter.
    pub fn check(&self, address: &str) -> AddressVerdict {
        // Parse only when a list is in force: most policies have none.
        let listed = |set: &AddressSet| address.parse().is_ok_and(|ip| set.matches(ip));
        match self {
            AddressRules::Open => AddressVerdict::NotFiltered,
            AddressRules::Allow(set) if listed(set) => AddressVerdict::Allowed,
            AddressRules::Allow(_) => AddressVerdict::Refused("Address not allowed"),
            AddressRules::Deny(set) if listed(set) => AddressVerdict::Refused("Address denied"),
            AddressRules::Deny(_) => AddressVerdict::NotFiltered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(rules: &[&str]) -> AddressSet {
        let mut set = AddressSet::default();
        for r in rules {
            set.insert(r.parse().unwrap());
        }
        set
    }

    #[test]
    fn single_addresses_and_ranges_match() {
        let s = set(&["127.0.0.1", "10.0.0.0/8", "2001:db8::/32", "::1"]);
        for yes in ["127.0.0.1", "10.200.3.4", "2001:db8::7", "::1"] {
            assert!(s.matches(yes.parse().unwrap()), "{yes}");
        }
        for no in ["127.0.0.2", "11.0.0.1", "2001:db9::1", "::2"] {
            assert!(!s.matches(no.parse().unwrap()), "{no}");
        }
    }

    #[test]
    fn ipv4_mapped_ipv6_peers_match_ipv4_rules() {
        let s = set(&["10.0.0.1", "192.168.0.0/16"]);
        assert!(s.matches("::ffff:10.0.0.1".parse().unwrap()));
        assert!(s.matches("::ffff:192.168.4.5".parse().unwrap()));
        let mapped_rule = set(&["::ffff:172.16.0.0/108"]);
        assert!(mapped_rule.matches("172.16.9.9".parse().unwrap()));
        assert_eq!(mapped_rule.patterns()[0].to_string(), "172.16.0.0/12");
    }

    #[test]
    fn bad_rules_are_typed_errors() {
        for bad in [
            "",
            "localhost",
            "10.0.0.0/33",
            "::/129",
            "1.2.3.4/x",
            "::ffff:1.2.3.4/95",
        ] {
            assert!(bad.parse::<AddressPattern>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges_are_normalised_and_removable() {
        let mut s = set(&["10.1.2.3/8"]);
        assert_eq!(s.patterns()[0].to_string(), "10.0.0.0/8");
        assert!(s.remove(&"10.0.0.0/8".parse().unwrap()));
        assert!(s.is_empty());
        assert!(!s.remove(&"10.0.0.0/8".parse().unwrap()));
    }

    #[test]
    fn allow_and_deny_give_pyzmq_texts() {
        let allow = AddressRules::Allow(set(&["127.0.0.1"]));
        assert_eq!(allow.check("127.0.0.1"), AddressVerdict::Allowed);
        assert_eq!(
            allow.check("127.0.0.2"),
            AddressVerdict::Refused("Address not allowed")
        );
        assert_eq!(
            allow.check("not-an-ip"),
            AddressVerdict::Refused("Address not allowed")
        );
        let deny = AddressRules::Deny(set(&["127.0.0.1"]));
        assert_eq!(
            deny.check("127.0.0.1"),
            AddressVerdict::Refused("Address denied")
        );
        assert_eq!(deny.check("127.0.0.2"), AddressVerdict::NotFiltered);
        assert_eq!(
            AddressRules::Open.check("1.2.3.4"),
            AddressVerdict::NotFiltered
        );
    }

    #[test]
    fn thousands_of_ranges_use_few_groups() {
        let mut s = AddressSet::default();
        for i in 0..5000u32 {
            let ip = Ipv4Addr::from(0x0a00_0000 + (i << 8));
            s.insert(format!("{ip}/24").parse().unwrap());
        }
        assert_eq!(s.len(), 5000);
        assert_eq!(s.by_prefix.len(), 1);
        assert!(s.matches("10.0.19.7".parse().unwrap()));
    }
}
