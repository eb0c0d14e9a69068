//! What a ZAP request's address frame says about the peer: an IP address (perhaps with an
//! IPv6 zone), an IPC peer with its credentials, or nothing usable.
//!
//! The frame is whatever libzmq's transport gives; measured on libzmq 4.3.4 (Linux):
//! - TCP: the numeric address without port, `127.0.0.1`, `::1`, `::ffff:127.0.0.1` (an IPv4
//!   client of a dual-stack listener), and for IPv6 link-local peers the address with the
//!   zone of the interface it came in on, `fe80::2%eth0`: `getnameinfo` with
//!   `NI_NUMERICHOST` gives the interface's name (looked up with `if_indextoname` in the
//!   network namespace of libzmq's I/O thread), or its index, `fe80::2%3`, only when that
//!   lookup fails. Both parse, as a [`Zone`] that [`is_index`](Zone::is_index) tells apart;
//!   a zone that is neither (not a Linux interface name, not a number) makes the frame
//!   [`Peer::Unknown`].
//! - IPC: `getnameinfo` gives `localhost` for a Unix socket, and libzmq appends the peer's
//!   `SO_PEERCRED` credentials as `:UID:GID:PID` — `localhost:1000:1000:30085` (seen with
//!   a root client: `localhost:0:0:13704`). On BSDs (`LOCAL_PEERCRED`) the pid is empty and
//!   the gid may be; when the credentials cannot be read the frame is `localhost` alone.
//! - An address libzmq could not name at all (e.g. other transports) arrives empty.
//!
//! A frame is parsed only when some address rule is in force; see
//! [`AddressFilter::check`](super::AddressFilter::check).

use std::fmt;
use std::net::IpAddr;

/// An IPv6 zone (scope): the interface a link-local peer came in on, the `eth0` of
/// `fe80::1%eth0`.
///
/// A zone is an interface **name** or, in a peer's address only, an interface **index**:
/// - libzmq 4.3 reports a link-local peer with the name of its interface (`getnameinfo`
///   looks it up with `if_indextoname`), and an address rule can only name a zone that way
///   (see [`AddressPattern`](super::AddressPattern)). A name is a valid Linux interface name:
///   1 to 15 bytes, not `.` or `..`, no `/`, `:`, `%`, NUL or white space (the kernel's: tab,
///   newline, vertical tab, form feed, carriage return, space and the byte 0xA0), and not
///   all digits.
/// - A peer's zone is a number only when that lookup failed: the interface was removed
///   meanwhile, the lookup could not open its socket, or libzmq's I/O thread runs in another
///   network namespace, where the index names nothing (where it names another interface,
///   that name is reported: create the context in the namespace its sockets use). glibc
///   then writes the index. All digits always reads as an index; an interface whose name is
///   all digits (Linux allows it) cannot be told from one, so it is handled as an index.
///
/// Zones compare as text, byte for byte: `eth0` and `Eth0` are different interfaces, and an
/// index never equals a name. See [`is_index`](Zone::is_index) for what address rules make of
/// an index.
///
/// Stored inline (at most 15 bytes, `IFNAMSIZ - 1`), so patterns holding one stay `Copy` and
/// matching never allocates.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Zone {
    len: u8,
    bytes: [u8; Zone::MAX],
}

/// Why a text is not a zone an address rule may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ZoneProblem {
    /// All digits: an interface index.
    Index,
    /// Not a Linux interface name, for this reason.
    BadName(&'static str),
}

impl Zone {
    /// The longest zone kept: an interface name of `IFNAMSIZ - 1` bytes.
    pub const MAX: usize = 15;

    /// A zone as a peer's address may carry it: an interface name, or an interface index
    /// (all digits, at most `u32::MAX`). `None` for anything else (see the type's
    /// documentation for what a name may hold).
    ///
    /// ```
    /// use actix_zap::policy::Zone;
    /// assert_eq!(Zone::new("eth0").unwrap().as_str(), "eth0");
    /// assert!(!Zone::new("eth0").unwrap().is_index());
    /// assert!(Zone::new("3").unwrap().is_index());
    /// assert!(Zone::new("").is_none());
    /// assert!(Zone::new("a b").is_none());
    /// ```
    pub fn new(text: &str) -> Option<Zone> {
        match Zone::name(text) {
            Ok(zone) => Some(zone),
            Err(ZoneProblem::Index) if text.parse::<u32>().is_ok() => Some(Zone::store(text)),
            Err(_) => None,
        }
    }

