//! [`SessionSocket`]: a server socket that delivers only messages of sessions the
//! authenticator still admits.

use std::collections::{HashMap, VecDeque};
use std::os::unix::io::RawFd;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::board::{Board, Descriptor, Inbox};
use crate::monitor;
use crate::zap::mark::SessionMark;

/// What a [`SessionSocket`] does with messages of in-process (`inproc://`) peers, which never
/// go through ZAP and carry no properties at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum InprocPeers {
    /// Delivered: code in the same process is trusted as the process is (the default).
    #[default]
    Deliver,
    /// Dropped, like a network peer without a mark.
    Drop,
}

/// Why a [`SessionSocket`] call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The ROUTER peer this message is addressed to belongs to a session that was ended.
    #[error("the peer's session was revoked: nothing is sent to it")]
    Revoked,
    /// A zmq call failed (`EAGAIN` for a non-blocking receive with nothing to deliver).
    #[error("zmq: {0}")]
    Zmq(#[from] zmq::Error),
    /// Waiting on the socket's descriptor failed (an async receive outside a tokio runtime
    /// panics instead, as tokio does).
    #[error("waiting on the socket: {0}")]
    Io(#[from] std::io::Error),
}

/// The last session seen: where its mark's text is (in its metadata, kept alive by `held`,
/// so no other session's mark can be at that address meanwhile), and whether it ended.
struct Last {
    /// The messages' metadata pointer ([`crate::ffi::metadata_word`]); 0 when unreliable.
    metadata: usize,
    at: usize,
    ended: bool,
    _held: crate::ffi::HeldMessage,
}

/// One session this socket has seen.
struct Local {
    token: Box<str>,
    serial: u64,
    ended: bool,
    descriptor: Option<Descriptor>,
}

/// What the monitor thread knows of one descriptor: the connection last accepted on it.
#[derive(Debug, Clone, Copy)]
struct Accepted {
    cookie: Option<u64>,
    at: SystemTime,
}

/// State the monitor thread writes and the socket reads when a session shows its first message.
#[derive(Default)]
struct Connections {
    accepted: HashMap<RawFd, Accepted>,
    /// Descriptors gone since the socket last looked (their sessions are forgotten then).
    gone: Vec<Descriptor>,
}

/// A server socket that enforces revocation on the sessions it already has.
///
/// Made by [`ServerSocket::build_sessions`](crate::ServerSocket::build_sessions). Every message
/// is delivered only if the session it came over carries a valid mark of this process's
/// authenticator and that session was not ended; a message without one — a GSSAPI peer that
/// libzmq let in although ZAP refused it, a peer admitted by another ZAP handler — is never
/// delivered, and its connection is ended. When the policy narrows, the authenticator ends the
/// sessions it no longer admits before the narrowing answers `Ok`: no receive that starts
/// afterwards delivers their messages, and their connections are shut down (the client sees a
/// disconnect, reconnects, and is decided again).
///
/// Socket types: ROUTER, DEALER, PULL, PAIR, XPUB (subscriptions carry properties) and REP
/// (a dropped request ends its connection and the socket answers it with an empty message, so
/// the REP state machine stays usable; the connection is shut down first, so the answer does
/// not reach the peer — unless the monitor thread has not noted that connection within
/// 100 ms, when an empty message is all the peer gets). PUB and SUB servers receive nothing
/// from their peers to check and are not covered. In-process peers are decided by [`InprocPeers`] — and so are the unsubscriptions
/// an XPUB queues itself when a subscriber's connection ends, which carry no properties
/// (dropped with [`InprocPeers::Drop`]).
///
/// [`raw`](Self::raw) gives the socket itself for what this type does not wrap (options,
/// polling): receiving from it directly bypasses the check.
pub struct SessionSocket {
    socket: crate::ffi::LazyWatched,
    board: Arc<Board>,
    inbox: Inbox,
    seen_generation: u64,
    sessions: HashMap<u128, Local, TailHash>,
    /// The session of the last message delivered or dropped, checked first: most messages
    /// come in runs from one session.
    last: Option<Last>,
    by_serial: HashMap<u64, u128>,
    /// ROUTER: the session of each routing id seen, for sends.
    routes: HashMap<Vec<u8>, u128>,
    /// Sessions bound to no descriptor, oldest first, with when they were bound or lost it:
    /// forgotten after [`UNBOUND_KEPT`] (see [`forget_unbound`](Self::forget_unbound)).
    unbound: VecDeque<(Instant, u64)>,
    /// The connections ended for a message without a mark, newest last (at most
    /// [`UNMARKED_KEPT`]): each one's metadata pointer, held alive by a copy of that message,
    /// so that more of its messages are told from those of a later connection on its number.
    ended_unmarked: VecDeque<(usize, crate::ffi::HeldMessage)>,
    /// Messages received and not delivered (see [`messages_dropped`](Self::messages_dropped)).
    messages_dropped: u64,
    is_router: bool,
    is_rep: bool,
    inproc: InprocPeers,
    connections: Arc<Mutex<Connections>>,
    handshakes: Option<monitor::Events>,
    _monitor: JoinHandle<()>,
}

impl std::fmt::Debug for SessionSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSocket")
            .field("sessions", &self.sessions.len())
            .field("inproc", &self.inproc)
            .finish()
    }
}

