//! Reconfigure: an actix application changes, at runtime, which CURVE keys its running
//! server admits — by sending typed messages to the authenticator's policy actor. Nothing
//! is restarted, and a steady client is served between every step.
//!
//! Run it with `cargo run --example reconfigure`.
//!
//! 1. Only `steady` is trusted: the `newcomer` is refused.
//! 2. `ConfigureCurve` adds the newcomer's key: a fresh connection is admitted.
//! 3. `ConfigureCurve` without that key revokes it: the next fresh connection is refused,
//!    while the connection made in step 2 stays up. Revocation acts on new handshakes only.
//!
//! Socket work that waits (connecting, asking) runs off the actix thread, which has to stay
//! free to answer libzmq's authentication requests.

#[path = "support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::sync::Arc;

use actix_zap::certs::{CertStore, Certificate};
use actix_zap::keys::CurvePublicKey;
use actix_zap::messages::{Allow, ConfigureCurve};
use actix_zap::zap::Metadata;
use actix_zap::{Authenticator, ServerSocket};
use support::{curve_client, fail, off_thread, Connection, Outcome, Server};

/// The message that makes `global` admit exactly these keys.
fn trust(certs: &[&Certificate]) -> ConfigureCurve {
    let mut store = CertStore::new();
    for cert in certs {
        store.insert(cert.public_key, Metadata::empty());
    }
    ConfigureCurve::keys("global", store)
}

/// Runs the fresh handshake of a new client connection, off the actix thread.
async fn connect(server: &Arc<Server>, socket: zmq::Socket) -> Outcome {
    let server = server.clone();
    off_thread(move || server.attempt(socket)).await
}

/// Asks on an established connection, off the actix thread.
async fn ask(connection: &Connection) -> String {
    let connection = connection.clone();
    off_thread(move || connection.ask("Hello"))
        .await
        .unwrap_or_else(|| fail("no answer on an established connection"))
}

fn expect_admitted(who: &str, outcome: Outcome) -> Connection {
    match outcome {
        Outcome::Admitted { reply, connection } => {
            println!("   admitted: {who} connects, says \"Hello\", gets {reply:?}");
            connection
        }
        other => fail(format!("{who} should be admitted, got {other:?}")),
    }
}

fn expect_refused(who: &str, outcome: Outcome) {
    match outcome {
        Outcome::Refused(status) => {
            println!("   refused: {who} connects and is refused (ZAP status {status})")
        }
        other => fail(format!("{who} should be refused, got {other:?}")),
    }
}

#[actix::main]
async fn main() -> support::Result<()> {
    env_logger::init();
    let server_cert = Certificate::generate()?;
    let steady = Certificate::generate()?;
    let newcomer = Certificate::generate()?;

    let context = zmq::Context::new();
    let auth = Authenticator::start(&context)?;
    let policy = auth.policy();
    policy.send(Allow::new(["127.0.0.1"])?).await??;
    policy.send(trust(&[&steady])).await??;
    // Name the clients in User-Id (the default is the key's Z85 text).
    let names = HashMap::from([
        (steady.public_key, "steady"),
        (newcomer.public_key, "newcomer"),
    ]);
    let name = move |key: &CurvePublicKey| names.get(key).map_or("?", |n| n).to_owned();
    auth.set_curve_user_id(name).await?;

    let secret = server_cert
        .secret_key
        .clone()
        .ok_or("no server secret key")?;
    let socket = ServerSocket::curve("global", secret).build(&context, zmq::REP)?;
    let server = Arc::new(Server::start(&context, socket, |request| {
        format!("World, {}", request.gets("User-Id").unwrap_or("?"))
    })?);
    let client = |me: &Certificate| curve_client(&context, &server_cert.public_key, me);
    println!("Reconfigure: one running CURVE server; the application changes who may connect.");

    println!("1. Only steady's key is trusted.");
    let steady_link = expect_admitted("steady", connect(&server, client(&steady)?).await);
    expect_refused("newcomer", connect(&server, client(&newcomer)?).await);
    println!(
        "   steady, still connected, gets {:?}",
        ask(&steady_link).await
    );

    println!("2. The application sends ConfigureCurve {{ global: steady + newcomer }}.");
    let report = policy.send(trust(&[&steady, &newcomer])).await??;
    println!("   the policy now trusts {} keys", report.keys);
    let newcomer_link = expect_admitted("newcomer", connect(&server, client(&newcomer)?).await);
    println!(
        "   steady, still connected, gets {:?}",
        ask(&steady_link).await
    );

    println!("3. The application revokes newcomer: ConfigureCurve {{ global: steady }}.");
    policy.send(trust(&[&steady])).await??;
    expect_refused(
        "newcomer (a fresh connection)",
        connect(&server, client(&newcomer)?).await,
    );
    println!(
        "   newcomer's connection from step 2 is still up and gets {:?}:\n   \
         revocation acts on new handshakes only (close such connections yourself)",
        ask(&newcomer_link).await
    );
    println!(
        "   steady, still connected, gets {:?}",
        ask(&steady_link).await
    );

    // Stop order: client and server sockets, then the authenticator, then the context.
    drop((steady_link, newcomer_link, server));
    auth.stop().await;
    drop(context);
    println!("Reconfigure OK: no restart; admitted, refused and revoked as told.");
    Ok(())
}
