//! Ironhouse: CURVE encryption, and only clients whose public key the server trusts.
//!
//! Run it with `cargo run --example ironhouse`.
//!
//! At start it creates certificates in a temporary directory, the way pyzmq's
//! `generate_certificates` does: one for the server, one for a trusted client and one for a
//! stranger. Only the trusted client's public certificate goes into `trusted/`, the
//! directory the authenticator loads. The trusted client gets an answer; the stranger is
//! refused by the authenticator before its message reaches the server.
//!
//! This is an actix application: the authenticator runs on the actix thread, so the
//! blocking socket work runs elsewhere (the server on its own thread, the clients on
//! tokio's blocking pool). See `reconfigure` for changing the trusted keys at runtime.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;

use actix_zap::certs::{create_certificates, load_certificate, Flavour};
use actix_zap::{Authenticator, ServerSocket};
use support::{curve_client, fail, off_thread, Outcome, Server};

#[actix::main]
async fn main() -> support::Result<()> {
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
    let server_socket = Arc::new(Server::start(&context, socket, |request| {
        // For CURVE clients, User-Id is the client's public key (Z85 text).
        let user = request.gets("User-Id").unwrap_or("?").to_owned();
        println!("    [server] got \"Hello\" from User-Id {user}");
        "World".into()
    })?);

    // Making sockets does not block; connecting and waiting for answers runs off_thread.
    println!(
        "  the trusted client (key {}) says \"Hello\":",
        client.public_key.to_z85()
    );
    let socket = curve_client(&context, &server.public_key, &client)?;
    let srv = server_socket.clone();
    match off_thread(move || srv.attempt(socket)).await {
        Outcome::Admitted { reply, .. } => {
            println!("    admitted: the server answered {reply:?}")
        }
        other => fail(format!(
            "the trusted client should be admitted, got {other:?}"
        )),
    }

    println!(
        "  a stranger (key {}) says \"Hello\":",
        stranger.public_key.to_z85()
    );
    let socket = curve_client(&context, &server.public_key, &stranger)?;
    let srv = server_socket.clone();
    match off_thread(move || srv.attempt(socket)).await {
        Outcome::Refused(status) => println!(
            "    refused: its key is not trusted, so the authenticator said no (ZAP status \
             {status}); the server never saw its message"
        ),
        other => fail(format!("the stranger should be refused, got {other:?}")),
    }

    // Stop order: server socket, then the authenticator, then the context.
    drop(server_socket);
    auth.stop().await;
    drop(context);
    println!("Ironhouse OK: the trusted client got in, the stranger did not.");
    Ok(())
}