/// Keys of the session map are the last 16 bytes of a mark (hex digits of its MAC), random
/// enough to be their own hash; the full mark is compared on every hit.
#[derive(Default, Clone, Copy)]
struct TailHash;

impl std::hash::BuildHasher for TailHash {
    type Hasher = TailHasher;
    fn build_hasher(&self) -> TailHasher {
        TailHasher(0)
    }
}

struct TailHasher(u64);

impl std::hash::Hasher for TailHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }
    fn write_u128(&mut self, value: u128) {
        self.0 = (value as u64) ^ ((value >> 64) as u64).rotate_left(29);
    }
}

fn tail_key(bytes: &[u8]) -> u128 {
    let mut tail = [0u8; 16];
    let n = bytes.len().min(16);
    tail[16 - n..].copy_from_slice(&bytes[bytes.len() - n..]);
    u128::from_le_bytes(tail)
}

/// What to do with one received message.
enum Verdict {
    Deliver,
    Drop,
}

/// How much later than the accept itself the monitor thread may note it: a connection noted as
/// accepted more than this after a session's admission is a later one on a reused number.
/// (A session judged so by mistake — its connection noted that late — is bound to no
/// descriptor: once it ended its messages are still never delivered, but its connection is
/// not shut down.)
const MONITOR_LAG: std::time::Duration = std::time::Duration::from_millis(250);

/// How long a first message waits, at most, for the monitor to note its connection.
const MONITOR_CATCH_UP: std::time::Duration = std::time::Duration::from_millis(100);

/// How long a session bound to no descriptor is kept. No disconnect will ever name it (its
/// first message was read after its connection went, or on a number reused since), so it is
/// forgotten after this, locally and then on the board; a message of it read later is judged
/// at a first sight again (by the narrowings since its admission, as every first sight is).
/// Ended ones are kept: their messages are dropped and, on a ROUTER, sends to them refused.
/// A ROUTER socket keeps them all: the application may still send to such a peer, and once
/// the peer is revoked that send must be refused, which only a session kept can tell.
const UNBOUND_KEPT: Duration = Duration::from_secs(1);

/// How many connections ended for an unmarked message are remembered (see
/// [`SessionSocket::unmarked`]); beyond it, the oldest is forgotten.
const UNMARKED_KEPT: usize = 64;

const ACCEPTED: u16 = zmq::SocketEvent::ACCEPTED as u16;
const DISCONNECTED: u16 = zmq::SocketEvent::DISCONNECTED as u16;
const CLOSED: u16 = zmq::SocketEvent::CLOSED as u16;

