//! Ironhouse: CURVE encryption, and only clients whose public key the server trusts.
//!
//! Run it with `cargo run --example ironhouse`.
//!
//! At start it creates certificates in a temporary directory, the way pyzmq's
//! `generate_certificates` does: one for the server, one for a trusted client and one for a
//! stranger. Only the trusted client's public certificate goes into `trusted/`, the
//! directory the authenticator loads. The trusted client gets an answer; the stranger is
//! refused by the authenticator before any message of it can reach the server.
//!
//! This is an actix application: the authenticator runs on the actix thread, so the
//! blocking socket work runs elsewhere (the server on a thread of its own, the clients'
//! handshake checks on theirs, the client's request on tokio's blocking pool). See
//! `reconfigure` for trusting and revoking keys at runtime.

use actix_zap::certs::{create_certificates, load_certificate, Certificate, Flavour};
use actix_zap::client::{HandshakeCheck, HandshakeOutcome};
use actix_zap::keys::CurvePublicKey;
use actix_zap::{Authenticator, ServerSocket};

type Result<T, E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

/// Connects a CURVE client with `me`'s keys to the server whose public key is `server`, and
/// says how its handshake ended (the check runs on a thread of its own).
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

/// Answers every request with "World", on a thread of its own.
fn serve(socket: zmq::Socket) {
    std::thread::spawn(move || loop {
        let Ok(mut request) = socket.recv_msg(0) else {
            return;
        };
        // For CURVE clients, User-Id is the client's public key (Z85 text).
        println!(
            "    [server] got \"Hello\" from User-Id {}",
            request.gets("User-Id").unwrap_or("?")
        );
        if socket.send("World", 0).is_err() {
            return;
        }
    });
}

#[actix::main]
async fn main() -> Result<()> {
    env_logger::init();

    // Certificates: NAME.key (public) and NAME.key_secret (owner-only) for each party.
    // (Small file I/O before the authenticator starts; nothing waits on this thread yet.)
    let dir = tempfile::tempdir()?;
    let (keys, trusted) = (dir.path().join("certificates"), dir.path().join("trusted"));
    std::fs::create_dir(&keys)?;
    std::fs::create_dir(&trusted)?;
    let (_, server_secret_file) = create_certificates(&keys, "server", &[], Flavour::Pyzmq)?;
    let (client_public_file, client_secret_file) =
        create_certificates(&keys, "client", &[], Flavour::Pyzmq)?;
    let (_, stranger_secret_file) = create_certificates(&keys, "stranger", &[], Flavour::Pyzmq)?;
    std::fs::copy(&client_public_file, trusted.join("client.key"))?;
    let server = load_certificate(&server_secret_file)?;
    let client = load_certificate(&client_secret_file)?;
    let stranger = load_certificate(&stranger_secret_file)?;

    println!("Ironhouse: CURVE encryption, and only clients with a trusted key get in.");
    println!("  certificates created in {}", keys.display());

    // The authenticator, on the same context as the server socket.
    let context = zmq::Context::new();
    let auth = Authenticator::start(&context)?;
    auth.allow(["127.0.0.1"]).await?;
    let report = auth.configure_curve("*", &trusted).await?;
    println!(
        "  the authenticator trusts {} key(s), loaded from {}",
        report.keys,
        trusted.display()
    );

    // A hardened CURVE server: domain, keys and ZAP enforcement set before bind.
    let server_secret = server.secret_key.clone().ok_or("no server secret key")?;
    let socket = ServerSocket::curve("global", server_secret).build(&context, zmq::REP)?;
    socket.bind("tcp://127.0.0.1:0")?;
    let endpoint = socket
        .get_last_endpoint()?
        .map_err(|_| "endpoint not UTF-8")?;
    serve(socket);

    println!(
        "  the trusted client (key {}) says \"Hello\":",
        client.public_key.to_z85()
    );
    match connect(&context, &endpoint, &server.public_key, &client).await? {
        (HandshakeOutcome::Admitted, socket) => {
            let reply = tokio::task::spawn_blocking(move || -> Result<String> {
                socket.send("Hello", 0)?;
                Ok(socket.recv_string(0)?.map_err(|_| "reply not UTF-8")?)
            })
            .await??;
            println!("    admitted: the server answered {reply:?}");
        }
        (other, _) => return Err(format!("the trusted client should be admitted: {other}").into()),
    }

    println!(
        "  a stranger (key {}) says \"Hello\":",
        stranger.public_key.to_z85()
    );
    match connect(&context, &endpoint, &server.public_key, &stranger)
        .await?
        .0
    {
        HandshakeOutcome::Refused { status } => println!(
            "    refused: its key is not trusted, so the authenticator said no (ZAP status \
             {status}); the server never sees a message of it"
        ),
        other => return Err(format!("the stranger should be refused: {other}").into()),
    }

    auth.stop().await;
    println!("Ironhouse OK: the trusted client got in, the stranger did not.");
    Ok(())
}
