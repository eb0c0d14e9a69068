//! Address rules: which peer IP addresses may even try to authenticate.
//!
//! Entries are single addresses or CIDR ranges, IPv4 or IPv6. An IPv4-mapped IPv6 address
//! (`::ffff:10.0.0.1`, what an IPv6 listener reports for an IPv4 client) is treated as the
//! IPv4 address, in rules and in requests alike. An IPv6 link-local entry may name a zone
//! (`fe80::1%eth0`, `fe80::%eth0/64`): it then matches peers on that interface only, while
//! an entry without a zone matches every zone. Matching costs one hash lookup per distinct
//! prefix length in use, so thousands of ranges cost no more than a handful.
//!
//! A list stays in force when its last entry is removed: an emptied allow-list refuses every
//! address, an emptied deny-list denies no IP but, being a list in force, still refuses peers
//! that are not IP peers (IPC without an IPC rule, unreadable addresses). Removing entries
//! never widens access beyond what the remaining list says. Only an explicit reset
//! (`ClearAddressRules`, or setting the rules to [`AddressRules::Open`]) stops the filtering.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use ipnet::{IpNet, Ipv6Net};

use super::peer::{split_zone, Zone};
use super::{PolicyError, Refusal};

/// Why a text is not an address rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not an IP address or CIDR range ({why})")]
pub struct AddressError {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// One address rule: an address, a prefix length (32 or 128 for a single address) and, for
/// IPv6 link-local ranges only, an optional zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AddressPattern {
    /// Always truncated: the host bits past the prefix are zero.
    net: IpNet,
    zone: Option<Zone>,
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

/// `ip` with the bits past `prefix` cleared; `None` if `prefix` is longer than the address
/// (never for the groups of an [`AddressSet`], which only hold valid prefix lengths).
fn network_of(ip: IpAddr, prefix: u8) -> Option<IpAddr> {
    IpNet::new(ip, prefix).ok().map(|net| net.network())
}

fn network_of_v6(ip: Ipv6Addr, prefix: u8) -> Option<Ipv6Addr> {
    Ipv6Net::new(ip, prefix).ok().map(|net| net.network())
}

/// `fe80::/10`, where zones mean something.
const LINK_LOCAL: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10);

/// Whether a network lies inside `fe80::/10`.
fn is_link_local(net: &IpNet) -> bool {
    matches!(net, IpNet::V6(v6) if LINK_LOCAL.contains(v6))
}

impl AddressPattern {
    /// Whether `ip`, a peer address without a zone, falls inside this rule. A rule with a
    /// zone matches only peers with that zone, so never this.
    pub fn matches(&self, ip: IpAddr) -> bool {
        self.matches_zoned(ip, None)
    }

    /// Whether `ip`, arriving with `zone`, falls inside this rule: a rule without a zone
    /// matches every zone, a rule with a zone only that zone.
    pub fn matches_zoned(&self, ip: IpAddr, zone: Option<Zone>) -> bool {
        let zone_ok = self.zone.is_none() || self.zone == zone;
        zone_ok && self.net.contains(&canonical(ip))
    }

    /// The zone this rule is limited to, if any.
    pub fn zone(&self) -> Option<&str> {
        self.zone.as_ref().map(Zone::as_str)
    }
}

impl FromStr for AddressPattern {
    type Err = AddressError;