impl SessionSocket {
    /// Wraps `socket` (not bound yet, options set) of `context`, installing its monitor.
    pub(crate) fn new(
        context: &zmq::Context,
        socket: zmq::Socket,
        inproc: InprocPeers,
    ) -> zmq::Result<Self> {
        let socket_type = socket.get_socket_type()?;
        let board = Board::of(context);
        let inbox = board.register();
        let connections = Arc::new(Mutex::new(Connections::default()));
        let (queued, handshakes) = monitor::queue_of(monitor::QUEUE);
        let endpoint = monitor::unique_endpoint("actix-zap-session-socket");
        let mask = zmq::SocketEvent::ACCEPTED as i32
            | zmq::SocketEvent::DISCONNECTED as i32
            | zmq::SocketEvent::CLOSED as i32
            | zmq::SocketEvent::HANDSHAKE_SUCCEEDED as i32
            | zmq::SocketEvent::HANDSHAKE_FAILED_AUTH as i32
            | zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL as i32
            | zmq::SocketEvent::HANDSHAKE_FAILED_NO_DETAIL as i32;
        let (shared, board_for_monitor, socket_id) =
            (Arc::clone(&connections), Arc::clone(&board), inbox.id);
        let monitor = monitor::spawn_handling(context, &socket, &endpoint, mask, move |e, v| {
            let fd = v as RawFd;
            match e {
                ACCEPTED => {
                    let accepted = Accepted {
                        cookie: crate::ffi::socket_cookie(fd),
                        at: SystemTime::now(),
                    };
                    lock(&shared).accepted.insert(fd, accepted);
                }
                DISCONNECTED | CLOSED => {
                    let gone = lock(&shared).accepted.remove(&fd);
                    if let Some(cookie) = gone.and_then(|a| a.cookie) {
                        let descriptor = Descriptor { fd, cookie };
                        board_for_monitor.unbind(socket_id, descriptor);
                        lock(&shared).gone.push(descriptor);
                    }
                }
                _ => queued.push(e, v),
            }
        });
        let monitor = match monitor {
            Ok(thread) => thread,
            Err(error) => {
                board.deregister(inbox.id);
                return Err(error);
            }
        };
        Ok(SessionSocket {
            socket: crate::ffi::LazyWatched::new(socket),
            board,
            inbox,
            seen_generation: 0,
            sessions: HashMap::with_hasher(TailHash),
            last: None,
            by_serial: HashMap::new(),
            routes: HashMap::new(),
            unbound: VecDeque::new(),
            ended_unmarked: VecDeque::new(),
            messages_dropped: 0,
            is_router: socket_type == zmq::ROUTER,
            is_rep: socket_type == zmq::REP,
            inproc,
            connections,
            handshakes: Some(handshakes),
            _monitor: monitor,
        })
    }

    /// The wrapped socket, for options, binding and polling. **Receiving from it directly
    /// bypasses the session check**; sending to it bypasses the ROUTER check.
    pub fn raw(&self) -> &zmq::Socket {
        self.socket.socket()
    }

    /// Binds the socket (see `zmq::Socket::bind`).
    pub fn bind(&self, endpoint: &str) -> zmq::Result<()> {
        self.socket.socket().bind(endpoint)
    }

    /// The handshake events of this socket's monitor, once (for `watch_handshakes`).
    pub(crate) fn take_handshake_events(&mut self) -> Option<monitor::Events> {
        self.handshakes.take()
    }

    /// The next message of an admitted session (one frame), waiting as `flags` says;
    /// messages of ended or unmarked sessions are dropped on the way.
    pub fn recv_msg(&mut self, flags: i32) -> Result<zmq::Message, SessionError> {
        loop {
            let mut message = self.socket.socket().recv_msg(flags)?;
            match self.check(&mut message) {
                Verdict::Deliver => return Ok(message),
                Verdict::Drop => self.dropped(message.get_more())?,
            }
        }
    }

    /// [`recv_msg`](Self::recv_msg) into `message` (reused, as `zmq::Socket::recv` does).
    pub fn recv(&mut self, message: &mut zmq::Message, flags: i32) -> Result<(), SessionError> {
        loop {
            self.socket.socket().recv(message, flags)?;
            match self.check(message) {
                Verdict::Deliver => return Ok(()),
                Verdict::Drop => self.dropped(message.get_more())?,
            }
        }
    }

