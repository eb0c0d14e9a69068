//! Woodhouse: the PLAIN mechanism, usernames and passwords checked by the authenticator
//! (plus an address allow-list). A client with the right password is served; one with a
//! wrong password is refused.
//!
//! Run it with `cargo run --example woodhouse`.
//!
//! PLAIN sends the password in clear text: use it only on trusted networks (or use CURVE).

use actix_zap::client::{HandshakeCheck, HandshakeOutcome};
use actix_zap::{ServerSocket, ThreadAuthenticator};

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// Connects a PLAIN client to `endpoint` and says how its handshake ended.
fn connect(
    context: &zmq::Context,
    endpoint: &str,
    user: &str,
    password: &str,
) -> Result<(HandshakeOutcome, zmq::Socket)> {
    let mut client = context.socket(zmq::REQ)?;
    client.set_linger(0)?;
    client.set_rcvtimeo(10_000)?;
    client.set_plain_username(Some(user))?;
    client.set_plain_password(Some(password))?;
    let report = HandshakeCheck::new(endpoint).run(context, &mut client)?;
    Ok((report.outcome, client))
}

fn main() -> Result<()> {
    env_logger::init();
    let context = zmq::Context::new();
    let auth = ThreadAuthenticator::start(&context)?;
    auth.allow(["127.0.0.1"])?;
    auth.configure_plain("global", [("admin", "secret")])?;

    let server = ServerSocket::plain("global").build(&context, zmq::REP)?;
    server.set_rcvtimeo(10_000)?;
    server.bind("tcp://127.0.0.1:0")?;
    let endpoint = server
        .get_last_endpoint()?
        .map_err(|_| "endpoint not UTF-8")?;
    println!("Woodhouse: PLAIN mechanism, passwords checked by the authenticator.");

    match connect(&context, &endpoint, "admin", "secret")? {
        (HandshakeOutcome::Admitted, client) => {
            client.send("Hello", 0)?;
            let mut request = server.recv_msg(0)?;
            // The server application sees who logged in as the `User-Id` message property.
            let user = request.gets("User-Id").unwrap_or("?").to_owned();
            server.send(format!("World, {user}").as_str(), 0)?;
            let reply = client.recv_string(0)?.map_err(|_| "reply not UTF-8")?;
            println!("  admitted: admin with the right password said \"Hello\" and got {reply:?}");
        }
        (other, _) => return Err(format!("admin/secret should be admitted, got: {other}").into()),
    }

    match connect(&context, &endpoint, "admin", "bogus")?.0 {
        HandshakeOutcome::Refused { status } => println!(
            "  refused: admin with a wrong password was refused by the authenticator \
             (ZAP status {status}); no \"Hello\" of it can reach the server"
        ),
        other => return Err(format!("a wrong password should be refused, got: {other}").into()),
    }

    auth.stop();
    println!("Woodhouse OK: the right password got in, the wrong one did not.");
    Ok(())
}
