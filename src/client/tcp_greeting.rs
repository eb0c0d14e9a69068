//! Reads a server's ZMTP greeting over a plain TCP connection of its own, within a deadline.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::greeting::{Greeting, GreetingError, GREETING_LEN, GREETING_START};

/// How a read of the greeting ended before 64 bytes arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadEnd {
    /// The server closed the connection.
    Closed,
    /// The deadline passed.
    TimedOut,
    /// The connection failed (e.g. reset).
    Failed(io::ErrorKind),
}

impl std::fmt::Display for ReadEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadEnd::Closed => f.write_str("the server closed the connection"),
            ReadEnd::TimedOut => f.write_str("the deadline passed"),
            ReadEnd::Failed(kind) => write!(f, "the connection failed ({kind})"),
        }
    }
}

/// Why the server's greeting was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GreetingUnread {
    /// The check was told not to read it
    /// ([`HandshakeCheck::read_greeting`](super::HandshakeCheck::read_greeting)).
    #[error("not read: turned off")]
    Disabled,
    /// Only `tcp://` endpoints are probed (`ipc://` and `inproc://` are not).
    #[error("not read: only tcp:// endpoints are probed, not {transport}://")]
    NotTcp {
        /// The endpoint's transport, or the whole endpoint when it has none.
        transport: String,
    },
    /// The endpoint names a source address (`tcp://source;host:port`), which a plain
    /// connection would not use.
    #[error("not read: the endpoint names a source address")]
    SourceAddress,
    /// The endpoint's host and port do not resolve to an address the socket would use (an
    /// IPv4 address, unless the socket has `ZMQ_IPV6` set).
    #[error("not read: cannot resolve {address:?}: {reason}")]
    Unresolved {
        /// The `host:port` part.
        address: String,
        /// What went wrong.
        reason: String,
    },
    /// The TCP connection could not be made (e.g. refused: nothing listens).
    #[error("not read: the TCP connection failed ({0})")]
    Connect(io::ErrorKind),
    /// Fewer than 64 bytes arrived, and nothing wrong in them.
    #[error("only {got} of the 64 greeting bytes arrived: {end}")]
    Incomplete {
        /// Bytes received.
        got: usize,
        /// How the read ended.
        end: ReadEnd,
    },
    /// The server answered with something that is not a ZMTP 3 greeting.
    #[error("the server's answer is not a ZMTP 3 greeting: {0}")]
    Malformed(#[source] GreetingError),
}

/// Reads the greeting of the ZMTP server at `endpoint` (`tcp://host:port`) over a TCP
/// connection of its own, within `timeout` for everything (connect, write, read), and
/// closes it.
///
/// It sends the 11 bytes of [`GREETING_START`], to which a libzmq server answers with its
/// whole 64-byte greeting, and nothing else: the connection is closed before any mechanism
/// is chosen, so no credentials are sent and the server's authenticator is never asked.
/// The server's socket monitor sees a handshake that failed without detail
/// (`HANDSHAKE_FAILED_NO_DETAIL`, errno `EPIPE`: [`ServerSocket::watch_handshakes`]
/// reports it as a [`Dropped`](super::HandshakeOutcome::Dropped)).
///
/// Only the endpoint's own host and port are contacted: its first IPv4 address as libzmq
/// resolves it (the first address of any family with `ipv6`, the socket's `ZMQ_IPV6`).
/// Name resolution is the system's, and blocks like libzmq's own `zmq_connect`.
///
/// [`ServerSocket::watch_handshakes`]: crate::ServerSocket::watch_handshakes
pub fn read_server_greeting(
    endpoint: &str,
    ipv6: bool,
    timeout: Duration,
) -> Result<Greeting, GreetingUnread> {
    let started = Instant::now();
    let address = tcp_address(endpoint, ipv6)?;
    let left = |started: Instant| timeout.saturating_sub(started.elapsed());
    if left(started).is_zero() {
        return Err(GreetingUnread::Connect(io::ErrorKind::TimedOut));
    }
    let mut stream = TcpStream::connect_timeout(&address, left(started))
        .map_err(|e| GreetingUnread::Connect(e.kind()))?;
    let mut bytes = Vec::with_capacity(GREETING_LEN);
    let end = exchange(&mut stream, &mut bytes, || left(started));
    drop(stream);
    match Greeting::parse(&bytes) {
        Ok(greeting) => Ok(greeting),
        Err(GreetingError::Short { got }) => Err(GreetingUnread::Incomplete {
            got,
            end: end.unwrap_or(ReadEnd::Closed),
        }),
        Err(malformed) => Err(GreetingUnread::Malformed(malformed)),
    }
}