    /// Parses `address`, `address/prefix`, and for IPv6 link-local `address%zone` and
    /// `address%zone/prefix`.
    fn from_str(text: &str) -> Result<Self, AddressError> {
        let error = |why| AddressError {
            text: text.to_owned(),
            why,
        };
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        if prefix.is_some_and(|p| p.contains('%')) {
            return Err(error(
                "the zone goes before the prefix length: fe80::%eth0/64",
            ));
        }
        let (addr, zone) = split_zone(addr.trim());
        let zone = zone
            .transpose()
            .map_err(|()| error("bad zone: an interface name or index of 1 to 15 bytes"))?;
        let parsed: IpAddr = addr.parse().map_err(|_| error("not an IP address"))?;
        let mapped = matches!(parsed, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some());
        let ip = canonical(parsed);
        let width: u8 = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) => {
                let p: u8 = p.trim().parse().map_err(|_| error("bad prefix length"))?;
                // A mapped range like ::ffff:10.0.0.0/104 means 10.0.0.0/8.
                if mapped {
                    p.checked_sub(96).ok_or(error("bad prefix length"))?
                } else {
                    p
                }
            }
        };
        let net = IpNet::new(ip, prefix)
            .map_err(|_| error("prefix longer than the address"))?
            .trunc();
        // libzmq reports a zone only for link-local peers; a zone anywhere else would make a
        // rule that silently never matches (a deny-list entry that denies nothing).
        if zone.is_some() && !is_link_local(&net) {
            return Err(error(
                "a zone only goes with IPv6 link-local addresses (inside fe80::/10)",
            ));
        }
        Ok(AddressPattern { net, zone })
    }
}

impl fmt::Display for AddressPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.net.addr())?;
        if let Some(zone) = &self.zone {
            write!(f, "%{}", zone.as_str())?;
        }
        if self.net.prefix_len() != self.net.max_prefix_len() {
            write!(f, "/{}", self.net.prefix_len())?;
        }
        Ok(())
    }
}

/// A set of address rules with lookups grouped by prefix length.
///
/// Rules with a zone sit in groups of their own, consulted only for peers that arrive with
/// a zone, so the common case costs exactly what it did without zones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressSet {
    by_prefix: BTreeMap<(bool, u8), HashSet<IpAddr>>,
    zoned: BTreeMap<u8, HashSet<(Ipv6Addr, Zone)>>,
    len: usize,
}

/// The network of a zoned pattern (always IPv6: see `FromStr`).
fn zoned_key(pattern: &AddressPattern, zone: Zone) -> Option<(Ipv6Addr, Zone)> {
    match pattern.net {
        IpNet::V6(v6) => Some((v6.addr(), zone)),
        IpNet::V4(_) => None,
    }
}

impl AddressPattern {
    /// The group key of a pattern without a zone: (IPv4?, prefix length).
    fn group(&self) -> (bool, u8) {
        (self.net.addr().is_ipv4(), self.net.prefix_len())
    }
}

impl AddressSet {
    /// Adds a rule; false if it was already there.
    pub fn insert(&mut self, pattern: AddressPattern) -> bool {
        let added = match pattern.zone {
            None => self
                .by_prefix
                .entry(pattern.group())
                .or_default()
                .insert(pattern.net.addr()),
            Some(zone) => zoned_key(&pattern, zone).is_some_and(|key| {
                let prefix = pattern.net.prefix_len();
                self.zoned.entry(prefix).or_default().insert(key)
            }),
        };
        self.len += usize::from(added);
        added
    }

    /// Removes a rule; false if it was not there.
    pub fn remove(&mut self, pattern: &AddressPattern) -> bool {
        let removed = match pattern.zone {
            None => remove_from(&mut self.by_prefix, pattern.group(), &pattern.net.addr()),
            Some(zone) => zoned_key(pattern, zone)
                .is_some_and(|key| remove_from(&mut self.zoned, pattern.net.prefix_len(), &key)),
        };
        self.len -= usize::from(removed);
        removed
    }

    /// Whether a rule equals `pattern`.
    pub fn contains(&self, pattern: &AddressPattern) -> bool {
        match pattern.zone {
            None => self
                .by_prefix
                .get(&pattern.group())
                .is_some_and(|set| set.contains(&pattern.net.addr())),
            Some(zone) => zoned_key(pattern, zone).is_some_and(|key| {
                self.zoned
                    .get(&pattern.net.prefix_len())
                    .is_some_and(|set| set.contains(&key))
            }),
        }
    }

    /// Whether any rule covers `ip`, a peer address without a zone.
    pub fn matches(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.by_prefix
            .iter()
            .filter(|((v4, _), _)| *v4 == ip.is_ipv4())
            .any(|((_, prefix), set)| network_of(ip, *prefix).is_some_and(|n| set.contains(&n)))
    }

