//! Address rules: which peer IP addresses may even try to authenticate.
//!
//! Entries are single addresses or CIDR ranges, IPv4 or IPv6. An IPv4-mapped IPv6 address
//! (`::ffff:10.0.0.1`, what an IPv6 listener reports for an IPv4 client) is treated as the
//! IPv4 address, in rules and in requests alike. Matching costs one hash lookup per distinct
//! prefix length in use, so thousands of ranges cost no more than a handful.
//!
//! IPv6 zones: see [`AddressPattern`].
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

use super::peer::{split_zone, Zone, ZoneProblem};
use super::{PolicyError, Refusal};

/// Why a text is not an address rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// Not an address or range: no IP address, a bad prefix length, or a zone where none
    /// belongs (outside `fe80::/10`, or after the prefix length).
    #[error("{text:?} is not an IP address or CIDR range ({why})")]
    Invalid {
        /// The text given.
        text: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The zone is a number, an interface index (`fe80::%3/64`). Such a rule would not match
    /// the peers it means: libzmq reports link-local peers with the interface's name.
    #[error(
        "{text:?}: the zone {zone:?} is an interface index; write the interface's name \
         instead (fe80::%eth0/64): libzmq reports link-local peers with the interface name, \
         not the index, so this rule would not match the peers it means, and an index only \
         means something inside one network namespace and goes stale when the interface is \
         re-created"
    )]
    NumericZone {
        /// The text given.
        text: String,
        /// The zone in it.
        zone: String,
    },
    /// The zone is not a valid Linux interface name (see [`Zone`]).
    #[error("{text:?}: the zone {zone:?} is not a Linux interface name ({why})")]
    BadZoneName {
        /// The text given.
        text: String,
        /// The zone in it.
        zone: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

impl AddressError {
    /// The text that was refused.
    pub fn text(&self) -> &str {
        match self {
            AddressError::Invalid { text, .. }
            | AddressError::NumericZone { text, .. }
            | AddressError::BadZoneName { text, .. } => text,
        }
    }
}

/// One address rule: an address, a prefix length (32 or 128 for a single address) and, for
/// IPv6 link-local ranges only, an optional zone, written as an interface name.
///
/// # Zones
///
/// libzmq 4.3 reports an IPv6 link-local peer with the name of the interface it came in on,
/// `fe80::2%eth0`. An entry inside `fe80::/10` may name that zone (`fe80::2%eth0`,
/// `fe80::%eth0/64`) and then matches peers on that interface only; an entry without a zone
/// matches every zone. A zone is written as the interface's name, which must be a valid
/// Linux interface name (see [`Zone`]), else [`AddressError::BadZoneName`]. A zone written
/// as a number (`fe80::%3/64`) is refused with [`AddressError::NumericZone`]: libzmq reports
/// the name, not the index, so the entry would not match the peers it means (a deny entry
/// that denies nothing), and an index is only meaningful inside one network namespace and
/// goes stale when the interface is re-created. A zone on any other address is refused too
/// ([`AddressError::Invalid`]): libzmq reports none there. So every accepted entry matches
/// every peer it names, with one doubt left: a peer whose interface libzmq could not name
/// arrives with the index ([`Zone::is_index`]), and then a zoned allow entry does not admit
/// it while a zoned deny entry whose range holds its address refuses it.
///
/// libzmq names the interface on its I/O thread, in that thread's network namespace (the
/// namespace of the thread that created the context's first socket): create the context in
/// the namespace whose interfaces its sockets use, or names come from another namespace.
///
/// ```
/// use actix_zap::policy::{AddressError, AddressPattern};
/// let rule: AddressPattern = "fe80::%eth0/64".parse().unwrap();
/// assert_eq!(rule.zone(), Some("eth0"));
/// assert!(matches!(
///     "fe80::%3/64".parse::<AddressPattern>(),
///     Err(AddressError::NumericZone { .. })
/// ));
/// ```
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

    /// The zone this rule is limited to, if any: an interface name.
    pub fn zone(&self) -> Option<&str> {
        self.zone.as_ref().map(Zone::as_str)
    }
}

impl FromStr for AddressPattern {
    type Err = AddressError;