    /// The next multipart message of an admitted session; messages of ended or unmarked
    /// sessions are dropped whole.
    pub fn recv_multipart(&mut self, flags: i32) -> Result<Vec<Vec<u8>>, SessionError> {
        loop {
            let mut first = self.socket.socket().recv_msg(flags)?;
            let verdict = self.check(&mut first);
            let more = first.get_more();
            match verdict {
                Verdict::Drop => self.dropped(more)?,
                Verdict::Deliver => {
                    let mut parts = vec![first.to_vec()];
                    if more {
                        parts.extend(self.socket.socket().recv_multipart(0)?);
                    }
                    if self.is_router {
                        self.remember_route(&first, &parts[0]);
                    }
                    return Ok(parts);
                }
            }
        }
    }

    /// [`recv_multipart`](Self::recv_multipart) for actix (and other tokio) code: waits on the
    /// socket's `ZMQ_FD` instead of blocking the thread. Must be awaited inside a tokio runtime
    /// (an actix System).
    pub async fn recv_multipart_async(&mut self) -> Result<Vec<Vec<u8>>, SessionError> {
        self.when_ready(|socket| socket.recv_multipart(zmq::DONTWAIT))
            .await
    }

    /// [`recv_msg`](Self::recv_msg) for actix (and other tokio) code; see
    /// [`recv_multipart_async`](Self::recv_multipart_async).
    pub async fn recv_msg_async(&mut self) -> Result<zmq::Message, SessionError> {
        self.when_ready(|socket| socket.recv_msg(zmq::DONTWAIT))
            .await
    }

    /// Runs the non-blocking `receive` until it has something, waiting on `ZMQ_FD` between
    /// tries. The descriptor signals edges: after one, `ZMQ_EVENTS` is checked again.
    async fn when_ready<T>(
        &mut self,
        mut receive: impl FnMut(&mut Self) -> Result<T, SessionError>,
    ) -> Result<T, SessionError> {
        loop {
            match receive(self) {
                Err(SessionError::Zmq(zmq::Error::EAGAIN)) => {}
                other => return other,
            }
            if !self.raw().get_events()?.contains(zmq::POLLIN) {
                self.socket.edge().await?;
            }
        }
    }

    /// Sends a multipart message. On a ROUTER socket, a message addressed (first frame) to a
    /// peer whose session was ended is refused with [`SessionError::Revoked`].
    pub fn send_multipart<I, T>(&mut self, parts: I, flags: i32) -> Result<(), SessionError>
    where
        I: IntoIterator<Item = T>,
        T: Into<zmq::Message>,
    {
        let mut parts = parts.into_iter().map(Into::into).peekable();
        if self.is_router {
            self.catch_up();
            if let Some(first) = parts.peek() {
                let ended = self
                    .routes
                    .get(&first[..])
                    .and_then(|key| self.sessions.get(key))
                    .is_some_and(|local| local.ended);
                if ended {
                    return Err(SessionError::Revoked);
                }
            }
        }
        self.socket.socket().send_multipart(parts, flags)?;
        Ok(())
    }

    /// Sends one message (see [`send_multipart`](Self::send_multipart) for ROUTER sockets).
    pub fn send<T: Into<zmq::Message>>(&mut self, data: T, flags: i32) -> Result<(), SessionError> {
        self.send_multipart([data.into()], flags)
    }

    /// How many messages this socket received and did not deliver: messages of ended
    /// sessions, and messages without a valid mark of this process's authenticator (a
    /// multipart message counts once).
    pub fn messages_dropped(&self) -> u64 {
        self.messages_dropped
    }

    /// Drops the rest of a refused message; a REP socket answers it (to nobody: its connection
    /// is shut down) so that it can receive again.
    fn dropped(&mut self, more: bool) -> Result<(), SessionError> {
        self.messages_dropped += 1;
        if more {
            self.socket.socket().recv_multipart(0)?;
        }
        if self.is_rep {
            self.socket.socket().send(zmq::Message::new(), 0)?;
        }
        Ok(())
    }