    /// Whether any rule covers `ip` arriving with `zone`: rules without a zone cover every
    /// zone, rules with one only their own.
    pub fn matches_zoned(&self, ip: IpAddr, zone: Option<Zone>) -> bool {
        if self.matches(ip) {
            return true;
        }
        match (canonical(ip), zone) {
            (IpAddr::V6(v6), Some(zone)) => self.zoned.iter().any(|(prefix, set)| {
                network_of_v6(v6, *prefix).is_some_and(|n| set.contains(&(n, zone)))
            }),
            _ => false,
        }
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
        // Every group holds networks already checked against its prefix length.
        let plain = self.by_prefix.iter().flat_map(|(&(_, prefix), set)| {
            set.iter().filter_map(move |&network| {
                let net = IpNet::new(network, prefix).ok()?;
                Some(AddressPattern { net, zone: None })
            })
        });
        let zoned = self.zoned.iter().flat_map(|(&prefix, set)| {
            set.iter().filter_map(move |&(network, zone)| {
                let net = IpNet::V6(Ipv6Net::new(network, prefix).ok()?);
                Some(AddressPattern {
                    net,
                    zone: Some(zone),
                })
            })
        });
        let mut all: Vec<AddressPattern> = plain.chain(zoned).collect();
        all.sort();
        all
    }
}

/// Removes `item` from the group `key`, dropping the group when it empties.
fn remove_from<K: Ord, T: std::hash::Hash + Eq>(
    groups: &mut BTreeMap<K, HashSet<T>>,
    key: K,
    item: &T,
) -> bool {
    let Some(set) = groups.get_mut(&key) else {
        return false;
    };
    let removed = set.remove(item);
    if set.is_empty() {
        groups.remove(&key);
    }
    removed
}

/// Whether peers are filtered by an allow-list, a deny-list, or not at all.
///
/// Allow and deny are mutually exclusive, as in pyzmq: mixing them is a configuration error.
/// Unlike pyzmq, an empty allow-list is in force and refuses everyone (see the module
/// documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AddressRules {
    /// No IP filtering: every address may try to authenticate.
    #[default]
    Open,
    /// Only these addresses may; others get `400 Address not allowed`. Empty: nobody may.
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
    /// Requests of this ZAP domain, in addition to the global rules. Never `"*"`: the
    /// global rules already cover every domain.
    Domain(String),
}

impl AddressRules {
    /// Adds patterns to the list of `kind`; an error if the other kind is in force.
    ///
    /// An allow-list counts as in force even when empty (it refuses everyone), so a deny
    /// sent to it is refused; an empty deny-list may become an allow-list (a narrowing).
    /// Adding no patterns to `Open` still puts the list in force: `allow([])` refuses
    /// everyone.
    pub fn add(
        &mut self,
        kind: ListKind,
        patterns: impl IntoIterator<Item = AddressPattern>,
    ) -> Result<(), PolicyError> {
        let set = match (kind, &mut *self) {
            (ListKind::Allow, AddressRules::Deny(s)) if !s.is_empty() => {
                return Err(PolicyError::AllowAndDeny { existing: "deny" })
            }
            (ListKind::Deny, AddressRules::Allow(_)) => {
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
        Ok(())
    }

    /// Removes patterns from whichever list is in force; returns how many were there.
    ///
    /// A list whose last entry goes stays in force: an emptied allow-list refuses every
    /// address, an emptied deny-list denies no IP but still refuses peers that are not IP
    /// peers (see the module documentation).
    pub fn remove<'p>(&mut self, patterns: impl IntoIterator<Item = &'p AddressPattern>) -> usize {
        match self {
            AddressRules::Open => 0,
            AddressRules::Allow(set) | AddressRules::Deny(set) => {
                patterns.into_iter().filter(|p| set.remove(p)).count()
            }
        }
    }

    /// Whether no IP list is in force.
    pub fn is_open(&self) -> bool {
        matches!(self, AddressRules::Open)
    }

    /// The verdict of this IP list for an IP peer (with its zone, if it arrived with one).
    ///
    /// This is the IP part of [`AddressFilter::check`](super::AddressFilter::check), the one
    /// filter the authenticator applies to a request's address frame (it also decides IPC
    /// peers and frames that are not an address).
    pub fn check_ip(&self, ip: IpAddr, zone: Option<Zone>) -> AddressVerdict {
        match self {
            AddressRules::Open => AddressVerdict::NotFiltered,
            AddressRules::Allow(set) if set.matches_zoned(ip, zone) => AddressVerdict::Allowed,
            AddressRules::Allow(_) => AddressVerdict::Refused(Refusal::AddressNotAllowed),
            AddressRules::Deny(set) if set.matches_zoned(ip, zone) => {
                AddressVerdict::Refused(Refusal::AddressDenied)
            }
            AddressRules::Deny(_) => AddressVerdict::NotFiltered,
        }
    }
}

/// What the address rules say about a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressVerdict {
    /// On an allow-list (or admitted by an IPC rule).
    Allowed,
    /// No allow-list says yes, no deny-list says no.
    NotFiltered,
    /// Refused: [`Refusal::AddressNotAllowed`] or [`Refusal::AddressDenied`].
    Refused(Refusal),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::AddressFilter;
    use std::net::Ipv4Addr;

