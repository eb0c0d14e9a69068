//! Stonehouse: the CURVE mechanism with any client key allowed (`CURVE_ALLOW_ANY`). Traffic
//! is encrypted and clients must know the server's public key, but the server does not
//! check who the clients are.
//!
//! Run it with `cargo run --example stonehouse`.
//!
//! The authenticator refuses nobody here. The one failure shown is a client with the wrong
//! server key: CURVE cryptography fails before the authenticator is ever asked.

#[path = "support/mod.rs"]
mod support;

use actix_zap::certs::Certificate;
use actix_zap::{ServerSocket, ThreadAuthenticator, CURVE_ALLOW_ANY};
use support::{curve_client, fail, Outcome, Server};

fn main() -> support::Result<()> {
    env_logger::init();
    let context = zmq::Context::new();
    let auth = ThreadAuthenticator::start(&context)?;
    auth.allow(["127.0.0.1"])?;
    auth.configure_curve("*", CURVE_ALLOW_ANY)?;

    let server_cert = Certificate::generate()?;
    let server_secret = server_cert.secret_key.clone().ok_or("no secret key")?;
    let socket = ServerSocket::curve("global", server_secret).build(&context, zmq::REP)?;
    let server = Server::start(&context, socket, |_| "World".into())?;
    println!("Stonehouse: CURVE encryption, any client key accepted.");

    // A client with a brand-new key, which nobody has seen before.
    let client = Certificate::generate()?;
    match server.attempt(curve_client(&context, &server_cert.public_key, &client)?) {
        Outcome::Admitted { reply, .. } => {
            println!("  admitted: a client with a never-seen key said \"Hello\" and got {reply:?}")
        }
        other => fail(format!("any key should be admitted, got {other:?}")),
    }

    // A client that was given the wrong server key.
    let impostor_key = Certificate::generate()?.public_key;
    match server.attempt(curve_client(&context, &impostor_key, &client)?) {
        Outcome::Failed(why) => println!(
            "  failed: a client with the wrong server key could not connect ({why}); \
             that is CURVE cryptography, not the authenticator, which was never asked"
        ),
        other => fail(format!("a wrong server key should fail, got {other:?}")),
    }

    drop(server);
    auth.stop();
    println!("Stonehouse OK: encrypted, any client welcome, but only to the right server.");
    Ok(())
}