    fn remember_route(&mut self, message: &zmq::Message, routing_id: &[u8]) {
        if let Some(token) = crate::ffi::message_property(message, MARK_NAME) {
            let key = tail_key(token);
            if !self.routes.contains_key(routing_id) {
                self.routes.insert(routing_id.to_vec(), key);
            }
        }
    }

    /// Applies the sessions the authenticator ended since this socket last looked.
    #[inline]
    fn catch_up(&mut self) {
        let generation = self.inbox.generation();
        if generation == self.seen_generation {
            return;
        }
        self.seen_generation = generation;
        self.last = None;
        for ended in self.inbox.drain() {
            if let Some(local) = self
                .by_serial
                .get(&ended.serial)
                .and_then(|key| self.sessions.get_mut(key))
            {
                local.ended = true;
            }
        }
    }

    /// Whether `message` may be delivered. A message of the last session seen shares its
    /// metadata, which a held copy keeps alive (so no other session's can be at that address):
    /// one word compared (where the linked libzmq's layout was checked,
    /// [`metadata_word_is_reliable`](crate::ffi::metadata_word_is_reliable)). Else one property
    /// read, the address of the last session's mark compared, else a lookup; a mark not seen
    /// yet is checked and bound ([`first_sight`]).
    ///
    /// [`first_sight`]: Self::first_sight
    #[inline]
    fn check(&mut self, message: &mut zmq::Message) -> Verdict {
        self.catch_up();
        // The same metadata as the last session's (held alive): the same session, no lookup.
        if let Some(last) = &self.last {
            if last.metadata != 0 && crate::ffi::metadata_word(message) == last.metadata {
                return if last.ended {
                    Verdict::Drop
                } else {
                    Verdict::Deliver
                };
            }
        }
        let Some(token) = crate::ffi::message_property(message, MARK_NAME) else {
            return self.unmarked(message);
        };
        let at = token.as_ptr() as usize;
        if let Some(last) = self.last.as_ref().filter(|last| last.at == at) {
            return if last.ended {
                Verdict::Drop
            } else {
                Verdict::Deliver
            };
        }
        let ended = match self.sessions.get(&tail_key(token)) {
            Some(local) if *local.token.as_bytes() == *token => local.ended,
            _ => {
                let token: Box<[u8]> = token.into();
                return self.first_sight(&token, message);
            }
        };
        let metadata = if crate::ffi::metadata_word_is_reliable() {
            crate::ffi::metadata_word(message)
        } else {
            0
        };
        self.last = crate::ffi::HeldMessage::of(message).map(|held| Last {
            metadata,
            at,
            ended,
            _held: held,
        });
        if ended {
            Verdict::Drop
        } else {
            Verdict::Deliver
        }
    }

    /// A message without a mark: an in-process peer's (no descriptor), or a connection that no
    /// authenticator of this process admitted — that one is ended. More messages of a
    /// connection already ended are only dropped: they may be read after its number went to a
    /// later connection of this socket, which must not be ended for them. They are told by
    /// their metadata (one object per connection in libzmq, its address held by a copy of the
    /// message that ended it), where the linked libzmq's layout lets the pointer be read.
    fn unmarked(&mut self, message: &mut zmq::Message) -> Verdict {
        let fd = match descriptor_of(message) {
            None if self.inproc == InprocPeers::Deliver => return Verdict::Deliver,
            None => return Verdict::Drop,
            Some(fd) => fd,
        };
        let metadata = if crate::ffi::metadata_word_is_reliable() {
            crate::ffi::metadata_word(message)
        } else {
            0
        };
        if metadata != 0 && self.ended_unmarked.iter().any(|(m, _)| *m == metadata) {
            return Verdict::Drop;
        }
        self.end_descriptor(Some(fd));
        log::warn!(
            target: "actix_zap::sessions",
            "dropped a message without a session mark of this process's authenticator \
             and ended its connection (descriptor {fd})"
        );
        if let Some(held) = (metadata != 0).then(|| crate::ffi::HeldMessage::of(message)) {
            if self.ended_unmarked.len() == UNMARKED_KEPT {
                self.ended_unmarked.pop_front();
            }
            self.ended_unmarked
                .extend(held.map(|held| (metadata, held)));
        }
        Verdict::Drop
    }

