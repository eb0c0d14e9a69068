//! Reconfigure: an actix application trusts and revokes CURVE keys of its running server, one
//! key at a time, through the authenticator's handle. Nothing is restarted, and a steady
//! client is served between every step.
//!
//! Run it with `cargo run --example reconfigure`.
//!
//! 1. Only `steady` is trusted: the `newcomer` is refused.
//! 2. `add_curve_keys` trusts the newcomer's key: a fresh connection is admitted.
//! 3. `remove_curve_keys` revokes it: the next fresh connection is refused. The connection
//!    made in step 2 stays up, because this server is a plain `REP` socket and revocation acts
//!    on new handshakes; a server built with `ServerSocket::build_sessions` would end it too
//!    (see `actix_zap::sessions`).
//!
//! Socket work that waits (connecting, asking) runs off the actix thread, which has to stay
//! free to answer libzmq's authentication requests.

use actix_zap::certs::Certificate;
use actix_zap::client::{HandshakeCheck, HandshakeOutcome};
use actix_zap::keys::CurvePublicKey;
use actix_zap::policy::CurveEntry;
use actix_zap::{Authenticator, ServerSocket};

type Result<T, E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

/// `me`'s key, named `name` in the `User-Id` the server sees (the default is its Z85 text).
fn named(me: &Certificate, name: &str) -> CurveEntry {
    CurveEntry {
        user_id: Some(name.to_owned()),
        ..CurveEntry::new(me.public_key)
    }
}

/// Connects a CURVE client with `me`'s keys to the server whose public key is `server`, and
/// says how its handshake ended. The check runs on a thread of its own.
async fn connect(
    context: &zmq::Context,
    endpoint: &str,
    server: &CurvePublicKey,
    me: &Certificate,
) -> Result<(HandshakeOutcome, zmq::Socket)> {
    let secret = me.secret_key.as_ref().ok_or("no client secret key")?;
    let socket = context.socket(zmq::REQ)?;
    socket.set_linger(0)?;
    socket.set_rcvtimeo(10_000)?;
    socket.set_curve_serverkey(server.as_bytes())?;
    socket.set_curve_publickey(me.public_key.as_bytes())?;
    socket.set_curve_secretkey(secret.as_bytes())?;
    let check = HandshakeCheck::new(endpoint);
    let (socket, report) = check.run_async(context.clone(), socket).await;
    Ok((report?.outcome, socket.ok_or("the check lost the socket")?))
}

/// Says "Hello" on an established connection and returns the answer, on the blocking pool.
async fn ask(socket: zmq::Socket) -> Result<(String, zmq::Socket)> {
    tokio::task::spawn_blocking(move || {
        socket.send("Hello", 0)?;
        let reply = socket
            .recv_string(0)?
            .map_err(|_| "a reply that is not UTF-8")?;
        Ok((reply, socket))
    })
    .await?
}

/// Connects `who`, who must get in, and asks once; returns the connection.
async fn admitted(
    context: &zmq::Context,
    endpoint: &str,
    server: &CurvePublicKey,
    who: (&str, &Certificate),
) -> Result<zmq::Socket> {
    let (outcome, socket) = connect(context, endpoint, server, who.1).await?;
    if outcome != HandshakeOutcome::Admitted {
        return Err(format!("{} should be admitted: {outcome}", who.0).into());
    }
    let (reply, socket) = ask(socket).await?;
    println!(
        "   admitted: {} connects, says \"Hello\", gets {reply:?}",
        who.0
    );
    Ok(socket)
}

/// Connects `who`, who must be refused by the authenticator.
async fn refused(
    context: &zmq::Context,
    endpoint: &str,
    server: &CurvePublicKey,
    who: (&str, &Certificate),
) -> Result<()> {
    match connect(context, endpoint, server, who.1).await?.0 {
        HandshakeOutcome::Refused { status } => {
            println!(
                "   refused: {} connects and is refused (ZAP status {status})",
                who.0
            );
            Ok(())
        }
        other => Err(format!("{} should be refused: {other}", who.0).into()),
    }
}

/// Answers every request with "World, " and the client's `User-Id`, on a thread of its own.
fn serve(socket: zmq::Socket) {
    std::thread::spawn(move || loop {
        let Ok(mut request) = socket.recv_msg(0) else {
            return;
        };
        let reply = format!("World, {}", request.gets("User-Id").unwrap_or("?"));
        if socket.send(reply.as_str(), 0).is_err() {
            return;
        }
    });
}

#[actix::main]
async fn main() -> Result<()> {
    env_logger::init();
    let server_cert = Certificate::generate()?;
    let steady = Certificate::generate()?;
    let newcomer = Certificate::generate()?;

    let context = zmq::Context::new();
    let auth = Authenticator::start(&context)?;
    auth.allow(["127.0.0.1"]).await?;
    auth.add_curve_keys("global", [named(&steady, "steady")])
        .await?;

    let secret = server_cert
        .secret_key
        .clone()
        .ok_or("no server secret key")?;
    let socket = ServerSocket::curve("global", secret).build(&context, zmq::REP)?;
    socket.bind("tcp://127.0.0.1:0")?;
    let endpoint = socket
        .get_last_endpoint()?
        .map_err(|_| "endpoint not UTF-8")?;
    serve(socket);
    let (ctx, at, key) = (&context, endpoint.as_str(), &server_cert.public_key);
    println!("Reconfigure: one running CURVE server; the application changes who may connect.");

    println!("1. Only steady's key is trusted.");
    let steady_link = admitted(ctx, at, key, ("steady", &steady)).await?;
    refused(ctx, at, key, ("newcomer", &newcomer)).await?;

    println!("2. The application trusts newcomer's key: auth.add_curve_keys(\"global\", [..]).");
    let added = auth
        .add_curve_keys("global", [named(&newcomer, "newcomer")])
        .await?;
    println!("   {added} key added; steady's entry is untouched");
    let newcomer_link = admitted(ctx, at, key, ("newcomer", &newcomer)).await?;
    let (reply, steady_link) = ask(steady_link).await?;
    println!("   steady, still connected, gets {reply:?}");

    println!("3. The application revokes it: auth.remove_curve_keys(\"global\", [..]).");
    let removed = auth
        .remove_curve_keys("global", [newcomer.public_key])
        .await?;
    println!("   {removed}");
    refused(ctx, at, key, ("newcomer (a fresh connection)", &newcomer)).await?;
    let (reply, _newcomer_link) = ask(newcomer_link).await?;
    println!(
        "   newcomer's connection from step 2 is still up and gets {reply:?}:\n   \
         revocation acts on new handshakes only (a session socket would end it)"
    );
    let (reply, _steady_link) = ask(steady_link).await?;
    println!("   steady, still connected, gets {reply:?}");

    auth.stop().await;
    println!("Reconfigure OK: no restart; admitted, refused and revoked as told.");
    Ok(())
}
