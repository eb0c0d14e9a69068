//! The crate's only `unsafe` code: three libzmq calls the `zmq` crate does not wrap, and the
//! reactor registration of a socket's `ZMQ_FD`.
//!
//! Everything else is compiled under `#![deny(unsafe_code)]` (the crate root). Each block
//! here states why it is sound in a `SAFETY:` comment, and each function is safe to call:
//! the invariants are kept inside this file, not left to callers.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::os::raw::c_int;
use std::os::unix::io::{AsRawFd, RawFd};
use std::task::{Context, Poll};

use tokio::io::unix::{AsyncFd, AsyncFdReadyGuard};
use tokio::io::Interest;

/// libzmq's error number of the calling thread's last failed call.
fn last_error() -> zmq::Error {
    // SAFETY: zmq_errno takes no arguments and only reads thread-local state.
    zmq::Error::from_raw(unsafe { zmq_sys::zmq_errno() })
}

/// `zmq_setsockopt(socket, option, &value, sizeof(int))` for an integer option the `zmq`
/// crate has no setter for (e.g. the draft `ZMQ_ZAP_ENFORCE_DOMAIN`).
pub(crate) fn set_int_option(
    socket: &mut zmq::Socket,
    option: c_int,
    value: c_int,
) -> zmq::Result<()> {
    // SAFETY: the socket pointer is live for the duration of the call (we hold `&mut` to its
    // owner), and the value pointer and size describe a valid `c_int` on our stack, which is
    // what zmq_setsockopt(3) requires for integer options. libzmq copies the value.
    let rc = unsafe {
        zmq_sys::zmq_setsockopt(
            socket.as_mut_ptr(),
            option,
            (&value as *const c_int).cast(),
            std::mem::size_of::<c_int>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(last_error())
    }
}

/// `zmq_socket_monitor(socket, NULL, 0)`: stops the socket's monitor (the `zmq` crate's
/// `monitor` takes an endpoint and cannot pass NULL).
pub(crate) fn stop_monitor(socket: &mut zmq::Socket) -> zmq::Result<()> {
    // SAFETY: the socket pointer is live (we hold `&mut` to its owner); a NULL endpoint is
    // how libzmq's API deregisters a monitor, documented in zmq_socket_monitor(3).
    let rc = unsafe { zmq_sys::zmq_socket_monitor(socket.as_mut_ptr(), std::ptr::null(), 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(last_error())
    }
}

/// An address that names `context` for as long as it lives: the libzmq context's handle
/// pointer, shared by every clone of it. The `zmq` crate has no accessor for it.
pub(crate) fn context_address(context: &zmq::Context) -> usize {
    // `zmq::Context` is a struct with one field, an `Arc` (one non-null pointer); the size
    // check below makes sure of it at compile time, so that pointer is all there is to copy.
    const _: () = assert!(std::mem::size_of::<zmq::Context>() == std::mem::size_of::<usize>());
    // SAFETY: transmute_copy reads the `Arc`'s pointer as bits (same size, asserted above),
    // without touching its reference count: no ownership is taken or given up, and the
    // number is only compared, never turned back into a pointer.
    unsafe { std::mem::transmute_copy::<zmq::Context, usize>(context) }
}

/// The kernel's cookie of the socket behind `fd` (`SO_COOKIE`, Linux 4.13+): unique per
/// socket for the life of the system and never reused, unlike descriptor numbers. `None`
/// when `fd` is no open socket (or the kernel has no cookies).
pub(crate) fn socket_cookie(fd: RawFd) -> Option<u64> {
    /// `SO_COOKIE` (the same number on every Linux architecture but a few: 57).
    const SO_COOKIE: c_int = 57;
    let mut cookie: u64 = 0;
    let mut size = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `size` bytes to `cookie`, a u64 on our stack, and
    // updates `size`; an invalid or non-socket descriptor makes it fail, which we report.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            SO_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut size,
        )
    };
    (rc == 0 && size as usize == std::mem::size_of::<u64>()).then_some(cookie)
}