    /// A session's first message on this socket: its mark is checked and bound.
    #[cold]
    fn first_sight(&mut self, token: &[u8], message: &zmq::Message) -> Verdict {
        let fd = descriptor_of(message);
        let Ok(token) = std::str::from_utf8(token) else {
            log::warn!(
                target: "actix_zap::sessions",
                "dropped a message whose session mark is not text"
            );
            self.end_descriptor(fd);
            return Verdict::Drop;
        };
        let token: Box<str> = token.into();
        let mark = match SessionMark::decode(&token) {
            Ok(mark) => mark,
            Err(error) => {
                log::warn!(
                    target: "actix_zap::sessions",
                    "dropped a message with an invalid session mark ({error})"
                );
                self.end_descriptor(fd);
                return Verdict::Drop;
            }
        };
        self.forget_gone();
        let now = Instant::now();
        self.forget_unbound(now);
        let descriptor = fd.and_then(|fd| self.descriptor_for(fd, &mark));
        let ended = self.board.bind(self.inbox.id, &mark, descriptor).is_err();
        if let Some(descriptor) = descriptor {
            // A later admission on this connection: older sessions bound to it were on an
            // earlier connection that had the same number.
            for local in self.sessions.values_mut() {
                if local.descriptor == Some(descriptor) && local.serial < mark.serial {
                    local.descriptor = None;
                    if !self.is_router {
                        self.unbound.push_back((now, local.serial));
                    }
                }
            }
        } else if !ended && !self.is_router {
            self.unbound.push_back((now, mark.serial));
        }
        let key = tail_key(token.as_bytes());
        if let Some(old) = self.sessions.insert(
            key,
            Local {
                token,
                serial: mark.serial,
                ended,
                descriptor,
            },
        ) {
            self.by_serial.remove(&old.serial);
        }
        self.by_serial.insert(mark.serial, key);
        self.last = None;
        if ended {
            Verdict::Drop
        } else {
            Verdict::Deliver
        }
    }

    /// Ends the connection behind `fd` as it is now (a message that no session of ours
    /// could have sent came over it) — if the monitor noted it accepted by this socket: the
    /// number may have been closed and reused since by any socket of the process, another
    /// context's or none of libzmq's. The monitor is waited for as at a first sight (at most
    /// [`MONITOR_CATCH_UP`]), so that a REP socket's empty answer to the dropped request finds
    /// the connection already shut down.
    ///
    /// The first unmarked message of a connection, read only after that connection went and
    /// its number went to a later connection of this socket, ends that later connection: a
    /// message without a mark tells no admission time to tell the two apart. Its client
    /// reconnects and is decided again; nothing of the unmarked one is delivered either way.
    fn end_descriptor(&self, fd: Option<RawFd>) {
        let Some((fd, cookie)) = fd.and_then(|fd| Some((fd, crate::ffi::socket_cookie(fd)?)))
        else {
            return;
        };
        if self.accepted(fd, cookie).is_some() {
            crate::ffi::shut_down_if(fd, cookie);
        }
    }

    /// The connection `fd` names for the session of `mark`, if it is that session's: not when
    /// the descriptor already carries a later admission, nor when the connection on it now was
    /// accepted after `mark`'s admission (the number was reused; `mark`'s connection is gone),
    /// nor when the monitor never noted it accepted by this socket (the number was reused by
    /// another socket of the process, which a narrowing must never shut down).
    fn descriptor_for(&self, fd: RawFd, mark: &SessionMark) -> Option<Descriptor> {
        let cookie = crate::ffi::socket_cookie(fd)?;
        let descriptor = Descriptor { fd, cookie };
        let later_on_it = self
            .sessions
            .values()
            .any(|local| local.descriptor == Some(descriptor) && local.serial > mark.serial);
        if later_on_it {
            return None;
        }
        let accepted = self.accepted(fd, cookie)?;
        (accepted.at <= mark.admitted_at + MONITOR_LAG).then_some(descriptor)
    }

