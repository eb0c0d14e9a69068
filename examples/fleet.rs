//! Fleet: three servers, one credential store on PostgreSQL. A client is admitted by all
//! three; one command disables its key, and all three refuse it.
//!
//! Run it with `cargo run --features postgres --example fleet` while PostgreSQL runs at
//! 127.0.0.1:5432 with trust authentication and a database `test` (or set FLEET_DATABASE to
//! a libpq connection string). It works in a schema of its own and drops it at the end.
//!
//! Each server has its own zmq context and its own authenticator (here `ThreadAuthenticator`s,
//! as three separate processes would); each follows the store with a `PostgresSource`. The
//! changes are written as `zapctl db` writes them (`Store::add_key`, `Store::disable_key`),
//! and each answers its position in the store, which `SourceHandle::synced` waits for.

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use actix_zap::certs::Certificate;
use actix_zap::postgres::{NewKey, Position, PostgresSource, SourceHandle, Store};
use actix_zap::{ServerSocket, ThreadAuthenticator};
use futures::executor::block_on;
use support::{curve_client, fail, Outcome, Server};

/// The example's own connection, to write to the store as `zapctl db` does.
struct Admin {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
    store: Store,
}

impl Drop for Admin {
    fn drop(&mut self) {
        let _ = self.runtime.block_on(self.store.drop_schema(&self.client));
    }
}

/// One server of the fleet.
struct Member {
    name: String,
    auth: ThreadAuthenticator,
    source: SourceHandle,
    server: Server,
    context: zmq::Context,
}

impl Member {
    /// Waits until the change at `position` is in force on this server.
    fn at(&self, position: Position) -> support::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        if let Err(error) = block_on(self.source.synced(position, deadline)) {
            fail(format!("{}: {position} not in force: {error}", self.name));
        }
        Ok(())
    }
}

fn main() -> support::Result<()> {
    env_logger::init();
    let conninfo = std::env::var("FLEET_DATABASE")
        .unwrap_or_else(|_| "host=127.0.0.1 user=postgres dbname=test".into());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let store = Store::new(&format!("fleet_example_{}", std::process::id()))?;
    let mut client = runtime
        .block_on(async {
            let (client, connection) =
                tokio_postgres::connect(&conninfo, tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            Ok::<_, tokio_postgres::Error>(client)
        })
        .unwrap_or_else(|e| {
            fail(format!(
                "cannot reach PostgreSQL with {conninfo:?} ({e}): start PostgreSQL on \
                 127.0.0.1:5432 with trust authentication, or set FLEET_DATABASE"
            ))
        });
    runtime.block_on(store.migrate(&mut client))?;
    let mut admin = Admin {
        runtime,
        client,
        store: store.clone(),
    };
    println!(
        "Fleet: three servers follow one credential store ({}).",
        store.schema()
    );

    let server_cert = Certificate::generate()?;
    let client_cert = Certificate::generate()?;
    let key = client_cert.public_key.to_z85();
    let alice = NewKey::new(client_cert.public_key).user_id("alice");
    let added = (admin.runtime).block_on(store.add_key(&mut admin.client, "fleet", &alice))?;
    println!("  stored the client's key {key} for domain \"fleet\" (User-Id alice)");

    let mut fleet = Vec::new();
    for n in 1..=3 {
        let context = zmq::Context::new();
        let auth = ThreadAuthenticator::start(&context)?;
        let name = format!("server-{n}");
        let source = PostgresSource::new(&conninfo, ["fleet"])?
            .store(store.clone())
            .named(name.clone());
        let source = block_on(auth.handle().serve(source))?;
        let secret = server_cert.secret_key.clone().ok_or("no secret key")?;
        let socket = ServerSocket::curve("fleet", secret).build(&context, zmq::REP)?;
        let server = Server::start(&context, socket, |request| {
            format!("Hello, {}", request.gets("User-Id").unwrap_or("?"))
        })?;
        fleet.push(Member {
            name,
            auth,
            source,
            server,
            context,
        });
    }

    for member in &fleet {
        member.at(added)?;
        let socket = curve_client(&member.context, &server_cert.public_key, &client_cert)?;
        match member.server.attempt(socket) {
            Outcome::Admitted { reply, .. } => {
                println!("  {}: admitted, the server answered {reply:?}", member.name)
            }
            other => fail(format!(
                "{}: expected admission, got {other:?}",
                member.name
            )),
        }
    }

    println!("  one command: zapctl db key disable fleet {key}");
    let disabled = (admin.runtime).block_on(store.disable_key(
        &mut admin.client,
        "fleet",
        &client_cert.public_key,
    ))?;
    println!("  ({disabled})");
    for member in &fleet {
        member.at(disabled)?;
        let socket = curve_client(&member.context, &server_cert.public_key, &client_cert)?;
        match member.server.attempt(socket) {
            Outcome::Refused(status) => {
                println!("  {}: refused (ZAP status {status})", member.name)
            }
            other => fail(format!(
                "{}: expected a refusal, got {other:?}",
                member.name
            )),
        }
    }

    for member in fleet {
        member.server.stop();
        member.auth.stop();
    }
    println!("Fleet OK: admitted by all three, then refused by all three after one change.");
    Ok(())
}
