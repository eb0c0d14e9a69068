//! Woodhouse: the PLAIN mechanism, usernames and passwords checked by the authenticator
//! (plus an address allow-list). A client with the right password is served; one with a
//! wrong password is refused.
//!
//! Run it with `cargo run --example woodhouse`.
//!
//! PLAIN sends the password in clear text: use it only on trusted networks (or use CURVE).

#[path = "support/mod.rs"]
mod support;

use actix_zap::{ServerSocket, ThreadAuthenticator};
use support::{fail, plain_client, Outcome, Server};

fn main() -> support::Result<()> {
    env_logger::init();
    let context = zmq::Context::new();
    let auth = ThreadAuthenticator::start(&context)?;
    auth.allow(["127.0.0.1"])?;
    auth.configure_plain("global", [("admin", "secret")])?;

    let socket = ServerSocket::plain("global").build(&context, zmq::REP)?;
    // The server application sees who logged in as the `User-Id` message property.
    let server = Server::start(&context, socket, |request| {
        let user = request.gets("User-Id").unwrap_or("?").to_owned();
        format!("World, {user}")
    })?;
    println!("Woodhouse: PLAIN mechanism, passwords checked by the authenticator.");

    match server.attempt(plain_client(&context, "admin", "secret")?) {
        Outcome::Admitted { reply, .. } => {
            println!("  admitted: admin with the right password said \"Hello\" and got {reply:?}")
        }
        other => fail(format!("admin/secret should be admitted, got {other:?}")),
    }

    match server.attempt(plain_client(&context, "admin", "bogus")?) {
        Outcome::Refused(status) => println!(
            "  refused: admin with a wrong password was refused by the authenticator \
             (ZAP status {status}); its \"Hello\" never reached the server"
        ),
        other => fail(format!("a wrong password should be refused, got {other:?}")),
    }

    drop(server);
    auth.stop();
    println!("Woodhouse OK: the right password got in, the wrong one did not.");
    Ok(())
}
