//! Credentials from a database: a credentials provider decides on CURVE clients by looking
//! their public key up in a SQLite table, so keys can be added, changed or disabled without
//! touching the authenticator.
//!
//! Run it with `cargo run --example credentials_db`.
//!
//! The table holds `(domain, public_key (Z85), user_id, enabled, metadata)`. An enabled row
//! admits the key with that `User-Id` and metadata (e.g. `Role=admin`), which the server
//! application reads from each message. The example shows alice admitted, an unknown key
//! refused, and alice refused on her next connection after an `UPDATE` disables her row —
//! while the server keeps running.

#[path = "support/mod.rs"]
mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};

use actix_zap::certs::Certificate;
use actix_zap::keys::CurvePublicKey;
use actix_zap::provider::{Admission, CurveVerdict, Provider, ProviderError};
use actix_zap::zap::Metadata;
use actix_zap::{Authenticator, ServerSocket};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use support::{curve_client, fail, off_thread, Outcome, Server};

const SCHEMA: &str = "CREATE TABLE credentials (
    domain     TEXT NOT NULL,
    public_key TEXT NOT NULL,      -- Z85, 40 characters
    user_id    TEXT NOT NULL,
    enabled    INTEGER NOT NULL,
    metadata   TEXT,               -- e.g. 'Role=admin;Team=ops', or NULL
    PRIMARY KEY (domain, public_key)
)";

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

/// The provider: one query per CURVE handshake.
///
/// A synchronous provider runs on the authenticator's bounded worker pool, never on the
/// actix thread, so the blocking rusqlite call is fine here. The pool may call it from
/// several threads, so it must be `Sync`; `rusqlite::Connection` is `Send` but not `Sync`,
/// hence one connection behind a `Mutex`. The query is a primary-key lookup taking
/// microseconds, so serialising it costs nothing, whereas opening a connection per call
/// would reopen the file for every handshake. (A busy server would use a pool of
/// connections, e.g. r2d2.)
fn database_provider(path: &Path) -> rusqlite::Result<Provider> {
    let db = Mutex::new(Connection::open(path)?);
    Ok(Provider::from_fn(
        move |domain: &str, key: &CurvePublicKey| {
            let db = db.lock().map_err(|_| "database connection poisoned")?;
            let row = db
                .query_row(
                    "SELECT user_id, enabled, metadata FROM credentials
                 WHERE domain = ?1 AND public_key = ?2",
                    params![domain, key.to_z85()],
                    |row| {
                        let user_id: String = row.get(0)?;
                        let enabled: bool = row.get(1)?;
                        let metadata: Option<String> = row.get(2)?;
                        Ok((user_id, enabled, metadata))
                    },
                )
                .optional()?;
            match row {
                Some((user_id, true, metadata)) => Ok(CurveVerdict::Admit(Admission {
                    user_id: Some(user_id),
                    metadata: parse_metadata(metadata.as_deref())?,
                })),
                // Unknown or disabled: `400 Unknown key`.
                _ => Ok(CurveVerdict::Refuse),
            }
        },
    ))
}

/// Runs SQL on a connection of its own, off the actix thread (it blocks on file I/O).
async fn execute(path: &Path, sql: &'static str, args: Vec<String>) -> rusqlite::Result<usize> {
    let path = path.to_owned();
    off_thread(move || Connection::open(path)?.execute(sql, params_from_iter(args))).await
}

#[actix::main]
async fn main() -> support::Result<()> {
    env_logger::init();
    let server_cert = Certificate::generate()?;
    let alice = Certificate::generate()?;
    let mallory = Certificate::generate()?;

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("credentials.sqlite");
    let alice_key = alice.public_key.to_z85();
    execute(&path, SCHEMA, vec![]).await?;
    let insert = "INSERT INTO credentials VALUES ('global', ?1, 'alice', 1, 'Role=admin')";
    execute(&path, insert, vec![alice_key.clone()]).await?;

    let context = zmq::Context::new();
    let auth = Authenticator::start(&context)?;
    auth.allow(["127.0.0.1"]).await?;
    auth.configure_curve_callback("global", database_provider(&path)?)
        .await?;

    let secret = server_cert
        .secret_key
        .clone()
        .ok_or("no server secret key")?;
    let socket = ServerSocket::curve("global", secret).build(&context, zmq::REP)?;
    let server = Arc::new(Server::start(&context, socket, |request| {
        // What the server application sees: the provider's User-Id and metadata.
        let user = request.gets("User-Id").unwrap_or("?").to_owned();
        let role = request.gets("Role").unwrap_or("none").to_owned();
        format!("User-Id={user} Role={role}")
    })?);
    let attempt = |me: &Certificate| -> support::Result<_> {
        let socket = curve_client(&context, &server_cert.public_key, me)?;
        let server = server.clone();
        Ok(off_thread(move || server.attempt(socket)))
    };
    println!("Credentials database: CURVE keys looked up in SQLite at each handshake.");
    println!("  table: {}", path.display());

    match attempt(&alice)?.await {
        Outcome::Admitted { reply, .. } => {
            println!("  admitted: alice's key is enabled; the server application sees {reply}")
        }
        other => fail(format!("alice should be admitted, got {other:?}")),
    }

    match attempt(&mallory)?.await {
        Outcome::Refused(status) => {
            println!("  refused: a key not in the table (ZAP status {status})")
        }
        other => fail(format!("an unknown key should be refused, got {other:?}")),
    }

    let disable = "UPDATE credentials SET enabled = 0 WHERE public_key = ?1";
    let changed = execute(&path, disable, vec![alice_key]).await?;
    println!("  UPDATE credentials SET enabled = 0 for alice ({changed} row)");
    match attempt(&alice)?.await {
        Outcome::Refused(status) => println!(
            "  refused: alice's next connection, now that her row is disabled (ZAP status {status})"
        ),
        other => fail(format!("disabled alice should be refused, got {other:?}")),
    }

    // Stop order: sockets, then the authenticator, then the context.
    drop(server);
    auth.stop().await;
    drop(context);
    println!("Credentials database OK: the table decided every time, no restart needed.");
    Ok(())
}