    /// What the monitor noted when it saw the connection `cookie` accepted on `fd`. The
    /// monitor reads its events on a thread of its own, a little after libzmq sends them: a
    /// first message may come before the monitor noted its connection. Waited for, a little
    /// (a connection that shows a message was accepted, and libzmq has sent that event).
    fn accepted(&self, fd: RawFd, cookie: u64) -> Option<Accepted> {
        let deadline = std::time::Instant::now() + MONITOR_CATCH_UP;
        loop {
            let accepted = lock(&self.connections).accepted.get(&fd).copied();
            let noted = accepted.filter(|a| a.cookie == Some(cookie));
            if noted.is_some() || std::time::Instant::now() >= deadline {
                return noted;
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }

    /// Forgets the sessions bound to no descriptor for [`UNBOUND_KEPT`] and not ended: first
    /// here, so that no message of theirs is delivered on what this socket knew, then on the
    /// board (a narrowing in between publishes a serial this socket no longer holds; the
    /// session's next message is judged at its first sight, by that narrowing too). Run at
    /// each first sight, the only way such sessions come: they never outnumber those bound
    /// since the previous one by more than the last [`UNBOUND_KEPT`]'s. Never on a ROUTER
    /// socket (see [`UNBOUND_KEPT`]).
    fn forget_unbound(&mut self, now: Instant) {
        let mut forgotten = Vec::new();
        while let Some(&(since, serial)) = self.unbound.front() {
            if now.duration_since(since) < UNBOUND_KEPT {
                break;
            }
            self.unbound.pop_front();
            let Some(&key) = self.by_serial.get(&serial) else {
                continue;
            };
            let unbound = (self.sessions.get(&key))
                .is_some_and(|local| local.serial == serial && local.descriptor.is_none());
            if unbound && !self.sessions[&key].ended {
                self.sessions.remove(&key);
                self.by_serial.remove(&serial);
                forgotten.push(serial);
            }
        }
        if forgotten.is_empty() {
            return;
        }
        self.last = None;
        let sessions = &self.sessions;
        self.routes.retain(|_, key| sessions.contains_key(key));
        self.board.forget(self.inbox.id, &forgotten);
    }

    /// Forgets the sessions whose connection went (the board judged them until now: their
    /// messages still queued are judged again at their first sight).
    fn forget_gone(&mut self) {
        let gone = std::mem::take(&mut lock(&self.connections).gone);
        if gone.is_empty() {
            return;
        }
        let by_serial = &mut self.by_serial;
        let mut forgotten = Vec::new();
        self.sessions.retain(|_, local| {
            let keep = !local.descriptor.is_some_and(|d| gone.contains(&d));
            if !keep {
                by_serial.remove(&local.serial);
                forgotten.push(local.serial);
            }
            keep
        });
        self.board.forget(self.inbox.id, &forgotten);
        let sessions = &self.sessions;
        self.routes.retain(|_, key| sessions.contains_key(key));
    }
}

impl Drop for SessionSocket {
    fn drop(&mut self) {
        self.board.deregister(self.inbox.id);
    }
}

fn lock(connections: &Mutex<Connections>) -> std::sync::MutexGuard<'_, Connections> {
    connections.lock().unwrap_or_else(|p| p.into_inner())
}

/// The descriptor a message came in on (libzmq's `__fd` property); `None` for inproc peers.
fn descriptor_of(message: &zmq::Message) -> Option<RawFd> {
    let text = crate::ffi::message_property(message, c"__fd")?;
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// [`MARK_PROPERTY`](crate::zap::mark::MARK_PROPERTY) as a C string, for `zmq_msg_gets`.
const MARK_NAME: &std::ffi::CStr = c"X-Zap-Session";

#[cfg(test)]
mod tests {
    #[test]
    fn the_c_name_is_the_mark_property() {
        let name = super::MARK_NAME.to_str().unwrap();
        assert_eq!(name, crate::zap::mark::MARK_PROPERTY);
    }
}
