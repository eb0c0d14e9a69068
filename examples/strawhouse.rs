//! Strawhouse: the NULL mechanism with a ZAP domain, so that the authenticator checks every
//! client's IP address. First an allow-list admits 127.0.0.1; then the rules are switched,
//! at runtime, to a deny-list that refuses it.
//!
//! Run it with `cargo run --example strawhouse`.
//!
//! Addresses are weak protection (no encryption, no identity), but they are the only thing a
//! NULL server can check. Without a ZAP domain libzmq never asks the authenticator about NULL
//! clients; `ServerSocket::null("global")` sets one.

#[path = "support/mod.rs"]
mod support;

use actix_zap::messages::SetAddressRules;
use actix_zap::policy::{AddressRules, AddressSet};
use actix_zap::{ServerSocket, ThreadAuthenticator};
use support::{fail, null_client, Outcome, Server};

fn main() -> support::Result<()> {
    env_logger::init();
    let context = zmq::Context::new();
    // The authenticator must use the same context as the server sockets.
    let auth = ThreadAuthenticator::start(&context)?;
    auth.allow(["127.0.0.1"])?;

    let socket = ServerSocket::null("global").build(&context, zmq::REP)?;
    let server = Server::start(&context, socket, |_| "World".into())?;
    println!("Strawhouse: NULL mechanism, clients checked by IP address.");

    match server.attempt(null_client(&context)?) {
        Outcome::Admitted { reply, .. } => println!(
            "  admitted: with 127.0.0.1 on the allow-list, the client said \"Hello\" and got {reply:?}"
        ),
        other => fail(format!("127.0.0.1 is allowed, got {other:?}")),
    }

    // Allow and deny lists are exclusive: replace the rules as a whole with a typed message.
    let mut denied = AddressSet::default();
    denied.insert("127.0.0.1".parse()?);
    futures::executor::block_on(
        auth.handle()
            .send(SetAddressRules(AddressRules::Deny(denied))),
    )?;

    match server.attempt(null_client(&context)?) {
        Outcome::Refused(status) => println!(
            "  refused: with 127.0.0.1 on the deny-list, the authenticator refused the client \
             (ZAP status {status})"
        ),
        other => fail(format!("127.0.0.1 is denied, got {other:?}")),
    }

    // Stop order: sockets first, then the authenticator, then the context.
    drop(server);
    auth.stop();
    println!("Strawhouse OK: the address rules decided both times.");
    Ok(())
}
