//! Strawhouse: the NULL mechanism with a ZAP domain, so that the authenticator checks every
//! client's IP address. First an allow-list admits 127.0.0.1; then the rules are switched,
//! at runtime, to a deny-list that refuses it.
//!
//! Run it with `cargo run --example strawhouse`.
//!
//! Addresses are weak protection (no encryption, no identity), but they are the only thing a
//! NULL server can check. Without a ZAP domain libzmq never asks the authenticator about NULL
//! clients; `ServerSocket::null("global")` sets one.

use actix_zap::client::{HandshakeCheck, HandshakeOutcome};
use actix_zap::messages::SetAddressRules;
use actix_zap::policy::{AddressRules, AddressSet};
use actix_zap::{ServerSocket, ThreadAuthenticator};

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// Connects a NULL client to `endpoint` and says how its handshake ended.
fn connect(context: &zmq::Context, endpoint: &str) -> Result<(HandshakeOutcome, zmq::Socket)> {
    let mut client = context.socket(zmq::REQ)?;
    client.set_linger(0)?;
    client.set_rcvtimeo(10_000)?;
    let report = HandshakeCheck::new(endpoint).run(context, &mut client)?;
    Ok((report.outcome, client))
}

fn main() -> Result<()> {
    env_logger::init();
    let context = zmq::Context::new();
    // The authenticator must use the same context as the server sockets.
    let auth = ThreadAuthenticator::start(&context)?;
    auth.allow(["127.0.0.1"])?;

    let server = ServerSocket::null("global").build(&context, zmq::REP)?;
    server.set_rcvtimeo(10_000)?;
    server.bind("tcp://127.0.0.1:0")?;
    let endpoint = server
        .get_last_endpoint()?
        .map_err(|_| "endpoint not UTF-8")?;
    println!("Strawhouse: NULL mechanism, clients checked by IP address.");

    match connect(&context, &endpoint)? {
        (HandshakeOutcome::Admitted, client) => {
            client.send("Hello", 0)?;
            server.recv_msg(0)?;
            server.send("World", 0)?;
            let reply = client.recv_string(0)?.map_err(|_| "reply not UTF-8")?;
            println!(
                "  admitted: with 127.0.0.1 on the allow-list, the client said \"Hello\" and got {reply:?}"
            );
        }
        (other, _) => return Err(format!("127.0.0.1 is allowed, got: {other}").into()),
    }

    // Allow and deny lists are exclusive: replace the rules as a whole, in one message, so
    // that no handshake is ever decided with neither list in force.
    let mut denied = AddressSet::default();
    denied.insert("127.0.0.1".parse()?);
    auth.send(SetAddressRules(AddressRules::Deny(denied)))?;

    match connect(&context, &endpoint)?.0 {
        HandshakeOutcome::Refused { status } => println!(
            "  refused: with 127.0.0.1 on the deny-list, the authenticator refused the client \
             (ZAP status {status})"
        ),
        other => return Err(format!("127.0.0.1 is denied, got: {other}").into()),
    }

    auth.stop();
    println!("Strawhouse OK: the address rules decided both times.");
    Ok(())
}
