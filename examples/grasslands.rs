//! Grasslands: no security at all. The NULL mechanism, no ZAP domain, no authenticator:
//! whoever can reach the port is served, and traffic is not encrypted.
//!
//! Run it with `cargo run --example grasslands`.
//!
//! With nothing to authenticate, the only client that fails here is one that insists on
//! CURVE (it was given a server key) — a mechanism mismatch refused by the ZMTP handshake
//! itself, not by an authenticator.

#[path = "support/mod.rs"]
mod support;

use actix_zap::certs::Certificate;
use support::{curve_client, fail, null_client, Outcome, Server};

fn main() -> support::Result<()> {
    env_logger::init();
    let context = zmq::Context::new();

    // A plain server socket: no ServerSocket hardening, because there is no ZAP at all.
    let server = Server::start(&context, context.socket(zmq::REP)?, |_| "World".into())?;
    println!("Grasslands: NULL mechanism, no authenticator; anyone who connects is served.");

    match server.attempt(null_client(&context)?) {
        Outcome::Admitted { reply, .. } => {
            println!("  admitted: a client with no credentials said \"Hello\" and got {reply:?}")
        }
        other => fail(format!(
            "the NULL client should have been served, got {other:?}"
        )),
    }

    // A client configured for CURVE: it expects a server with this (made-up) public key.
    let server_key = Certificate::generate()?.public_key;
    let me = Certificate::generate()?;
    match server.attempt(curve_client(&context, &server_key, &me)?) {
        Outcome::Failed(why) => println!(
            "  failed: a client that insists on CURVE with a server key could not connect \
             ({why}); that is the ZMTP handshake, not an authenticator: there is none here"
        ),
        other => fail(format!(
            "the CURVE client should have failed, got {other:?}"
        )),
    }

    drop(server);
    println!("Grasslands OK: no security means no refusals, only protocol mismatches.");
    Ok(())
}