    /// What the one filter the authenticator applies says with these IP rules alone.
    fn verdict(rules: &AddressRules, address: &str) -> AddressVerdict {
        let mut filter = AddressFilter::default();
        filter.set(rules.clone());
        filter.check(address)
    }

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
        assert_eq!(verdict(&allow, "127.0.0.1"), AddressVerdict::Allowed);
        assert_eq!(
            verdict(&allow, "127.0.0.2"),
            AddressVerdict::Refused(Refusal::AddressNotAllowed)
        );
        assert_eq!(
            verdict(&allow, "not-an-ip"),
            AddressVerdict::Refused(Refusal::AddressNotAllowed)
        );
        let deny = AddressRules::Deny(set(&["127.0.0.1"]));
        assert_eq!(
            verdict(&deny, "127.0.0.1"),
            AddressVerdict::Refused(Refusal::AddressDenied)
        );
        assert_eq!(verdict(&deny, "127.0.0.2"), AddressVerdict::NotFiltered);
        assert_eq!(
            verdict(&AddressRules::Open, "1.2.3.4"),
            AddressVerdict::NotFiltered
        );
    }

    fn zone(text: &str) -> Option<Zone> {
        Some(Zone::new(text).unwrap())
    }

    #[test]
    fn link_local_rules_may_name_a_zone() {
        for (text, shown) in [
            ("fe80::1%eth0", "fe80::1%eth0"),
            ("fe80::1:2%eth0/64", "fe80::%eth0/64"),
            ("FE80::%veth-b1/10", "fe80::%veth-b1/10"),
            ("fe80::1%7", "fe80::1%7"),
            ("fe80::1", "fe80::1"),
        ] {
            let pattern: AddressPattern = text.parse().unwrap();
            assert_eq!(pattern.to_string(), shown);
            assert_eq!(shown.parse::<AddressPattern>().unwrap(), pattern);
        }
        assert_eq!(
            "fe80::1%eth0".parse::<AddressPattern>().unwrap().zone(),
            Some("eth0")
        );
    }

    #[test]
    fn zones_outside_link_local_or_misplaced_are_typed_errors() {
        for bad in [
            "10.0.0.1%eth0",
            "::ffff:10.0.0.1%eth0",
            "2001:db8::1%eth0",
            "::%eth0/0",
            "fe80::%eth0/9",
            "fe80::1%",
            "fe80::1%this-is-too-long",
            "fe80::/64%eth0",
            "fe80::1%eth0%1",
        ] {
            assert!(bad.parse::<AddressPattern>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_rule_without_zone_matches_every_zone_and_a_zoned_rule_only_its_own() {
        let ip: IpAddr = "fe80::2".parse().unwrap();
        let any = set(&["fe80::/10"]);
        assert!(any.matches_zoned(ip, zone("eth0")));
        assert!(any.matches_zoned(ip, zone("3")));
        assert!(any.matches_zoned(ip, None));

        let eth0 = set(&["fe80::%eth0/64"]);
        assert!(eth0.matches_zoned(ip, zone("eth0")));
        assert!(!eth0.matches_zoned(ip, zone("eth1")));
        assert!(!eth0.matches_zoned(ip, None));
        assert!(!eth0.matches(ip));
        assert!(!eth0.matches_zoned("fe81::2".parse().unwrap(), zone("eth0")));

        let pattern: AddressPattern = "fe80::2%eth0".parse().unwrap();
        assert!(pattern.matches_zoned(ip, zone("eth0")));
        assert!(!pattern.matches_zoned(ip, zone("eth1")));
        assert!(!pattern.matches(ip));
    }

    #[test]
    fn zoned_and_plain_rules_are_kept_and_removed_apart() {
        let mut s = set(&["fe80::/64", "fe80::%eth0/64", "fe80::%eth1/64"]);
        assert_eq!(s.len(), 3);
        assert_eq!(
            s.patterns()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["fe80::/64", "fe80::%eth0/64", "fe80::%eth1/64"]
        );
        assert!(s.remove(&"fe80::/64".parse().unwrap()));
        let ip: IpAddr = "fe80::9".parse().unwrap();
        assert!(!s.matches_zoned(ip, zone("eth2")));
        assert!(s.matches_zoned(ip, zone("eth1")));
        assert!(s.contains(&"fe80::%eth0/64".parse().unwrap()));
        assert!(s.remove(&"fe80::%eth0/64".parse().unwrap()));
        assert!(!s.remove(&"fe80::%eth0/64".parse().unwrap()));
        assert!(!s.matches_zoned(ip, zone("eth0")));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn zoned_peers_are_checked_against_both_kinds_of_list() {
        let deny = AddressRules::Deny(set(&["fe80::/10"]));
        assert_eq!(
            verdict(&deny, "fe80::1%eth0"),
            AddressVerdict::Refused(Refusal::AddressDenied)
        );
        let allow = AddressRules::Allow(set(&["fe80::%eth0/64"]));
        assert_eq!(verdict(&allow, "fe80::1%eth0"), AddressVerdict::Allowed);
        assert_eq!(
            verdict(&allow, "fe80::1%eth1"),
            AddressVerdict::Refused(Refusal::AddressNotAllowed)
        );
    }

    #[test]
    fn an_emptied_allow_list_stays_in_force_and_an_emptied_deny_list_opens() {
        let one: AddressPattern = "10.0.0.5".parse().unwrap();
        let mut allow = AddressRules::Open;
        allow.add(ListKind::Allow, [one]).unwrap();
        assert_eq!(allow.remove([&one]), 1);
        assert_eq!(allow, AddressRules::Allow(AddressSet::default()));
        assert_eq!(
            verdict(&allow, "10.0.0.5"),
            AddressVerdict::Refused(Refusal::AddressNotAllowed)
        );
        assert_eq!(
            allow.add(ListKind::Deny, [one]),
            Err(PolicyError::AllowAndDeny { existing: "allow" })
        );
        assert_eq!(allow, AddressRules::Allow(AddressSet::default()));

        let mut deny = AddressRules::Open;
        deny.add(ListKind::Deny, [one]).unwrap();
        assert_eq!(deny.remove([&one]), 1);
        // Still in force: denies no IP, refuses what is not an IP peer.
        assert_eq!(deny, AddressRules::Deny(AddressSet::default()));
        assert!(!deny.is_open());
        deny.add(ListKind::Allow, [one]).unwrap();
        let mut nothing = AddressRules::Open;
        nothing.add(ListKind::Allow, []).unwrap();
        assert_eq!(
            verdict(&nothing, "127.0.0.1"),
            AddressVerdict::Refused(Refusal::AddressNotAllowed)
        );
    }

    #[test]
    fn the_mixing_error_reads_well() {
        let allow = PolicyError::AllowAndDeny { existing: "allow" }.to_string();
        assert!(allow.contains("an allow-list"), "{allow}");
        let deny = PolicyError::AllowAndDeny { existing: "deny" }.to_string();
        assert!(deny.contains("a deny-list"), "{deny}");
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