    /// An interface name, the only zone an address rule may name: refused when all digits
    /// (an index) or when Linux would not take it as an interface name (the kernel's
    /// `dev_valid_name`, plus `%`, which never survives in a name the kernel gives out).
    pub(crate) fn name(text: &str) -> Result<Zone, ZoneProblem> {
        let bad = |why| Err(ZoneProblem::BadName(why));
        if text.is_empty() {
            return bad("empty");
        }
        if text.len() > Zone::MAX {
            return bad("longer than 15 bytes");
        }
        if text == "." || text == ".." {
            return bad("\".\" and \"..\" are not interface names");
        }
        if text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ZoneProblem::Index);
        }
        for b in text.bytes() {
            match b {
                b'/' => return bad("holds a '/'"),
                b':' => return bad("holds a ':' (eth0:1 is an address label, not an interface)"),
                b'%' => return bad("holds a '%'"),
                0 => return bad("holds a NUL byte"),
                b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' => return bad("holds white space"),
                // The kernel's isspace takes Latin-1's no-break space too.
                0xa0 => {
                    return bad(
                        "holds the byte 0xA0, white space to the kernel (it is part of UTF-8 \
                         characters such as U+00A0 and à)",
                    )
                }
                _ => {}
            }
        }
        Ok(Zone::store(text))
    }

    fn store(text: &str) -> Zone {
        let mut bytes = [0; Zone::MAX];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        Zone {
            // At most Zone::MAX (15): checked by every caller.
            len: text.len() as u8,
            bytes,
        }
    }

    /// The zone's text.
    pub fn as_str(&self) -> &str {
        // Only whole `&str`s are ever stored (see `store`).
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }

    /// Whether this is an interface index: a peer whose interface libzmq could not name.
    ///
    /// Address rules name interfaces, never indexes, so no zoned rule equals such a zone; the
    /// address rules resolve the doubt against the peer. A zoned allow-list entry does not
    /// admit it, and a zoned deny-list entry whose range holds the address refuses it
    /// (`Address denied`), since the peer may well be on that interface. Rules without a
    /// zone match it like any other zone.
    pub fn is_index(&self) -> bool {
        self.as_str().bytes().all(|b| b.is_ascii_digit())
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Splits `addr%zone` at the first `%`.
pub(crate) fn split_zone(text: &str) -> (&str, Option<&str>) {
    match text.split_once('%') {
        Some((addr, zone)) => (addr, Some(zone)),
        None => (text, None),
    }
}

/// The credentials of an IPC peer, as far as libzmq could read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IpcPeer {
    /// The peer process's effective user id.
    pub uid: Option<u32>,
    /// The peer process's effective (primary) group id; supplementary groups are not sent.
    pub gid: Option<u32>,
    /// The peer process's id (informative only: pids are reused).
    pub pid: Option<u32>,
}

/// A request's address frame, interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// A TCP peer.
    Ip {
        /// Its address (an IPv4-mapped IPv6 address stays as given here).
        ip: IpAddr,
        /// The IPv6 zone it arrived with, if any: the name of the interface, or its index
        /// when libzmq could not name it (see [`Zone`]).
        zone: Option<Zone>,
    },
    /// An `ipc://` peer.
    Ipc(IpcPeer),
    /// Anything else: empty, or a form this crate does not know. Refused whenever an
    /// address rule is in force.
    Unknown,
}

impl Peer {
    /// Interprets an address frame as libzmq 4.3 writes it: a TCP peer's numeric address
    /// (`10.0.0.1`, `::ffff:10.0.0.1`, and for a link-local peer `fe80::2%eth0`, or
    /// `fe80::2%3` when libzmq could not name the interface: see [`Zone`]), an IPC peer's
    /// `localhost:UID:GID:PID` (each number possibly empty, or `localhost` alone), and
    /// anything else as [`Peer::Unknown`].
    ///
    /// ```
    /// use actix_zap::policy::{IpcPeer, Peer};
    /// assert!(matches!(Peer::parse("fe80::1%eth0"), Peer::Ip { zone: Some(z), .. } if z.as_str() == "eth0"));
    /// assert_eq!(
    ///     Peer::parse("localhost:1000:100:4242"),
    ///     Peer::Ipc(IpcPeer { uid: Some(1000), gid: Some(100), pid: Some(4242) })
    /// );
    /// assert_eq!(Peer::parse(""), Peer::Unknown);
    /// ```
    pub fn parse(address: &str) -> Peer {
        // The common case first, so a bare IP costs one parse, as it did before zones and
        // IPC peers were told apart.
        if let Ok(ip) = address.parse::<IpAddr>() {
            return Peer::Ip { ip, zone: None };
        }
        if let Some(credentials) = address.strip_prefix("localhost") {
            return ipc_peer(credentials).map_or(Peer::Unknown, Peer::Ipc);
        }
        match split_zone(address) {
            (ip, Some(zone)) => match (ip.parse::<IpAddr>(), Zone::new(zone)) {
                (Ok(ip @ IpAddr::V6(_)), Some(zone)) => Peer::Ip {
                    ip,
                    zone: Some(zone),
                },
                _ => Peer::Unknown,
            },
            _ => Peer::Unknown,
        }
    }
}

