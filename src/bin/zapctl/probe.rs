//! `zapctl probe`: one client handshake against an endpoint, reported in one line.

use std::path::PathBuf;
use std::time::Duration;

use actix_zap::certs::load_certificate;
use actix_zap::client::{HandshakeCheck, HandshakeOutcome};
use actix_zap::keys::CurvePublicKey;
use clap::{ArgGroup, Args};

use crate::json;

/// Exit code for arguments that cannot be used.
pub const USAGE: u8 = 2;

/// The environment variable a PLAIN password may come from.
const PASSWORD_VAR: &str = "ZAPCTL_PASSWORD";

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("mechanism").args(["null", "plain", "curve"])))]
pub struct ProbeArgs {
    /// Where the server listens, e.g. tcp://127.0.0.1:5555
    endpoint: String,
    /// No security (the default)
    #[arg(long)]
    null: bool,
    /// PLAIN with this username (password: ZAPCTL_PASSWORD or the first line of stdin)
    #[arg(long, value_name = "USER")]
    plain: Option<String>,
    /// CURVE; needs --server-key and --cert
    #[arg(long, requires_all = ["server_key", "cert"])]
    curve: bool,
    /// The server's public key: 40 characters of Z85, or a certificate file holding it
    // Z85 text may start with '-': it is a value, never a flag.
    #[arg(
        long,
        value_name = "KEY",
        requires = "curve",
        allow_hyphen_values = true
    )]
    server_key: Option<String>,
    /// The client's certificate with its secret key (NAME.key_secret)
    #[arg(long, value_name = "CLIENT.key_secret", requires = "curve")]
    cert: Option<PathBuf>,
    /// The client's socket type: it must be able to talk to the server's (REP/ROUTER:
    /// dealer or req; PULL: push; PUB/XPUB: sub; PAIR: pair), or the server drops it
    #[arg(long, value_enum, value_name = "TYPE", default_value = "dealer")]
    socket_type: SocketType,
    /// How long to wait for an outcome: 5s, 1500ms, 2.5 (seconds)
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
    /// Print {"outcome": …, "status": N|null, "detail": …, "elapsed_ms": N,
    /// "client_mechanism": …, "server_mechanism": …|null (its greeting not read)}
    #[arg(long)]
    json: bool,
    /// Also print the server's greeting and every socket monitor event seen (to stderr)
    #[arg(long, short)]
    verbose: bool,
}

/// Client socket types worth probing with.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SocketType {
    Dealer,
    Req,
    Push,
    Sub,
    Pair,
}

impl SocketType {
    fn zmq(self) -> zmq::SocketType {
        match self {
            SocketType::Dealer => zmq::DEALER,
            SocketType::Req => zmq::REQ,
            SocketType::Push => zmq::PUSH,
            SocketType::Sub => zmq::SUB,
            SocketType::Pair => zmq::PAIR,
        }
    }
}

/// The client's security, ready to set on a socket.
enum Security {
    Null,
    Plain {
        user: String,
        password: String,
    },
    Curve {
        server: CurvePublicKey,
        client: actix_zap::certs::Certificate,
    },
}

pub fn run(args: ProbeArgs) -> u8 {
    let security = match security(&args) {
        Ok(security) => security,
        Err(message) => {
            eprintln!("zapctl probe: {message}");
            return USAGE;
        }
    };
    let context = zmq::Context::new();
    let mut socket = match client_socket(&context, args.socket_type.zmq(), &security) {
        Ok(socket) => socket,
        Err(message) => {
            eprintln!("zapctl probe: {message}");
            return USAGE;
        }
    };
    let check = HandshakeCheck::new(&args.endpoint).deadline(args.timeout);
    let report = match check.run(&context, &mut socket) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("zapctl probe: {error}");
            return USAGE;
        }
    };
    if args.verbose {
        match &report.server_greeting {
            Ok(greeting) => eprintln!(
                "greeting: the server uses {} (ZMTP {}.{}); this client {}",
                greeting.mechanism, greeting.version.0, greeting.version.1, report.client_mechanism
            ),
            Err(why) => eprintln!("greeting: {why}"),
        }
        for (at, event, value) in &report.events {
            eprintln!(
                "{:>6} ms  {}  {value:#x}",
                at.as_millis(),
                event_name(*event)
            );
        }
    }
    let outcome = &report.outcome;
    if args.json {
        let detail = outcome.to_string();
        let line = json::probe_result(&json::ProbeResult {
            outcome: outcome.name(),
            status: outcome.status(),
            detail: &detail,
            elapsed_ms: report.elapsed.as_millis(),
            client_mechanism: report.client_mechanism.name(),
            server_mechanism: report
                .server_greeting
                .as_ref()
                .ok()
                .map(|greeting| greeting.mechanism.name()),
        });
        println!("{line}");
    } else {
        println!(
            "{}: {outcome} ({} ms)",
            args.endpoint,
            report.elapsed.as_millis()
        );
    }
    exit_code(outcome)
}

/// One exit code per outcome (see `--help`).
pub fn exit_code(outcome: &HandshakeOutcome) -> u8 {
    match outcome {
        HandshakeOutcome::Admitted => 0,
        HandshakeOutcome::Refused { .. } => 3,
        HandshakeOutcome::AuthenticatorError { .. } => 4,
        HandshakeOutcome::Stalled { .. } => 5,
        HandshakeOutcome::ProtocolError { .. } | HandshakeOutcome::MechanismMismatch { .. } => 6,
        HandshakeOutcome::Dropped { .. } => 7,
        HandshakeOutcome::Unreachable { .. } => 8,
        _ => 9,
    }
}

