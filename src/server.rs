//! `ServerSocket`: server sockets that refuse every handshake when no ZAP handler answers.

use crate::keys::CurveSecretKey;
use crate::policy::MAX_DOMAIN_BYTES;

/// libzmq's `ZMQ_ZAP_ENFORCE_DOMAIN` (draft API, present in 4.3.x builds).
const ZMQ_ZAP_ENFORCE_DOMAIN: i32 = 93;

/// Why a hardened server socket could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ServerSocketError {
    /// An empty domain would disable the enforcement (and abort PLAIN servers).
    #[error("a hardened server socket needs a non-empty ZAP domain")]
    EmptyDomain,
    /// libzmq limits `ZMQ_ZAP_DOMAIN` to 255 bytes.
    #[error("ZAP domain is {0} bytes, libzmq allows at most 255")]
    DomainTooLong(usize),
    /// The linked libzmq cannot do CURVE.
    #[error("{}", crate::error::NO_CURVE_SUPPORT)]
    NoCurveSupport,
    /// The linked libzmq does not know `ZMQ_ZAP_ENFORCE_DOMAIN` (older than 4.3.0).
    #[error("the linked libzmq does not support ZMQ_ZAP_ENFORCE_DOMAIN (needs 4.3.0 or later)")]
    EnforceUnsupported,
    /// Another zmq call failed.
    #[error("zmq: {0}")]
    Zmq(#[from] zmq::Error),
}

/// The security mechanism of a hardened server.
#[derive(Debug, Clone)]
pub enum ServerMechanism {
    /// NULL: every client is decided by address rules (the domain makes libzmq ask).
    Null,
    /// PLAIN: username and password.
    Plain,
    /// CURVE with the server's long-term secret key.
    Curve(CurveSecretKey),
}

/// A recipe for server sockets that fail closed.
///
/// By default libzmq lets CURVE and NULL-with-domain peers in *unauthenticated* when nothing
/// is bound to the ZAP endpoint — before the authenticator starts, after it stops, or if it
/// never started. `ZMQ_ZAP_ENFORCE_DOMAIN` (option 93, a draft option the `zmq` crate does not
/// wrap) turns that into a refusal, but only together with a non-empty ZAP domain: with an
/// empty domain a CURVE server skips ZAP altogether and a PLAIN server aborts the process
/// (libzmq 4.3.4). This builder therefore requires a domain and sets, in this order and before
/// the caller binds: the domain, the mechanism with its keys, and the enforce flag.
///
/// ```no_run
/// use actix_zap::ServerSocket;
/// let context = zmq::Context::new();
/// let server = ServerSocket::plain("global").build(&context, zmq::REP)?;
/// server.bind("tcp://127.0.0.1:5556")?; // options are in place before bind
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ServerSocket {
    domain: String,
    mechanism: ServerMechanism,
}

impl ServerSocket {
    /// NULL security in `domain`.
    pub fn null(domain: impl Into<String>) -> Self {
        Self::new(domain, ServerMechanism::Null)
    }

    /// PLAIN security in `domain`.
    pub fn plain(domain: impl Into<String>) -> Self {
        Self::new(domain, ServerMechanism::Plain)
    }

    /// CURVE security in `domain`, with the server's secret key.
    pub fn curve(domain: impl Into<String>, secret_key: CurveSecretKey) -> Self {
        Self::new(domain, ServerMechanism::Curve(secret_key))
    }

    /// Any mechanism in `domain`.
    pub fn new(domain: impl Into<String>, mechanism: ServerMechanism) -> Self {
        ServerSocket {
            domain: domain.into(),
            mechanism,
        }
    }

    /// Creates the socket with the options set; bind it afterwards.
    pub fn build(
        &self,
        context: &zmq::Context,
        socket_type: zmq::SocketType,
    ) -> Result<zmq::Socket, ServerSocketError> {
        let mut socket = context.socket(socket_type)?;
        self.apply(&mut socket)?;
        Ok(socket)
    }

    /// Sets the options on an existing socket that is not bound yet.
    pub fn apply(&self, socket: &mut zmq::Socket) -> Result<(), ServerSocketError> {
        check_domain(&self.domain)?;
        check_mechanism(&self.mechanism, zmq::has("curve"))?;
        socket.set_zap_domain(&self.domain)?;
        match &self.mechanism {
            ServerMechanism::Null => {}
            ServerMechanism::Plain => socket.set_plain_server(true)?,
            ServerMechanism::Curve(secret) => {
                socket.set_curve_server(true)?;
                socket.set_curve_secretkey(secret.as_bytes())?;
            }
        }
        enforce_domain(socket)
    }
}

fn check_domain(domain: &str) -> Result<(), ServerSocketError> {
    if domain.is_empty() {
        return Err(ServerSocketError::EmptyDomain);
    }
    if domain.len() > MAX_DOMAIN_BYTES {
        return Err(ServerSocketError::DomainTooLong(domain.len()));
    }
    Ok(())
}

/// A CURVE server needs a libzmq that can do CURVE (`has_curve` is `zmq::has("curve")`).
fn check_mechanism(
    mechanism: &ServerMechanism,
    has_curve: Option<bool>,
) -> Result<(), ServerSocketError> {
    match (mechanism, has_curve) {
        (ServerMechanism::Curve(_), Some(true))
        | (ServerMechanism::Null | ServerMechanism::Plain, _) => Ok(()),
        (ServerMechanism::Curve(_), _) => Err(ServerSocketError::NoCurveSupport),
    }
}

fn enforce_domain(socket: &mut zmq::Socket) -> Result<(), ServerSocketError> {
    let on: i32 = 1;
    // SAFETY: the socket pointer is live for the duration of the call (we hold `&mut`), and
    // the value pointer and size describe a valid i32, as zmq_setsockopt requires.
    let rc = unsafe {
        zmq_sys::zmq_setsockopt(
            socket.as_mut_ptr(),
            ZMQ_ZAP_ENFORCE_DOMAIN,
            (&on as *const i32).cast(),
            std::mem::size_of::<i32>(),
        )
    };
    if rc == 0 {
        return Ok(());
    }
    match zmq::Error::from_raw(unsafe { zmq_sys::zmq_errno() }) {
        zmq::Error::EINVAL => Err(ServerSocketError::EnforceUnsupported),
        other => Err(other.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_required_and_bounded() {
        assert!(matches!(
            check_domain(""),
            Err(ServerSocketError::EmptyDomain)
        ));
        assert!(matches!(
            check_domain(&"x".repeat(256)),
            Err(ServerSocketError::DomainTooLong(256))
        ));
        assert!(check_domain("global").is_ok());
    }

    #[test]
    fn a_curve_server_needs_curve_support_and_says_how_to_fix_it() {
        let curve = ServerMechanism::Curve(CurveSecretKey::from_bytes([1; 32]));
        assert!(check_mechanism(&curve, Some(true)).is_ok());
        for missing in [Some(false), None] {
            let error = check_mechanism(&curve, missing).unwrap_err();
            assert!(error.to_string().contains("libzmq3-dev"), "{error}");
        }
        assert!(check_mechanism(&ServerMechanism::Plain, Some(false)).is_ok());
    }

    #[test]
    fn an_empty_domain_is_refused_before_any_option_is_set() {
        let context = zmq::Context::new();
        let result = ServerSocket::plain("").build(&context, zmq::REP);
        assert!(matches!(result, Err(ServerSocketError::EmptyDomain)));
    }
}