    /// Parses `address`, `address/prefix`, and for IPv6 link-local `address%zone` and
    /// `address%zone/prefix`, where the zone is an interface name (see [`AddressPattern`]).
    fn from_str(text: &str) -> Result<Self, AddressError> {
        let error = |why| AddressError::Invalid {
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
        let Some(zone) = zone else {
            return Ok(AddressPattern { net, zone: None });
        };
        // libzmq reports a zone only for link-local peers; a zone anywhere else would make a
        // rule that silently never matches (a deny-list entry that denies nothing).
        if !is_link_local(&net) {
            return Err(error(
                "a zone only goes with IPv6 link-local addresses (inside fe80::/10)",
            ));
        }
        // The same goes for an index: libzmq names the interface.
        let zone = Zone::name(zone).map_err(|problem| match problem {
            ZoneProblem::Index => AddressError::NumericZone {
                text: text.to_owned(),
                zone: zone.to_owned(),
            },
            ZoneProblem::BadName(why) => AddressError::BadZoneName {
                text: text.to_owned(),
                zone: zone.to_owned(),
                why,
            },
        })?;
        Ok(AddressPattern {
            net,
            zone: Some(zone),
        })
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

    /// Whether any rule's range holds `ip`, whatever the rule's zone: what a deny-list asks
    /// about a peer whose zone is an index (an interface libzmq could not name), which may
    /// be the interface a zoned rule names. Zoned rules are few, and this is asked only for
    /// such peers, so their groups are scanned.
    pub(crate) fn matches_any_zone(&self, ip: IpAddr) -> bool {
        if self.matches(ip) {
            return true;
        }
        let IpAddr::V6(v6) = canonical(ip) else {
            return false;
        };
        self.zoned.iter().any(|(prefix, set)| {
            network_of_v6(v6, *prefix)
                .is_some_and(|network| set.iter().any(|(rule, _)| *rule == network))
        })
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
/// Unlike pyzmq, an empty allow-list is in force and refuses everyone, and an empty deny-list
/// is in force too: it denies no IP, but peers that are not IP peers are refused (see
/// [`AddressFilter::check`](super::AddressFilter::check), which applies these lists).
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
    /// peers (`ipc://` peers without an IPC rule, unreadable addresses).
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
    #[inline]
    pub fn check_ip(&self, ip: IpAddr, zone: Option<Zone>) -> AddressVerdict {
        match self {
            AddressRules::Open => AddressVerdict::NotFiltered,
            AddressRules::Allow(set) if set.matches_zoned(ip, zone) => AddressVerdict::Allowed,
            AddressRules::Allow(_) => AddressVerdict::Refused(Refusal::AddressNotAllowed),
            AddressRules::Deny(set) => {
                // A peer whose interface libzmq could not name (its zone is an index) may be
                // on the interface a zoned entry names: the doubt goes against the peer.
                let denied = match zone {
                    Some(zone) if zone.is_index() => set.matches_any_zone(ip),
                    _ => set.matches_zoned(ip, zone),
                };
                if denied {
                    AddressVerdict::Refused(Refusal::AddressDenied)
                } else {
                    AddressVerdict::NotFiltered
                }
            }
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
            (" fe80::1%eth0.100 ", "fe80::1%eth0.100"),
            ("fe80::%br-1a2b3c4d5e6f/64", "fe80::%br-1a2b3c4d5e6f/64"),
            ("fe80::1%abcdefghijklmno", "fe80::1%abcdefghijklmno"),
            ("fe80::1%3a", "fe80::1%3a"),
            ("fe80::1%+3", "fe80::1%+3"),
            ("fe80::1%wlö0", "fe80::1%wlö0"),
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

    fn invalid(text: &str) -> &'static str {
        match text.parse::<AddressPattern>() {
            Err(AddressError::Invalid { text: given, why }) if given == text => why,
            other => panic!("{text:?}: expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn zones_outside_link_local_or_misplaced_are_typed_errors() {
        for bad in [
            "10.0.0.1%eth0",
            "::ffff:10.0.0.1%eth0",
            "2001:db8::1%eth0",
            "::%eth0/0",
            "fe80::%eth0/9",
            // Outside link-local is said first, even for a zone that is a number.
            "10.0.0.1%3",
            "2001:db8::1%3",
        ] {
            assert!(invalid(bad).contains("link-local"), "{bad}");
        }
        assert!(invalid("fe80::/64%eth0").contains("before the prefix"));
        // A '/' ends the address: the rest is a prefix length.
        assert_eq!(invalid("fe80::1%a/b"), "bad prefix length");
        assert_eq!(
            invalid("fe80::1%eth0/129"),
            "prefix longer than the address"
        );
    }

    #[test]
    fn a_zone_written_as_a_number_is_refused_with_the_reason() {
        for (text, zone) in [
            ("fe80::%3/64", "3"),
            ("fe80::1%3", "3"),
            ("FE80::1%0", "0"),
            ("fe80::1%007", "007"),
            ("fe80::1%4294967296", "4294967296"),
            ("fe80::%123456789012345/10", "123456789012345"),
        ] {
            match text.parse::<AddressPattern>() {
                Err(AddressError::NumericZone { text: t, zone: z }) => {
                    assert_eq!((t.as_str(), z.as_str()), (text, zone));
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
        let error = "fe80::%3/64".parse::<AddressPattern>().unwrap_err();
        assert_eq!(error.text(), "fe80::%3/64");
        let message = error.to_string();
        for says in [
            "interface index",
            "libzmq reports link-local peers with the interface name",
            "network namespace",
            "re-created",
            "write the interface's name",
        ] {
            assert!(message.contains(says), "{message:?} lacks {says:?}");
        }
    }

    #[test]
    fn a_zone_that_is_no_linux_interface_name_is_refused() {
        for (text, why) in [
            ("fe80::1%", "empty"),
            ("fe80::%/64", "empty"),
            ("fe80::1%this-is-too-long", "15 bytes"),
            ("fe80::1%abcdefghijklmnop", "15 bytes"),
            ("fe80::1%ööööööööö", "15 bytes"),
            ("fe80::1%.", "\".\""),
            ("fe80::1%..", "\".\""),
            ("fe80::1%eth0:1", "':'"),
            ("fe80::1%eth0%1", "'%'"),
            ("fe80::1%a b", "white space"),
            ("fe80::1%a\tb", "white space"),
            ("fe80::1%a\u{b}b", "white space"),
            // U+00A0 is C2 A0 in UTF-8; the kernel takes the byte A0 as white space.
            ("fe80::1%a\u{a0}b", "0xA0"),
            ("fe80::1%wlà0", "0xA0"),
            ("fe80::1%a\0b", "NUL"),
        ] {
            match text.parse::<AddressPattern>() {
                Err(AddressError::BadZoneName {
                    text: t,
                    zone,
                    why: w,
                }) => {
                    assert_eq!(t, text);
                    assert_eq!(
                        Some(zone.as_str()),
                        text.trim()
                            .split_once('%')
                            .map(|z| z.1.split('/').next().unwrap())
                    );
                    assert!(w.contains(why), "{text:?}: {w:?}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
        let message = "fe80::1%a b"
            .parse::<AddressPattern>()
            .unwrap_err()
            .to_string();
        assert!(message.contains("not a Linux interface name"), "{message}");
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
    fn a_peer_whose_interface_has_no_name_gets_the_doubt_against_it() {
        // libzmq gives the index when it could not name the interface (it was removed, or
        // the lookup could not open its socket).
        let unnamed = "fe80::2%3";
        let deny = AddressRules::Deny(set(&["fe80::%eth0/64"]));
        assert_eq!(
            verdict(&deny, unnamed),
            AddressVerdict::Refused(Refusal::AddressDenied)
        );
        assert_eq!(verdict(&deny, "fe80::2%eth1"), AddressVerdict::NotFiltered);
        assert_eq!(
            verdict(&deny, "fe80:0:0:1::2%3"),
            AddressVerdict::NotFiltered
        );
        let deny_one = AddressRules::Deny(set(&["fe80::2%eth0", "10.0.0.0/8"]));
        assert_eq!(
            verdict(&deny_one, unnamed),
            AddressVerdict::Refused(Refusal::AddressDenied)
        );
        assert_eq!(verdict(&deny_one, "fe80::3%3"), AddressVerdict::NotFiltered);
        let deny_all = AddressRules::Deny(set(&["fe80::/10"]));
        assert_eq!(
            verdict(&deny_all, unnamed),
            AddressVerdict::Refused(Refusal::AddressDenied)
        );

        let allow = AddressRules::Allow(set(&["fe80::%eth0/64"]));
        assert_eq!(
            verdict(&allow, unnamed),
            AddressVerdict::Refused(Refusal::AddressNotAllowed)
        );
        let allow_all = AddressRules::Allow(set(&["fe80::/10"]));
        assert_eq!(verdict(&allow_all, unnamed), AddressVerdict::Allowed);
    }

    #[test]
    fn a_zoned_rule_matches_every_peer_libzmq_reports_on_its_interface() {
        // What a rule names, parsed the way a peer's frame is: the same zone.
        for name in [
            "eth0",
            "veth-b1",
            "eth0.100",
            "wlö0",
            "+3",
            "abcdefghijklmno",
        ] {
            let rule: AddressPattern = format!("fe80::%{name}/64").parse().unwrap();
            let crate::policy::Peer::Ip { ip, zone } =
                crate::policy::Peer::parse(&format!("fe80::2%{name}"))
            else {
                panic!("{name}: not an IP peer");
            };
            assert!(rule.matches_zoned(ip, zone), "{name}");
            assert_eq!(zone.map(|z| z.is_index()), Some(false), "{name}");
            let rules = AddressRules::Deny(set(&[&rule.to_string()]));
            assert_eq!(
                rules.check_ip(ip, zone),
                AddressVerdict::Refused(Refusal::AddressDenied)
            );
        }
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