fn security(args: &ProbeArgs) -> Result<Security, String> {
    if let Some(user) = &args.plain {
        return Ok(Security::Plain {
            user: user.clone(),
            password: password()?,
        });
    }
    if !args.curve {
        return Ok(Security::Null);
    }
    if zmq::has("curve") != Some(true) {
        return Err(
            "the linked libzmq cannot do CURVE (install libzmq3-dev built with libsodium)".into(),
        );
    }
    let (Some(key), Some(cert)) = (&args.server_key, &args.cert) else {
        return Err("--curve needs --server-key and --cert".into());
    };
    let server = server_key(key)?;
    let client = load_certificate(cert).map_err(|e| format!("client certificate: {e}"))?;
    if client.secret_key.is_none() {
        return Err(format!(
            "{} holds no secret key: pass the client's NAME.key_secret file",
            cert.display()
        ));
    }
    Ok(Security::Curve { server, client })
}

/// A 40-character Z85 key, or else the path of a certificate file.
fn server_key(text: &str) -> Result<CurvePublicKey, String> {
    if text.len() == 40 {
        if let Ok(key) = CurvePublicKey::from_z85(text) {
            return Ok(key);
        }
    }
    load_certificate(text)
        .map(|cert| cert.public_key)
        .map_err(|e| {
            format!(
                "--server-key is neither a 40-character Z85 key nor a readable certificate: {e}"
            )
        })
}

/// `ZAPCTL_PASSWORD`, or else the first line of stdin (prompted for, without echo, on a
/// terminal).
fn password() -> Result<String, String> {
    if let Ok(password) = std::env::var(PASSWORD_VAR) {
        return non_empty(password);
    }
    non_empty(crate::secret::read_secret("Password: ")?)
}

/// libzmq cannot send an empty PLAIN password (EINVAL).
fn non_empty(password: String) -> Result<String, String> {
    if password.is_empty() {
        Err(format!(
            "--plain needs a password: set {PASSWORD_VAR} or write it as the first line of stdin"
        ))
    } else {
        Ok(password)
    }
}

fn client_socket(
    context: &zmq::Context,
    socket_type: zmq::SocketType,
    security: &Security,
) -> Result<zmq::Socket, String> {
    let socket = context.socket(socket_type).map_err(|e| e.to_string())?;
    let set = || -> zmq::Result<()> {
        socket.set_linger(0)?;
        match security {
            Security::Null => {}
            Security::Plain { user, password } => {
                socket.set_plain_username(Some(user))?;
                socket.set_plain_password(Some(password))?;
            }
            Security::Curve { server, client } => {
                socket.set_curve_serverkey(server.as_bytes())?;
                socket.set_curve_publickey(client.public_key.as_bytes())?;
                if let Some(secret) = &client.secret_key {
                    socket.set_curve_secretkey(secret.as_bytes())?;
                }
            }
        }
        Ok(())
    };
    set().map_err(|e| format!("cannot configure the client socket: {e}"))?;
    Ok(socket)
}

fn event_name(event: u16) -> &'static str {
    use zmq::SocketEvent as E;
    const NAMES: [(E, &str); 15] = [
        (E::CONNECTED, "CONNECTED"),
        (E::CONNECT_DELAYED, "CONNECT_DELAYED"),
        (E::CONNECT_RETRIED, "CONNECT_RETRIED"),
        (E::LISTENING, "LISTENING"),
        (E::BIND_FAILED, "BIND_FAILED"),
        (E::ACCEPTED, "ACCEPTED"),
        (E::ACCEPT_FAILED, "ACCEPT_FAILED"),
        (E::CLOSED, "CLOSED"),
        (E::CLOSE_FAILED, "CLOSE_FAILED"),
        (E::DISCONNECTED, "DISCONNECTED"),
        (E::MONITOR_STOPPED, "MONITOR_STOPPED"),
        (E::HANDSHAKE_FAILED_NO_DETAIL, "HANDSHAKE_FAILED_NO_DETAIL"),
        (E::HANDSHAKE_SUCCEEDED, "HANDSHAKE_SUCCEEDED"),
        (E::HANDSHAKE_FAILED_PROTOCOL, "HANDSHAKE_FAILED_PROTOCOL"),
        (E::HANDSHAKE_FAILED_AUTH, "HANDSHAKE_FAILED_AUTH"),
    ];
    NAMES
        .iter()
        .find(|(e, _)| *e as u16 == event)
        .map_or("UNKNOWN", |(_, name)| name)
}

/// `5s`, `1500ms` or a bare number of seconds (`2.5`).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (try 5s or 1500ms)"))?;
    let seconds = value * scale;
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= 3600.0) {
        return Err(format!(
            "{text:?}: the timeout must be above 0 and at most an hour"
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_zap::client::Mechanism;

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn every_outcome_has_its_own_exit_code() {
        let outcomes = [
            HandshakeOutcome::Admitted,
            HandshakeOutcome::Refused { status: 400 },
            HandshakeOutcome::AuthenticatorError { status: 500 },
            HandshakeOutcome::Stalled {
                waited: Duration::ZERO,
            },
            HandshakeOutcome::ProtocolError { code: 1 },
            HandshakeOutcome::MechanismMismatch {
                client: Mechanism::Plain,
                server: Mechanism::Curve,
            },
            HandshakeOutcome::Dropped { attempts: 3 },
            HandshakeOutcome::Unreachable { attempts: 1 },
            HandshakeOutcome::DeadlinePassed,
        ];
        let codes: Vec<u8> = outcomes.iter().map(exit_code).collect();
        assert_eq!(codes, [0, 3, 4, 5, 6, 6, 7, 8, 9]);
    }
}
