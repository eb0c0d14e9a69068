//! `ZapSocket`: owns the ROUTER bound to `inproc://zeromq.zap.01`, carries each request to the
//! policy actor and writes each reply back with its routing envelope, in whatever order the
//! decisions complete.

use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use actix::prelude::*;
use futures::channel::oneshot;
use log::{debug, error, trace, warn};

use super::policy_actor::PolicyActor;
use crate::ffi::WatchedSocket;
use crate::messages::error::StartError;
use crate::messages::{Authenticate, GetStats, Stop};
use crate::messages::{EventMechanism, Stats};
use crate::policy::Refusal;
use crate::zap::{Reply, ZAP_ENDPOINT};

/// The log target: a public path, what a user looks up.
const LOG_TARGET: &str = "actix_zap::actors::ZapSocket";

/// The newest request of one session (routing id).
#[derive(Debug, Clone, Copy)]
struct Newest {
    sequence: u64,
    /// Answered already (a prompt `300` while stopping): only older answers of the session
    /// remain to discard.
    answered: bool,
}

/// The actor that serves the ZAP endpoint.
///
///
/// libzmq signals a socket through `ZMQ_FD`, which behaves like an edge-triggered descriptor:
/// it fires when the socket's state changed, not while a message is waiting, and any zmq call
/// on the socket (including a send) may consume the signal. So the actor drains while
/// `ZMQ_EVENTS` says `POLLIN`, re-checks after every send, and only then waits for the next
/// edge. Requests are forwarded as they arrive and answered as their decisions complete, in
/// any order: libzmq always uses request id `1`, the envelope is what routes a reply.
///
/// Backpressure: while `max_in_flight` requests are being decided, the actor reads no more.
/// The next requests wait in libzmq, which gives each handshake's session a ZAP pipe of its
/// own without a high-water mark, holding that handshake's one request (a few hundred bytes
/// beside the connection's own buffers; a backlog that outlasts the handshake interval is
/// described at [`Settings::max_in_flight`](crate::Settings::max_in_flight)). Each answer
/// frees a slot and reads on (libzmq fair-queues the sessions). So a burst larger than
/// the bound is decided as fast as the slots free, instead of being told `300` (after which
/// libzmq makes the client wait for the server's `ZMQ_HANDSHAKE_IVL`, 30 s by default, before
/// it asks again). Each request read is answered by its deadline
/// ([`Settings::provider_deadline`](crate::Settings::provider_deadline), counted from when it
/// is read), so a slot frees at least that often. Only while the actor is stopping does it
/// still read everything and answer beyond the bound with a prompt `300`: `stop` then waits
/// for the requests in flight, never for libzmq's queue.
pub struct ZapSocket {
    state: State,
    policy: Addr<PolicyActor>,
    /// Requests sent to the policy actor and not answered yet.
    in_flight: usize,
    /// The bound on `in_flight`: reaching it stops reading (see above).
    max_in_flight: usize,
    /// Whether the last look found the bound reached with requests waiting, so that one
    /// stretch of backpressure is counted once (`Stats::held_back`).
    holding: bool,
    /// Replies this actor made itself (overload, policy gone) and messages it dropped,
    /// counted into `Stats`.
    own_replies: Stats,
    /// The newest request of each routing id that is still being decided. A server socket
    /// that connects out keeps its session — and its ZAP pipe — across reconnects, and
    /// libzmq takes the next message in that pipe as the answer to the handshake in
    /// progress; an answer to an older request of the same routing id would decide the
    /// newer handshake. Such answers are discarded.
    newest: HashMap<Vec<Vec<u8>>, Newest>,
    next_request: u64,
}

/// Where the actor is in its life. Only `Serving` and `Draining` hold the socket (with its
/// reactor registration); leaving `Draining` closes it.
enum State {
    /// Taking requests and answering them.
    Serving(WatchedSocket),
    /// `Stop` arrived: the endpoint is unbound; requests already received are still
    /// answered. When the last one is, the socket closes, the policy actor stops, and then
    /// every `waiters` entry (one per `Stop` received) is told.
    Draining {
        socket: WatchedSocket,
        waiters: Vec<oneshot::Sender<()>>,
    },
    /// The socket is closed and the actor is stopping.
    Closed,
}

impl State {
    fn socket(&self) -> Option<&zmq::Socket> {
        self.watched().map(WatchedSocket::socket)
    }

    fn watched(&self) -> Option<&WatchedSocket> {
        match self {
            State::Serving(socket) | State::Draining { socket, .. } => Some(socket),
            State::Closed => None,
        }
    }
}

/// Binds the ZAP endpoint on `context`. Synchronous: when this returns, libzmq routes every
/// handshake of this context to the socket.
pub(crate) fn bind(context: &zmq::Context) -> Result<zmq::Socket, StartError> {
    let socket = context.socket(zmq::ROUTER)?;
    // Replies to a session that went away must never hold up context termination.
    socket.set_linger(0)?;
    match socket.bind(ZAP_ENDPOINT) {
        Ok(()) => Ok(socket),
        Err(zmq::Error::EADDRINUSE) => Err(StartError::EndpointInUse),
        Err(other) => Err(other.into()),
    }
}