/// Ends the connection behind `fd` if it is still the socket whose cookie is `cookie`:
/// `shutdown(fd, SHUT_RDWR)`, which libzmq sees as the peer going away (it tears the session
/// down and closes the descriptor itself). Never `close`: the descriptor is libzmq's. True
/// when it was shut down.
pub(crate) fn shut_down_if(fd: RawFd, cookie: u64) -> bool {
    if socket_cookie(fd) != Some(cookie) {
        return false;
    }
    // SAFETY: shutdown(2) on any descriptor number is memory-safe; the cookie check above
    // makes sure it is still the connection we mean (a descriptor reused since has another).
    unsafe { libc::shutdown(fd, libc::SHUT_RDWR) == 0 }
}

/// The socket's `ZMQ_FD` number. Only the number is registered with the reactor: wrapping
/// the `zmq::Socket` itself would make a failing `get_fd` during context termination panic
/// inside a destructor.
struct ZmqFd(RawFd);

impl AsRawFd for ZmqFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// A zmq socket whose `ZMQ_FD` is registered with the tokio reactor for reading.
///
/// The registration and the socket live and die together: the field order makes the
/// registration go first, before the socket (and with it the descriptor) closes, so a
/// reused descriptor number is never deregistered by mistake. Only shared access to the
/// socket is handed out, so it cannot be swapped for another under the registration.
pub(crate) struct WatchedSocket {
    readiness: AsyncFd<ZmqFd>,
    socket: zmq::Socket,
}

impl WatchedSocket {
    /// Registers `socket`'s `ZMQ_FD`. Must run inside a tokio runtime (an actix System).
    pub(crate) fn new(socket: zmq::Socket) -> std::io::Result<Self> {
        // SAFETY: `socket` is moved into the same struct, is never handed out mutably or
        // replaced, and is dropped after `readiness` (field order).
        let readiness = unsafe { register(&socket) }?;
        Ok(WatchedSocket { readiness, socket })
    }

    /// The socket.
    pub(crate) fn socket(&self) -> &zmq::Socket {
        &self.socket
    }

    /// Waits for the next `ZMQ_FD` edge (see [`AsyncFd::poll_read_ready`]).
    pub(crate) fn poll_read_ready<'a>(
        &'a self,
        task: &mut Context<'_>,
    ) -> Poll<std::io::Result<AsyncFdReadyGuard<'a, impl AsRawFd>>> {
        self.readiness.poll_read_ready(task)
    }
}

/// Registers `socket`'s `ZMQ_FD` with the current tokio runtime's reactor, for readability.
///
/// # Safety
/// AsyncFd requires the descriptor to stay open and refer to the same file for as long as the
/// registration lives: the caller keeps `socket` open, and never replaces it, until the
/// returned registration is dropped.
unsafe fn register(socket: &zmq::Socket) -> std::io::Result<AsyncFd<ZmqFd>> {
    let fd = socket.get_fd().map_err(std::io::Error::from)?;
    // SAFETY: the caller's promise above.
    unsafe { AsyncFd::register_with_interest(ZmqFd(fd), Interest::READABLE) }.map_err(Into::into)
}

/// A zmq socket whose `ZMQ_FD` is registered with the tokio reactor the first time someone
/// waits on it (so the socket can be made and used outside a runtime, and awaited inside one).
/// The same invariant as [`WatchedSocket`]: the registration goes first (field order), and the
/// socket is never handed out mutably or replaced.
pub(crate) struct LazyWatched {
    readiness: Option<AsyncFd<ZmqFd>>,
    socket: zmq::Socket,
}

impl LazyWatched {
    pub(crate) fn new(socket: zmq::Socket) -> Self {
        LazyWatched {
            readiness: None,
            socket,
        }
    }

    /// The socket.
    pub(crate) fn socket(&self) -> &zmq::Socket {
        &self.socket
    }

    /// Waits for the next `ZMQ_FD` edge (registering it first, inside the current tokio
    /// runtime). The caller checks `ZMQ_EVENTS` afterwards: the descriptor only says that
    /// something changed.
    pub(crate) async fn edge(&mut self) -> std::io::Result<()> {
        if self.readiness.is_none() {
            // SAFETY: as in `WatchedSocket::new`: `self.socket` lives in the same struct, is
            // never replaced, and is dropped after the registration (field order).
            self.readiness = Some(unsafe { register(&self.socket) }?);
        }
        let Some(readiness) = &self.readiness else {
            unreachable!("registered just above");
        };
        let mut guard = readiness.readable().await?;
        guard.clear_ready();
        Ok(())
    }
}