/// `""` or `:UID:GID:PID`, each number possibly empty; anything else is not an IPC peer.
fn ipc_peer(credentials: &str) -> Option<IpcPeer> {
    if credentials.is_empty() {
        return Some(IpcPeer::default());
    }
    let mut fields = credentials.strip_prefix(':')?.split(':');
    let mut number = || -> Option<Option<u32>> {
        match fields.next() {
            None | Some("") => Some(None),
            Some(text) if text.bytes().all(|b| b.is_ascii_digit()) => text.parse().ok().map(Some),
            Some(_) => None,
        }
    };
    let (uid, gid, pid) = (number()?, number()?, number()?);
    if fields.next().is_some() {
        return None;
    }
    Some(IpcPeer { uid, gid, pid })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libzmq_ipc_addresses_give_the_peer_credentials() {
        let peer = |uid, gid, pid| Peer::Ipc(IpcPeer { uid, gid, pid });
        assert_eq!(
            Peer::parse("localhost:0:0:30085"),
            peer(Some(0), Some(0), Some(30085))
        );
        // BSD's LOCAL_PEERCRED form, and credentials that could not be read.
        assert_eq!(
            Peer::parse("localhost:1000:20:"),
            peer(Some(1000), Some(20), None)
        );
        assert_eq!(
            Peer::parse("localhost:1000::"),
            peer(Some(1000), None, None)
        );
        assert_eq!(Peer::parse("localhost"), peer(None, None, None));
    }

    #[test]
    fn malformed_addresses_are_unknown() {
        for bad in [
            "",
            "localhost:x:0:1",
            "localhost:1:2:3:4",
            "localhost:-1:0:0",
            "localhost:99999999999:0:0",
            "localhostx",
            "localhost:+1:0:0",
            "example.com",
            "10.0.0.1%eth0",
            "fe80::1%",
            "fe80::1%eth0%1",
            "fe80::1%this-name-is-too-long",
            "fe80::1%a b",
            "fe80::1%a:b",
            "fe80::1%.",
            "fe80::1%a\0b",
            "fe80::1%99999999999",
            "[::1]",
            "10.0.0.1:5555",
        ] {
            assert_eq!(Peer::parse(bad), Peer::Unknown, "{bad:?}");
        }
    }

    #[test]
    fn ip_addresses_keep_their_zone() {
        let Peer::Ip { ip, zone } = Peer::parse("fe80::1%veth-a0") else {
            panic!("not an IP");
        };
        assert_eq!(ip, "fe80::1".parse::<IpAddr>().unwrap());
        assert_eq!(zone.unwrap().as_str(), "veth-a0");
        // The index, when libzmq could not name the interface.
        let Peer::Ip {
            zone: Some(zone), ..
        } = Peer::parse("fe80::1%3")
        else {
            panic!("not a zoned IP");
        };
        assert_eq!(zone.as_str(), "3");
        assert!(zone.is_index());
        assert_eq!(
            Peer::parse("127.0.0.1"),
            Peer::Ip {
                ip: "127.0.0.1".parse().unwrap(),
                zone: None
            }
        );
        assert!(matches!(
            Peer::parse("::ffff:10.0.0.1"),
            Peer::Ip { zone: None, .. }
        ));
    }

    #[test]
    fn a_zone_is_an_interface_name_or_an_index() {
        for name in [
            "eth0",
            "veth-a0",
            "eth0.100",
            "3a",
            "+3",
            "wlö0",
            "abcdefghijklmno",
        ] {
            let zone = Zone::new(name).unwrap();
            assert_eq!((zone.as_str(), zone.is_index()), (name, false));
            assert_eq!(Zone::name(name), Ok(zone));
        }
        for index in ["0", "3", "007", "4294967295"] {
            let zone = Zone::new(index).unwrap();
            assert_eq!((zone.as_str(), zone.is_index()), (index, true));
            // Never a zone an address rule may name.
            assert_eq!(Zone::name(index), Err(ZoneProblem::Index));
        }
        // Too big for an index, and digits only: no name either.
        assert_eq!(Zone::new("4294967296"), None);
        assert_eq!(Zone::name("4294967296"), Err(ZoneProblem::Index));
        for bad in ["", "abcdefghijklmnop", ".", "..", "a/b", "a:b", "a%b"] {
            assert_eq!(Zone::new(bad), None, "{bad:?}");
            assert!(
                matches!(Zone::name(bad), Err(ZoneProblem::BadName(_))),
                "{bad:?}"
            );
        }
        assert_ne!(Zone::new("eth0"), Zone::new("Eth0"));
    }
}
