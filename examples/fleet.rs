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

use std::time::{Duration, Instant};

use actix_zap::certs::Certificate;
use actix_zap::client::{HandshakeCheck, HandshakeOutcome};
use actix_zap::postgres::{NewKey, Position, PostgresSource, SourceHandle, Store};
use actix_zap::{ServerSocket, ThreadAuthenticator};
use futures::executor::block_on;

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

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
    server: zmq::Socket,
    endpoint: String,
    context: zmq::Context,
}

impl Member {
    /// Waits until the change at `position` is in force on this server.
    fn at(&self, position: Position) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        match block_on(self.source.synced(position, deadline)) {
            Ok(_) => Ok(()),
            Err(error) => Err(format!("{}: {position} not in force: {error}", self.name).into()),
        }
    }

    /// Connects a CURVE client with `me`'s keys and says how its handshake ended; an
    /// admitted client says "Hello" and the answer is returned too.
    fn attempt(
        &self,
        server_cert: &Certificate,
        me: &Certificate,
    ) -> Result<(HandshakeOutcome, Option<String>)> {
        let mut client = self.context.socket(zmq::REQ)?;
        client.set_linger(0)?;
        client.set_rcvtimeo(10_000)?;
        client.set_curve_serverkey(server_cert.public_key.as_bytes())?;
        client.set_curve_publickey(me.public_key.as_bytes())?;
        client.set_curve_secretkey(me.secret_key.as_ref().ok_or("no secret key")?.as_bytes())?;
        let outcome = HandshakeCheck::new(&self.endpoint)
            .run(&self.context, &mut client)?
            .outcome;
        if outcome != HandshakeOutcome::Admitted {
            return Ok((outcome, None));
        }
        client.send("Hello", 0)?;
        let mut request = self.server.recv_msg(0)?;
        let answer = format!("Hello, {}", request.gets("User-Id").unwrap_or("?"));
        self.server.send(answer.as_str(), 0)?;
        let reply = client.recv_string(0)?.map_err(|_| "reply not UTF-8")?;
        Ok((outcome, Some(reply)))
    }
}

fn main() -> Result<()> {
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
        .map_err(|e| {
            format!(
                "cannot reach PostgreSQL with {conninfo:?} ({e}): start PostgreSQL on \
                 127.0.0.1:5432 with trust authentication, or set FLEET_DATABASE"
            )
        })?;
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
        let source = auth.serve(source)?;
        let secret = server_cert.secret_key.clone().ok_or("no secret key")?;
        let server = ServerSocket::curve("fleet", secret).build(&context, zmq::REP)?;
        server.set_rcvtimeo(10_000)?;
        server.bind("tcp://127.0.0.1:0")?;
        let endpoint = server
            .get_last_endpoint()?
            .map_err(|_| "endpoint not UTF-8")?;
        fleet.push(Member {
            name,
            auth,
            source,
            server,
            endpoint,
            context,
        });
    }

    for member in &fleet {
        member.at(added)?;
        match member.attempt(&server_cert, &client_cert)? {
            (HandshakeOutcome::Admitted, Some(reply)) => {
                println!("  {}: admitted, the server answered {reply:?}", member.name)
            }
            (other, _) => {
                return Err(format!("{}: expected admission: {other}", member.name).into())
            }
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
        match member.attempt(&server_cert, &client_cert)?.0 {
            HandshakeOutcome::Refused { status } => {
                println!("  {}: refused (ZAP status {status})", member.name)
            }
            other => return Err(format!("{}: expected a refusal: {other}", member.name).into()),
        }
    }

    for member in fleet {
        member.auth.stop();
    }
    println!("Fleet OK: admitted by all three, then refused by all three after one change.");
    Ok(())
}