impl ZapSocket {
    /// Counts a reply the socket gives itself (the policy actor counts its own), in `Stats`
    /// and, with feature `metrics`, as a decision of no domain.
    fn own_reply(&mut self, mechanism: EventMechanism, status: crate::zap::StatusCode) {
        self.own_replies.count_reply(mechanism, status);
        #[cfg(feature = "metrics")]
        crate::metrics::decision("", mechanism, status);
    }

    /// Wraps a bound socket. Must run inside the actix System that will run the actor.
    pub(crate) fn new(
        socket: zmq::Socket,
        policy: Addr<PolicyActor>,
        max_in_flight: usize,
    ) -> Result<Self, StartError> {
        Ok(ZapSocket {
            state: State::Serving(WatchedSocket::new(socket)?),
            policy,
            in_flight: 0,
            max_in_flight,
            holding: false,
            own_replies: Stats::default(),
            newest: HashMap::new(),
            next_request: 0,
        })
    }

    /// Receives and dispatches waiting requests, as many as the in-flight bound allows
    /// (while serving; all of them while stopping).
    fn drain(&mut self, ctx: &mut Context<Self>) {
        loop {
            let Some(socket) = self.state.socket() else {
                return;
            };
            match socket.get_events() {
                Ok(events) if events.contains(zmq::POLLIN) => {}
                Ok(_) => return,
                Err(e) => return error!(target: LOG_TARGET, "ZAP socket events: {e}"),
            }
            if self.in_flight >= self.max_in_flight && matches!(self.state, State::Serving(_)) {
                // Full: the request stays in libzmq's pipe until an answer frees a slot
                // (each answer drains again).
                if !self.holding {
                    self.holding = true;
                    self.own_replies.held_back += 1;
                    debug!(
                        target: LOG_TARGET,
                        "{} ZAP requests in flight: further requests wait in libzmq",
                        self.in_flight
                    );
                }
                return;
            }
            self.holding = false;
            match socket.recv_multipart(zmq::DONTWAIT) {
                Ok(frames) => self.dispatch(frames, ctx),
                Err(zmq::Error::EAGAIN) => return,
                Err(e) => return error!(target: LOG_TARGET, "ZAP socket receive: {e}"),
            }
        }
    }

    /// Splits off the routing envelope and sends the request to the policy.
    ///
    /// The one place where a message that cannot be answered is told apart: without a
    /// routing envelope or a request id, no reply could reach or match a handshake, so it is
    /// dropped (counted in `Stats::dropped`). Everything passed on has a request id.
    fn dispatch(&mut self, mut frames: Vec<Vec<u8>>, ctx: &mut Context<Self>) {
        let Some(delimiter) = frames.iter().position(|f| f.is_empty()) else {
            self.own_replies.dropped += 1;
            return warn!(target: LOG_TARGET, "dropped a ZAP message without an envelope delimiter");
        };
        let request = frames.split_off(delimiter + 1);
        let envelope = frames;
        let Some(request_id) = request.get(1).cloned() else {
            self.own_replies.dropped += 1;
            return warn!(
                target: LOG_TARGET,
                "dropped a ZAP message of {} frame(s): no request id",
                request.len()
            );
        };
        // For the replies this actor makes itself: a look at the mechanism frame, not a parse
        // (the policy actor parses the request, once).
        let mechanism = EventMechanism::of_frames(&request);
        self.next_request += 1;
        let sequence = self.next_request;
        // Only while stopping: serving, `drain` reads no request beyond the bound.
        if self.in_flight >= self.max_in_flight {
            let reply = Refusal::TooManyRequests.reply(&request_id);
            self.own_reply(mechanism, reply.status);
            // Answered at once, yet it still supersedes an older request of its session.
            if let Some(newest) = self.newest.get_mut(&envelope) {
                *newest = Newest {
                    sequence,
                    answered: true,
                };
            }
            return self.write(&envelope, &reply);
        }
        self.in_flight += 1;
        #[cfg(feature = "metrics")]
        crate::metrics::in_flight(self.in_flight);
        let newest = Newest {
            sequence,
            answered: false,
        };
        if self.newest.insert(envelope.clone(), newest).is_some() {
            debug!(
                target: LOG_TARGET,
                "a newer ZAP request from the same session supersedes one in flight"
            );
        }
        let decision = self.policy.send(Authenticate(request));
        ctx.spawn(decision.into_actor(self).map(move |answer, act, ctx| {
            act.in_flight -= 1;
            #[cfg(feature = "metrics")]
            crate::metrics::in_flight(act.in_flight);
            let newest = act.newest.get(&envelope).copied();
            if newest.map(|n| n.sequence) != Some(sequence) {
                warn!(
                    target: LOG_TARGET,
                    "discarded the answer to a superseded ZAP request (its session asked \
                     again since); the newer request is answered on its own"
                );
                act.own_replies.superseded += 1;
                if newest.is_some_and(|n| n.answered) {
                    act.newest.remove(&envelope);
                }
                // A slot is free: requests held back by the bound may be read now.
                act.drain(ctx);
                return act.finish_stop_when_idle(ctx);
            }
            act.newest.remove(&envelope);
            let reply = match answer {
                Ok(reply) => reply,
                // Fail closed: no policy, no admission.
                Err(_) => {
                    let reply = Refusal::PolicyUnavailable.reply(&request_id);
                    act.own_reply(mechanism, reply.status);
                    reply
                }
            };
            act.write(&envelope, &reply);
            // A slot is free, and the send may have consumed the signal for a request that
            // arrived meanwhile.
            act.drain(ctx);
            act.finish_stop_when_idle(ctx);
        }));
    }