/// `zmq_msg_gets(message, name)` without the `zmq` crate's allocation of a C string per call
/// (its `Message::gets` builds one from the name each time) and without UTF-8 validation: the
/// property's bytes, borrowed from the message's metadata (shared by every message of its
/// session, so the pointer stays the same for the session's life).
pub(crate) fn message_property<'m>(message: &'m zmq::Message, name: &CStr) -> Option<&'m [u8]> {
    // `zmq::Message` is a struct whose one field is a `zmq_msg_t`: with equal sizes (checked
    // at compile time) that field is all of it, at offset 0.
    const _: () =
        assert!(std::mem::size_of::<zmq::Message>() == std::mem::size_of::<zmq_sys::zmq_msg_t>());
    let raw = (message as *const zmq::Message).cast::<zmq_sys::zmq_msg_t>();
    // SAFETY: `raw` points to the live `zmq_msg_t` of `message` (see above), which
    // zmq_msg_gets only reads; `name` is NUL-terminated. The result is NULL or a
    // NUL-terminated string owned by the message's metadata, which lives at least as long as
    // the message: the borrow is tied to `'m`.
    unsafe {
        let value = zmq_sys::zmq_msg_gets(raw, name.as_ptr());
        (!value.is_null()).then(|| CStr::from_ptr(value).to_bytes())
    }
}

/// A copy of a received message that keeps its metadata alive (`zmq_msg_copy` shares it,
/// reference-counted), so that the address of a property's value cannot be reused by another
/// session's metadata while the copy is held: equal addresses then mean the same session.
pub(crate) struct HeldMessage(zmq_sys::zmq_msg_t);

impl HeldMessage {
    /// A copy of `message` (its data is shared or, for a short one, copied; its metadata is
    /// shared).
    pub(crate) fn of(message: &mut zmq::Message) -> Option<HeldMessage> {
        let raw = (message as *mut zmq::Message).cast::<zmq_sys::zmq_msg_t>();
        // SAFETY: an all-zero zmq_msg_t is overwritten by zmq_msg_init before any use; `raw`
        // is the live zmq_msg_t of `message` (see `message_property`), which we hold `&mut`,
        // as zmq_msg_copy may update its reference-count flags. A failed copy leaves `held`
        // initialised and empty, which Drop closes.
        unsafe {
            let mut held = HeldMessage(std::mem::zeroed());
            zmq_sys::zmq_msg_init(&mut held.0);
            (zmq_sys::zmq_msg_copy(&mut held.0, raw) == 0).then_some(held)
        }
    }
}

impl Drop for HeldMessage {
    fn drop(&mut self) {
        // SAFETY: the message was initialised in `of` and is closed exactly once, here.
        unsafe {
            zmq_sys::zmq_msg_close(&mut self.0);
        }
    }
}

/// The first word of a message's `zmq_msg_t`: in libzmq 4.x every kind of message (short,
/// long, constant, delimiter, …) starts with its `metadata_t *` (the union in libzmq's
/// `msg.hpp`), so two received messages with the same non-zero first word share their
/// metadata — while that metadata is kept alive (see [`HeldMessage`]), nothing else can be at
/// its address. Not public API: [`metadata_word_is_reliable`] checks the layout first.
pub(crate) fn metadata_word(message: &zmq::Message) -> usize {
    let raw = (message as *const zmq::Message).cast::<usize>();
    // SAFETY: the message is a live 64-byte `zmq_msg_t` (see `message_property`) whose bytes
    // libzmq initialised; the first 8 are read as a word, aligned or not.
    unsafe { raw.read_unaligned() }
}

/// Whether [`metadata_word`] is the metadata pointer in the linked libzmq: major version 4,
/// and messages made here, which carry no metadata — an empty one, a short one whose data is
/// not zero, a long one — read 0 there (were the data, size or content pointer first, the
/// short or the long one would not).
pub(crate) fn metadata_word_is_reliable() -> bool {
    static RELIABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *RELIABLE.get_or_init(|| {
        let short = zmq::Message::from(&[0xA5u8; 16][..]);
        let long = zmq::Message::from(&[0xA5u8; 256][..]);
        let empty = zmq::Message::new();
        zmq::version().0 == 4
            && [&short, &long, &empty]
                .iter()
                .all(|m| metadata_word(m) == 0)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_linked_libzmq_starts_its_messages_with_their_metadata() {
        assert!(super::metadata_word_is_reliable());
    }
}
