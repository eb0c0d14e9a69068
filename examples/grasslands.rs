//! Grasslands: no security at all. The NULL mechanism, no ZAP domain, no authenticator:
//! whoever can reach the port is served, and traffic is not encrypted.
//!
//! Run it with `cargo run --example grasslands`.
//!
//! With nothing to authenticate, the only client that fails here is one that insists on
//! CURVE (it was given a server key) — a mechanism mismatch refused by the ZMTP handshake
//! itself, not by an authenticator.

use actix_zap::certs::Certificate;
use actix_zap::client::{HandshakeCheck, HandshakeOutcome};

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

fn main() -> Result<()> {
    env_logger::init();
    let context = zmq::Context::new();

    // A plain server socket: no ServerSocket hardening, because there is no ZAP at all.
    let server = context.socket(zmq::REP)?;
    server.set_linger(0)?;
    server.set_rcvtimeo(10_000)?;
    server.bind("tcp://127.0.0.1:0")?;
    let endpoint = server
        .get_last_endpoint()?
        .map_err(|_| "endpoint not UTF-8")?;
    println!("Grasslands: NULL mechanism, no authenticator; anyone who connects is served.");

    let mut client = context.socket(zmq::REQ)?;
    client.set_linger(0)?;
    client.set_rcvtimeo(10_000)?;
    match HandshakeCheck::new(&endpoint)
        .run(&context, &mut client)?
        .outcome
    {
        HandshakeOutcome::Admitted => {
            client.send("Hello", 0)?;
            server.recv_msg(0)?;
            server.send("World", 0)?;
            let reply = client.recv_string(0)?.map_err(|_| "reply not UTF-8")?;
            println!("  admitted: a client with no credentials said \"Hello\" and got {reply:?}");
        }
        other => return Err(format!("the NULL client should be served, got: {other}").into()),
    }

    // A client configured for CURVE: it expects a server with this (made-up) public key.
    let server_key = Certificate::generate()?.public_key;
    let me = Certificate::generate()?;
    let mut client = context.socket(zmq::REQ)?;
    client.set_linger(0)?;
    client.set_curve_serverkey(server_key.as_bytes())?;
    client.set_curve_publickey(me.public_key.as_bytes())?;
    client.set_curve_secretkey(me.secret_key.ok_or("no secret key")?.as_bytes())?;
    match HandshakeCheck::new(&endpoint)
        .run(&context, &mut client)?
        .outcome
    {
        mismatch @ HandshakeOutcome::MechanismMismatch { .. } => println!(
            "  failed: a client that insists on CURVE could not connect ({mismatch}); that is \
             the ZMTP handshake, not an authenticator: there is none here"
        ),
        other => return Err(format!("the CURVE client should fail, got: {other}").into()),
    }

    println!("Grasslands OK: no security means no refusals, only protocol mismatches.");
    Ok(())
}
