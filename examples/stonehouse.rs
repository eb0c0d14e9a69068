//! Stonehouse: the CURVE mechanism with any client key allowed (`CURVE_ALLOW_ANY`). Traffic
//! is encrypted and clients must know the server's public key, but the server does not
//! check who the clients are.
//!
//! Run it with `cargo run --example stonehouse`.
//!
//! The authenticator refuses nobody here. The one failure shown is a client with the wrong
//! server key: CURVE cryptography fails before the authenticator is ever asked.

use std::time::Duration;

use actix_zap::certs::Certificate;
use actix_zap::client::{HandshakeCheck, HandshakeOutcome};
use actix_zap::keys::CurvePublicKey;
use actix_zap::{ServerSocket, ThreadAuthenticator, CURVE_ALLOW_ANY};

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// A CURVE client with `me`'s keys, expecting the server whose public key is `server_key`.
fn curve_client(
    context: &zmq::Context,
    server_key: &CurvePublicKey,
    me: &Certificate,
) -> Result<zmq::Socket> {
    let client = context.socket(zmq::REQ)?;
    client.set_linger(0)?;
    client.set_rcvtimeo(10_000)?;
    client.set_curve_serverkey(server_key.as_bytes())?;
    client.set_curve_publickey(me.public_key.as_bytes())?;
    let secret = me.secret_key.as_ref().ok_or("no secret key")?;
    client.set_curve_secretkey(secret.as_bytes())?;
    Ok(client)
}

fn main() -> Result<()> {
    env_logger::init();
    let context = zmq::Context::new();
    let auth = ThreadAuthenticator::start(&context)?;
    auth.allow(["127.0.0.1"])?;
    auth.configure_curve("*", CURVE_ALLOW_ANY)?;

    let server_cert = Certificate::generate()?;
    let server_secret = server_cert.secret_key.clone().ok_or("no secret key")?;
    let server = ServerSocket::curve("global", server_secret).build(&context, zmq::REP)?;
    server.set_rcvtimeo(10_000)?;
    server.bind("tcp://127.0.0.1:0")?;
    let endpoint = server
        .get_last_endpoint()?
        .map_err(|_| "endpoint not UTF-8")?;
    println!("Stonehouse: CURVE encryption, any client key accepted.");

    // A client with a brand-new key, which nobody has seen before.
    let me = Certificate::generate()?;
    let mut client = curve_client(&context, &server_cert.public_key, &me)?;
    match HandshakeCheck::new(&endpoint)
        .run(&context, &mut client)?
        .outcome
    {
        HandshakeOutcome::Admitted => {
            client.send("Hello", 0)?;
            server.recv_msg(0)?;
            server.send("World", 0)?;
            let reply = client.recv_string(0)?.map_err(|_| "reply not UTF-8")?;
            println!("  admitted: a client with a never-seen key said \"Hello\" and got {reply:?}");
        }
        other => return Err(format!("any key should be admitted, got: {other}").into()),
    }

    // A client that was given the wrong server key. The server hangs up without a word, so
    // the check reports it when its deadline passes (libzmq retries until then).
    let impostor_key = Certificate::generate()?.public_key;
    let mut client = curve_client(&context, &impostor_key, &me)?;
    let check = HandshakeCheck::new(&endpoint).deadline(Duration::from_secs(2));
    match check.run(&context, &mut client)?.outcome {
        dropped @ HandshakeOutcome::Dropped { .. } => println!(
            "  failed: a client with the wrong server key could not connect ({dropped}); \
             that is CURVE cryptography, not the authenticator, which was never asked"
        ),
        other => return Err(format!("a wrong server key should fail, got: {other}").into()),
    }

    auth.stop();
    println!("Stonehouse OK: encrypted, any client welcome, but only to the right server.");
    Ok(())
}