/// Sends the greeting's start and reads until 64 bytes arrived (`None`) or the read ended.
fn exchange(
    stream: &mut TcpStream,
    bytes: &mut Vec<u8>,
    left: impl Fn() -> Duration,
) -> Option<ReadEnd> {
    let timed = |left: Duration| (!left.is_zero()).then_some(left);
    let _ = stream.set_nodelay(true);
    let Some(wait) = timed(left()) else {
        return Some(ReadEnd::TimedOut);
    };
    if let Err(e) = stream
        .set_write_timeout(Some(wait))
        .and_then(|()| stream.write_all(&GREETING_START))
    {
        return Some(read_end(&e));
    }
    let mut buffer = [0u8; GREETING_LEN];
    while bytes.len() < GREETING_LEN {
        let Some(wait) = timed(left()) else {
            return Some(ReadEnd::TimedOut);
        };
        if let Err(e) = stream.set_read_timeout(Some(wait)) {
            return Some(read_end(&e));
        }
        match stream.read(&mut buffer[..GREETING_LEN - bytes.len()]) {
            Ok(0) => return Some(ReadEnd::Closed),
            Ok(n) => bytes.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Some(read_end(&e)),
        }
    }
    None
}

fn read_end(error: &io::Error) -> ReadEnd {
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ReadEnd::TimedOut,
        kind => ReadEnd::Failed(kind),
    }
}

/// The address a libzmq socket would connect to for `endpoint`.
fn tcp_address(endpoint: &str, ipv6: bool) -> Result<SocketAddr, GreetingUnread> {
    let Some((transport, address)) = endpoint.split_once("://") else {
        return Err(GreetingUnread::NotTcp {
            transport: endpoint.to_owned(),
        });
    };
    if transport != "tcp" {
        return Err(GreetingUnread::NotTcp {
            transport: transport.to_owned(),
        });
    }
    if address.contains(';') {
        return Err(GreetingUnread::SourceAddress);
    }
    let unresolved = |reason: String| GreetingUnread::Unresolved {
        address: address.to_owned(),
        reason,
    };
    let mut candidates = address
        .to_socket_addrs()
        .map_err(|e| unresolved(e.to_string()))?;
    candidates
        .find(|a| ipv6 || a.is_ipv4())
        .ok_or_else(|| unresolved("no IPv4 address (the socket has ZMQ_IPV6 off)".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn only_plain_tcp_endpoints_are_probed() {
        let probe = |endpoint| read_server_greeting(endpoint, false, Duration::from_millis(200));
        assert_eq!(
            probe("ipc:///tmp/x.sock"),
            Err(GreetingUnread::NotTcp {
                transport: "ipc".into()
            })
        );
        assert!(matches!(
            probe("inproc://x"),
            Err(GreetingUnread::NotTcp { .. })
        ));
        assert!(matches!(
            probe("nonsense"),
            Err(GreetingUnread::NotTcp { .. })
        ));
        assert_eq!(
            probe("tcp://127.0.0.1:1;127.0.0.1:2"),
            Err(GreetingUnread::SourceAddress)
        );
        assert!(matches!(
            probe("tcp://127.0.0.1"),
            Err(GreetingUnread::Unresolved { .. })
        ));
        assert!(matches!(
            probe("tcp://[::1]:5555"),
            Err(GreetingUnread::Unresolved { .. })
        ));
    }

    #[test]
    fn a_silent_listener_a_closing_one_and_nothing_listening() {
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("tcp://{}", silent.local_addr().unwrap());
        let started = Instant::now();
        let result = read_server_greeting(&endpoint, false, Duration::from_millis(300));
        assert_eq!(
            result,
            Err(GreetingUnread::Incomplete {
                got: 0,
                end: ReadEnd::TimedOut
            })
        );
        assert!(started.elapsed() < Duration::from_secs(2));

        let closing = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("tcp://{}", closing.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut peer, _) = closing.accept().unwrap();
            let mut start = [0u8; 11];
            peer.read_exact(&mut start).unwrap();
            peer.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").unwrap();
            start
        });
        let result = read_server_greeting(&endpoint, false, Duration::from_secs(5));
        assert!(
            matches!(
                result,
                Err(GreetingUnread::Malformed(GreetingError::BadSignature {
                    at: 0,
                    ..
                }))
            ),
            "{result:?}"
        );
        assert_eq!(server.join().unwrap(), GREETING_START);

        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert_eq!(
            read_server_greeting(
                &format!("tcp://127.0.0.1:{port}"),
                false,
                Duration::from_secs(1)
            ),
            Err(GreetingUnread::Connect(io::ErrorKind::ConnectionRefused))
        );
    }
}