    fn write(&self, envelope: &[Vec<u8>], reply: &Reply) {
        let Some(socket) = self.state.socket() else {
            return;
        };
        let frames = envelope.iter().map(Vec::as_slice).chain(reply.frames());
        match socket.send_multipart(frames, zmq::DONTWAIT) {
            Ok(()) => trace!(target: LOG_TARGET, "ZAP reply {} sent", reply.status),
            Err(e) => warn!(target: LOG_TARGET, "ZAP reply {} not sent: {e}", reply.status),
        }
    }

    /// Leaves `Draining` once nothing is in flight: closes the socket, stops the policy
    /// actor, then tells the waiters.
    fn finish_stop_when_idle(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight > 0 || !matches!(self.state, State::Draining { .. }) {
            return;
        }
        let State::Draining { socket, waiters } = std::mem::replace(&mut self.state, State::Closed)
        else {
            unreachable!("checked above");
        };
        // The registration goes with the socket (see `WatchedSocket`).
        drop(socket);
        let policy_stopped = self.policy.send(Stop);
        // Not spawned on this actor's context, which ends now.
        actix::spawn(async move {
            let _ = policy_stopped.await;
            for waiter in waiters {
                let _ = waiter.send(());
            }
        });
        ctx.stop();
    }
}

/// Waits for `ZMQ_FD` edges and drains after each, for as long as the socket is open.
struct Readiness;

impl ActorFuture<ZapSocket> for Readiness {
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        act: &mut ZapSocket,
        ctx: &mut Context<ZapSocket>,
        task: &mut TaskContext<'_>,
    ) -> Poll<()> {
        loop {
            let Some(watched) = act.state.watched() else {
                return Poll::Ready(());
            };
            match watched.poll_read_ready(task) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => {
                    error!(target: LOG_TARGET, "ZAP socket readiness: {e}");
                    return Poll::Ready(());
                }
                // Cleared before draining: an edge that comes during the drain sets it again.
                Poll::Ready(Ok(mut guard)) => guard.clear_ready(),
            }
            act.drain(ctx);
        }
    }
}

impl Actor for ZapSocket {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.spawn(Readiness);
        // Requests may have arrived between bind and now, their edge already spent.
        self.drain(ctx);
    }
}

impl Handler<GetStats> for ZapSocket {
    type Result = ResponseActFuture<Self, Stats>;

    fn handle(&mut self, msg: GetStats, _: &mut Self::Context) -> Self::Result {
        let counters = self.policy.send(msg);
        Box::pin(counters.into_actor(self).map(|answer, act, _| {
            // With the policy actor gone, this actor's own counts are all there is.
            let mut stats: Stats = answer.unwrap_or_default();
            for (key, count) in &act.own_replies.replies {
                *stats.replies.entry(*key).or_default() += count;
            }
            stats.in_flight = act.in_flight;
            stats.superseded = act.own_replies.superseded;
            stats.held_back = act.own_replies.held_back;
            stats.dropped = act.own_replies.dropped;
            stats
        }))
    }
}

impl Handler<Stop> for ZapSocket {
    type Result = Response<()>;

    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) -> Self::Result {
        let (done, stopped) = oneshot::channel();
        match std::mem::replace(&mut self.state, State::Closed) {
            // Already stopped: `done` is dropped, so the answer comes at once.
            State::Closed => {}
            State::Draining {
                socket,
                mut waiters,
            } => {
                waiters.push(done);
                self.state = State::Draining { socket, waiters };
            }
            State::Serving(socket) => {
                self.state = State::Draining {
                    socket,
                    waiters: vec![done],
                };
                // Answer what already arrived, then leave the endpoint (synchronous for
                // inproc, so a new authenticator can bind as soon as this returns).
                self.drain(ctx);
                if let Some(socket) = self.state.socket() {
                    if let Err(e) = socket.unbind(ZAP_ENDPOINT) {
                        warn!(target: LOG_TARGET, "unbinding the ZAP endpoint: {e}");
                    }
                }
                self.finish_stop_when_idle(ctx);
            }
        }
        Response::fut(async move {
            let _ = stopped.await;
        })
    }
}
