//! Credentials from a database: an asynchronous credentials provider decides on CURVE clients
//! by looking their public key up in a PostgreSQL table, so keys can be added, changed or
//! disabled without touching the authenticator.
//!
//! Run it with `cargo run --features postgres --example credentials_db` while PostgreSQL runs
//! at 127.0.0.1:5432 with trust authentication and a database `test` (or set
//! CREDENTIALS_DATABASE to a libpq connection string). Its table is a temporary one, gone when
//! the example's connection closes.
//!
//! The table holds `(domain, public_key (Z85), user_id, enabled, metadata)`. An enabled row
//! admits the key with that `User-Id` and metadata (e.g. `Role=admin`), which the server
//! application reads from each message. The example shows alice admitted, an unknown key
//! refused, and alice refused on her next connection after an `UPDATE` disables her row —
//! while the server keeps running.
//!
//! This is your own table and your own query, looked up at each handshake. For keys shared by
//! many servers and applied as they change (with revocation fan-out and fail-closed staleness),
//! the crate's store does the work: see the `fleet` example.

use std::sync::Arc;

use actix_zap::certs::Certificate;
use actix_zap::client::{HandshakeCheck, HandshakeOutcome};
use actix_zap::keys::CurvePublicKey;
use actix_zap::provider::{Admission, CurveVerdict, Provider, ProviderError};
use actix_zap::zap::Metadata;
use actix_zap::{Authenticator, ServerSocket};
use tokio_postgres::{Client, NoTls, Statement};

type Result<T, E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

/// Temporary: the session's own, dropped when its connection closes.
const SCHEMA: &str = "CREATE TEMPORARY TABLE credentials (
    domain     TEXT NOT NULL,
    public_key TEXT NOT NULL,      -- Z85, 40 characters
    user_id    TEXT NOT NULL,
    enabled    BOOLEAN NOT NULL,
    metadata   TEXT,               -- e.g. 'Role=admin;Team=ops', or NULL
    PRIMARY KEY (domain, public_key)
)";

const LOOKUP: &str = "SELECT user_id, enabled, metadata FROM credentials
                      WHERE domain = $1 AND public_key = $2";

/// Turns `Name=value;Name=value` into ZAP metadata.
fn parse_metadata(text: Option<&str>) -> Result<Metadata, ProviderError> {
    let pairs = text
        .unwrap_or_default()
        .split(';')
        .filter(|p| !p.trim().is_empty())
        .map(|p| p.split_once('=').ok_or("metadata entry without '='"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Metadata::from_pairs(pairs)?)
}

/// The provider: one query per CURVE handshake, prepared once.
///
/// An asynchronous provider's future is polled on the authenticator's thread; a query waiting
/// for the database blocks nothing (each handshake waits for its own answer, under the
/// provider deadline). `tokio_postgres::Client` is shared by reference counting and
/// pipelines concurrent queries over its one connection. (A busy server would use a pool of
/// connections, e.g. deadpool-postgres.)
fn database_provider(client: Arc<Client>, lookup: Statement) -> Provider {
    Provider::from_async_fn(move |domain: String, key| {
        let (client, lookup) = (Arc::clone(&client), lookup.clone());
        async move {
            let row = client.query_opt(&lookup, &[&domain, &key.to_z85()]).await?;
            let Some(row) = row else {
                return Ok(CurveVerdict::Refuse); // `400 Unknown key`
            };
            let (user_id, enabled): (String, bool) = (row.try_get(0)?, row.try_get(1)?);
            let metadata: Option<String> = row.try_get(2)?;
            if !enabled {
                return Ok(CurveVerdict::Refuse);
            }
            Ok(CurveVerdict::Admit(Admission {
                user_id: Some(user_id),
                metadata: parse_metadata(metadata.as_deref())?,
            }))
        }
    })
}

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

/// Answers every request with what the server application sees of its client: the
/// provider's `User-Id` and `Role` metadata. On a thread of its own.
fn serve(socket: zmq::Socket) {
    std::thread::spawn(move || loop {
        let Ok(mut request) = socket.recv_msg(0) else {
            return;
        };
        let user = request.gets("User-Id").unwrap_or("?").to_owned();
        let role = request.gets("Role").unwrap_or("none").to_owned();
        if socket
            .send(format!("User-Id={user} Role={role}").as_str(), 0)
            .is_err()
        {
            return;
        }
    });
}

/// Says "Hello" on an admitted client and returns the answer, on the blocking pool.
async fn ask(socket: zmq::Socket) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        socket.send("Hello", 0)?;
        Ok(socket
            .recv_string(0)?
            .map_err(|_| "a reply that is not UTF-8")?)
    })
    .await?
}

#[actix::main]
async fn main() -> Result<()> {
    env_logger::init();
    let conninfo = std::env::var("CREDENTIALS_DATABASE")
        .unwrap_or_else(|_| "host=127.0.0.1 user=postgres dbname=test".into());
    let (client, connection) = match tokio_postgres::connect(&conninfo, NoTls).await {
        Ok(connected) => connected,
        Err(e) => {
            return Err(format!(
                "cannot reach PostgreSQL with {conninfo:?} ({e}): start PostgreSQL on \
                 127.0.0.1:5432 with trust authentication, or set CREDENTIALS_DATABASE"
            )
            .into())
        }
    };
    // The connection does the I/O; it runs on this thread, beside the authenticator.
    actix::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("database connection: {e}");
        }
    });
    let client = Arc::new(client);

    let server_cert = Certificate::generate()?;
    let alice = Certificate::generate()?;
    let mallory = Certificate::generate()?;
    let alice_key = alice.public_key.to_z85();
    client.batch_execute(SCHEMA).await?;
    client
        .execute(
            "INSERT INTO credentials VALUES ('global', $1, 'alice', true, 'Role=admin')",
            &[&alice_key],
        )
        .await?;

    let context = zmq::Context::new();
    let auth = Authenticator::start(&context)?;
    auth.allow(["127.0.0.1"]).await?;
    let lookup = client.prepare(LOOKUP).await?;
    auth.configure_curve_callback("global", database_provider(Arc::clone(&client), lookup))
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
    let server_key = &server_cert.public_key;
    println!("Credentials database: CURVE keys looked up in PostgreSQL at each handshake.");
    println!("  database: {conninfo}, table pg_temp.credentials");

    match connect(&context, &endpoint, server_key, &alice).await? {
        (HandshakeOutcome::Admitted, socket) => println!(
            "  admitted: alice's key is enabled; the server application sees {}",
            ask(socket).await?
        ),
        (other, _) => return Err(format!("alice should be admitted: {other}").into()),
    }

    match connect(&context, &endpoint, server_key, &mallory).await?.0 {
        HandshakeOutcome::Refused { status } => {
            println!("  refused: a key not in the table (ZAP status {status})")
        }
        other => return Err(format!("an unknown key should be refused: {other}").into()),
    }

    let disable = "UPDATE credentials SET enabled = false WHERE public_key = $1";
    let changed = client.execute(disable, &[&alice_key]).await?;
    println!("  UPDATE credentials SET enabled = false for alice ({changed} row)");
    match connect(&context, &endpoint, server_key, &alice).await?.0 {
        HandshakeOutcome::Refused { status } => println!(
            "  refused: alice's next connection, now that her row is disabled (ZAP status {status})"
        ),
        other => return Err(format!("disabled alice should be refused: {other}").into()),
    }

    auth.stop().await;
    println!("Credentials database OK: the table decided every time, no restart needed.");
    Ok(())
}
