//! What a ZAP request's address frame says about the peer: an IP address (perhaps with an
//! IPv6 zone), an IPC peer with its credentials, or nothing usable.
//!
//! The frame is whatever libzmq's transport gives; measured on libzmq 4.3.4 (Linux):
//! - TCP: the numeric address without port, `127.0.0.1`, `::1`, `::ffff:127.0.0.1` (an IPv4
//!   client of a dual-stack listener), and for IPv6 link-local peers the address with the
//!   zone of the interface it came in on, `fe80::2%eth0` (`getnameinfo` with
//!   `NI_NUMERICHOST`: the interface's name, or its index when the name is unknown).
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

/// An IPv6 zone (scope) as text, e.g. the `eth0` of `fe80::1%eth0`. Zones compare as text:
/// `eth0` and its index `2` are different zones.
///
/// Stored inline (interface names are at most 15 bytes on Linux, `IFNAMSIZ - 1`; numeric
/// zones are shorter), so patterns holding one stay `Copy` and matching never allocates.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Zone {
    len: u8,
    bytes: [u8; Zone::MAX],
}

impl Zone {
    /// The longest zone kept: an interface name of `IFNAMSIZ - 1` bytes.
    pub const MAX: usize = 15;

    /// A zone from its text; `None` when empty, longer than 15 bytes, or holding anything
    /// but printable ASCII other than `%` and `/`.
    ///
    /// ```
    /// use actix_zap::policy::Zone;
    /// assert_eq!(Zone::new("eth0").unwrap().as_str(), "eth0");
    /// assert!(Zone::new("").is_none());
    /// ```
    pub fn new(text: &str) -> Option<Zone> {
        let ok = |b: u8| b.is_ascii_graphic() && b != b'%' && b != b'/';
        if text.is_empty() || text.len() > Zone::MAX || !text.bytes().all(ok) {
            return None;
        }
        let mut bytes = [0; Zone::MAX];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        Some(Zone {
            len: text.len() as u8,
            bytes,
        })
    }

    /// The zone's text.
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored (see `new`).
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Splits `addr%zone`; the zone is `Some(Err(()))` when present but unusable.
pub(crate) fn split_zone(text: &str) -> (&str, Option<Result<Zone, ()>>) {
    match text.split_once('%') {
        Some((addr, zone)) => (addr, Some(Zone::new(zone).ok_or(()))),
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
        /// The IPv6 zone it arrived with, if any.
        zone: Option<Zone>,
    },
    /// An `ipc://` peer.
    Ipc(IpcPeer),
    /// Anything else: empty, or a form this crate does not know. Refused whenever an
    /// address rule is in force.
    Unknown,
}

impl Peer {
    /// Interprets an address frame (see the module documentation for the forms).
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
            (ip, Some(Ok(zone))) => match ip.parse::<IpAddr>() {
                Ok(ip @ IpAddr::V6(_)) => Peer::Ip {
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
        assert!(
            matches!(Peer::parse("fe80::1%3"), Peer::Ip { zone: Some(z), .. } if z.as_str() == "3")
        );
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
}
