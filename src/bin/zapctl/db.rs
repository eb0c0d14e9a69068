//! `zapctl db`: manage the PostgreSQL credential store that authenticators follow. Every
//! command is one transaction; the followers see its change when it commits.

use std::io::BufRead as _;
use std::path::Path;
use std::time::Duration;

use actix_zap::certs::load_certificate;
use actix_zap::keys::CurvePublicKey;
use actix_zap::policy::HashedPassword;
use actix_zap::postgres::{Database, SslMode, Store, StoreError};
use clap::{Args, Subcommand};
use futures::StreamExt as _;
use tokio_postgres::Client;

/// Exit code when the database refused or the thing asked for is not there.
const FAILED: u8 = 1;

/// The connection string when neither --database nor ZAPCTL_DATABASE gives one.
const DEFAULT_DATABASE: &str = "host=127.0.0.1 user=postgres dbname=postgres";

/// The exit codes of `zapctl db`.
pub const DB_EXIT_CODES: &str = "\
Exit codes: 0 success; 1 the database could not be reached or refused, or the key or user
is not there (or already is); 2 usage error (a connection string that does not parse too).
The connection string comes from --database, else ZAPCTL_DATABASE, else
\"host=127.0.0.1 user=postgres dbname=postgres\": the database named postgres, unless you
give dbname=... Every command prints the database it used (host, port, user, dbname; never
the password) and the schema.
TLS: across a network add sslmode=verify-full sslrootcert=FILE (FILE: the root certificate
the server's chains to; the server's certificate must name host=...; add hostaddr=ADDRESS to
connect to an address without looking the name up). sslmode=verify-ca checks the chain but
not the name; sslmode=require encrypts but checks nothing (a warning says so); prefer,
allow and disable use no TLS. Passwords in the string are never printed.
Every statement may run at most --timeout on the server (statement_timeout); zapctl waits
at most --timeout for the connection, and --timeout and 1 s for the command's answers.";

#[derive(Debug, Args)]
pub struct DbArgs {
    /// libpq connection string, e.g. "host=db user=zap dbname=zap sslmode=verify-full
    /// sslrootcert=root.pem" [env: ZAPCTL_DATABASE] [default: host=127.0.0.1 user=postgres
    /// dbname=postgres]
    #[arg(long, global = true, value_name = "CONN")]
    database: Option<String>,
    /// The store's schema (its NOTIFY channel is SCHEMA_changes)
    #[arg(long, global = true, value_name = "NAME", default_value = "actix_zap")]
    schema: String,
    /// Seconds a statement may run on the server, and zapctl waits for an answer
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 30.0,
          value_parser = parse_timeout)]
    timeout: f64,
    #[command(subcommand)]
    command: DbCommand,
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Create the schema or bring it to this version (safe to run again)
    Migrate,
    /// Add, disable, enable or remove CURVE public keys
    #[command(subcommand)]
    Key(KeyCommand),
    /// Add, disable, enable or remove PLAIN users (passwords stored as argon2id hashes)
    #[command(subcommand)]
    User(UserCommand),
    /// List a domain's keys and users, enabled or not
    List {
        /// The ZAP domain
        domain: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Admit a key in DOMAIN (from a NAME.key certificate file, or Z85 text)
    Add {
        /// The ZAP domain
        domain: String,
        /// A public certificate file (pyzmq or CZMQ layout) or the key's 40-character Z85 text
        #[arg(allow_hyphen_values = true)]
        key: String,
        /// The User-Id servers see for this key (default: the key's Z85 text)
        #[arg(long, value_name = "ID")]
        user_id: Option<String>,
        /// Metadata for the 200 reply, e.g. --meta role=frontend (repeatable)
        #[arg(long = "meta", value_name = "k=v", value_parser = parse_meta)]
        meta: Vec<(String, String)>,
        /// Refuse the key from this instant on, e.g. "2027-01-01 00:00+00"
        #[arg(long, value_name = "TIMESTAMP")]
        expires: Option<String>,
    },
    /// Refuse a key without forgetting it
    Disable(KeyRef),
    /// Admit a disabled key again
    Enable(KeyRef),
    /// Forget a key
    Remove(KeyRef),
}

#[derive(Debug, Args)]
struct KeyRef {
    /// The ZAP domain
    domain: String,
    /// A public certificate file or the key's Z85 text
    #[arg(allow_hyphen_values = true)]
    key: String,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a user (or set a new password); the password is read from ZAPCTL_PASSWORD, else
    /// from the first line of standard input, and stored as an argon2id hash
    Add {
        /// The ZAP domain
        domain: String,
        /// The username
        name: String,
    },
    /// Refuse a user without forgetting it
    Disable(UserRef),
    /// Admit a disabled user again
    Enable(UserRef),
    /// Forget a user
    Remove(UserRef),
}

#[derive(Debug, Args)]
struct UserRef {
    /// The ZAP domain
    domain: String,
    /// The username
    name: String,
}

fn parse_timeout(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if (0.001..=86_400.0).contains(&seconds) => Ok(seconds),
        _ => Err(format!(
            "{text:?} is not a number of seconds from 0.001 to 86400"
        )),
    }
}

fn parse_meta(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not NAME=VALUE")),
    }
}

pub fn run(args: DbArgs) -> u8 {
    let store = match Store::new(&args.schema) {
        Ok(store) => store,
        Err(error) => {
            eprintln!("zapctl db: {error}");
            return 2;
        }
    };
    let conn = args
        .database
        .or_else(|| std::env::var("ZAPCTL_DATABASE").ok())
        .unwrap_or_else(|| DEFAULT_DATABASE.into());
    // Errors name the database by host, port, user and dbname: never the string (its password).
    let database = match Database::new(&conn) {
        Ok(database) => database,
        Err(error) => {
            eprintln!("zapctl db: {error}; check --database or ZAPCTL_DATABASE");
            return 2;
        }
    };
    if database.ssl_mode() == SslMode::Require {
        eprintln!(
            "zapctl db: warning: sslmode=require encrypts without checking the server's \
             certificate: anyone on the way can read and change the session; use \
             sslmode=verify-full sslrootcert=FILE"
        );
    }
    let timeout = Duration::from_secs_f64(args.timeout);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("zapctl db: cannot start: {error}");
            return FAILED;
        }
    };
    // Inputs are checked before connecting: a usage error never touches the database.
    let command = match prepare(args.command) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("zapctl db: {error}");
            return 2;
        }
    };
    let local = tokio::task::LocalSet::new();
    let result = local.block_on(&runtime, async {
        let (mut client, messages) =
            database
                .connect("zapctl", timeout, timeout)
                .await
                .map_err(|e| {
                    format!("{e}; check --database or ZAPCTL_DATABASE, and that the server runs")
                })?;
        tokio::task::spawn_local(messages.for_each(|_| async {}));
        println!(
            "database {database} (sslmode {}), schema {}",
            database.ssl_mode(),
            store.schema()
        );
        // A deadline on the whole command bounds every round trip in it. It comes a second
        // after the server's statement_timeout, which cancels a statement with a clearer
        // error as long as the server can be reached.
        let deadline = timeout + Duration::from_secs(1);
        match tokio::time::timeout(deadline, execute(&mut client, &store, command)).await {
            Ok(done) => done,
            Err(_) => Err(format!(
                "{database}: no answer within {deadline:?} (--timeout and 1 s); a change is \
                 made only if its commit was answered: check with `zapctl db list DOMAIN`"
            )),
        }
    });
    match result {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("zapctl db: {error}");
            FAILED
        }
    }
}

/// A command with its inputs read and checked.
enum Prepared {
    Migrate,
    AddKey {
        domain: String,
        key: CurvePublicKey,
        user_id: Option<String>,
        meta: Vec<(String, String)>,
        expires: Option<String>,
    },
    SetKey {
        domain: String,
        key: CurvePublicKey,
        enabled: Option<bool>,
    },
    AddUser {
        domain: String,
        name: String,
        hash: HashedPassword,
    },
    SetUser {
        domain: String,
        name: String,
        enabled: Option<bool>,
    },
    List(String),
}

fn key_of(text: &str) -> Result<CurvePublicKey, String> {
    if text.len() == 40 && !Path::new(text).exists() {
        return CurvePublicKey::from_z85(text).map_err(|e| format!("{text:?}: {e}"));
    }
    load_certificate(Path::new(text))
        .map(|cert| cert.public_key)
        .map_err(|e| format!("{text}: {e} (give a public certificate file or a Z85 key)"))
}

fn read_password() -> Result<String, String> {
    if let Ok(password) = std::env::var("ZAPCTL_PASSWORD") {
        return Ok(password);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err("no password: set ZAPCTL_PASSWORD or write it on standard input".into());
    }
    Ok(password)
}

fn prepare(command: DbCommand) -> Result<Prepared, String> {
    Ok(match command {
        DbCommand::Migrate => Prepared::Migrate,
        DbCommand::List { domain } => Prepared::List(domain),
        DbCommand::Key(KeyCommand::Add {
            domain,
            key,
            user_id,
            meta,
            expires,
        }) => {
            actix_zap::zap::Metadata::from_pairs(meta.iter().map(|(n, v)| (n, v)))
                .map_err(|e| format!("--meta: {e}"))?;
            Prepared::AddKey {
                domain,
                key: key_of(&key)?,
                user_id,
                meta,
                expires,
            }
        }
        DbCommand::Key(KeyCommand::Disable(k)) => set_key(k, Some(false))?,
        DbCommand::Key(KeyCommand::Enable(k)) => set_key(k, Some(true))?,
        DbCommand::Key(KeyCommand::Remove(k)) => set_key(k, None)?,
        DbCommand::User(UserCommand::Add { domain, name }) => {
            let password = read_password()?;
            let hash = HashedPassword::hash(password.as_bytes()).map_err(|e| e.to_string())?;
            Prepared::AddUser { domain, name, hash }
        }
        DbCommand::User(UserCommand::Disable(u)) => set_user(u, Some(false)),
        DbCommand::User(UserCommand::Enable(u)) => set_user(u, Some(true)),
        DbCommand::User(UserCommand::Remove(u)) => set_user(u, None),
    })
}

fn set_key(k: KeyRef, enabled: Option<bool>) -> Result<Prepared, String> {
    Ok(Prepared::SetKey {
        key: key_of(&k.key)?,
        domain: k.domain,
        enabled,
    })
}

fn set_user(u: UserRef, enabled: Option<bool>) -> Prepared {
    Prepared::SetUser {
        domain: u.domain,
        name: u.name,
        enabled,
    }
}

/// An error and its causes (`source()`), each said once, on one line.
fn cause_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    let mut next = Some(error);
    while let Some(error) = next {
        let part = error.to_string().replace('\n', "; ");
        if !text.contains(&part) {
            if !text.is_empty() {
                text += ": ";
            }
            text += &part;
        }
        next = error.source();
    }
    text
}

/// The error, with what to do about the usual ones.
fn explain(failure: tokio_postgres::Error) -> String {
    use tokio_postgres::error::SqlState;
    let error = match failure.as_db_error() {
        Some(db) => format!("PostgreSQL: {}", db.message()),
        None => cause_chain(&failure),
    };
    match failure.code() {
        Some(code)
            if *code == SqlState::UNDEFINED_TABLE || *code == SqlState::INVALID_SCHEMA_NAME =>
        {
            format!(
                "{error}: the store is not set up here; run `zapctl db migrate` (same --schema)"
            )
        }
        Some(code) if *code == SqlState::UNIQUE_VIOLATION => {
            format!("{error}: it is already there; use `enable`, or `remove` it first")
        }
        Some(code) if *code == SqlState::CHECK_VIOLATION => {
            format!("{error}: a value is out of range")
        }
        Some(code) if *code == SqlState::INVALID_DATETIME_FORMAT => {
            format!("{error}: write --expires like \"2027-01-01 00:00+00\"")
        }
        _ => error,
    }
}

async fn execute(client: &mut Client, store: &Store, command: Prepared) -> Result<(), String> {
    if let Prepared::Migrate = command {
        let before = store.migrate(client).await.map_err(|e| match e {
            StoreError::Postgres(e) => explain(e),
            other => other.to_string(),
        })?;
        let now = actix_zap::postgres::SCHEMA_VERSION;
        if before == now {
            println!("schema {} is at version {now}", store.schema());
        } else {
            println!(
                "schema {} migrated from version {before} to {now}",
                store.schema()
            );
        }
        return Ok(());
    }
    let tx = client.transaction().await.map_err(explain)?;
    let changed = match &command {
        Prepared::Migrate => unreachable!("handled above"),
        Prepared::AddKey {
            domain,
            key,
            user_id,
            meta,
            expires,
        } => {
            let names: Vec<&str> = meta.iter().map(|(n, _)| n.as_str()).collect();
            let values: Vec<&str> = meta.iter().map(|(_, v)| v.as_str()).collect();
            let sql = store.sql(
                "INSERT INTO {schema}.curve_keys (domain, public_key, user_id, metadata, expires_at)
                 VALUES ($1, $2, $3, jsonb_object($4::text[], $5::text[]), $6::text::timestamptz)",
            );
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] =
                [domain, &key.to_z85(), user_id, &names, &values, expires];
            tx.execute(&sql, &params).await.map_err(explain)?
        }
        Prepared::SetKey {
            domain,
            key,
            enabled,
        } => {
            let z85 = key.to_z85();
            match enabled {
                Some(enabled) => {
                    let sql = store.sql(
                        "UPDATE {schema}.curve_keys SET enabled = $3 WHERE domain = $1 AND public_key = $2",
                    );
                    tx.execute(&sql, &[domain, &z85, enabled]).await
                }
                None => {
                    let sql = store.sql(
                        "DELETE FROM {schema}.curve_keys WHERE domain = $1 AND public_key = $2",
                    );
                    tx.execute(&sql, &[domain, &z85]).await
                }
            }
            .map_err(explain)?
        }
        Prepared::AddUser { domain, name, hash } => {
            let sql = store.sql(
                "INSERT INTO {schema}.plain_users (domain, username, password_hash) VALUES ($1, $2, $3)
                 ON CONFLICT (domain, username) DO UPDATE SET password_hash = EXCLUDED.password_hash",
            );
            tx.execute(&sql, &[domain, name, &hash.as_str()])
                .await
                .map_err(explain)?
        }
        Prepared::SetUser {
            domain,
            name,
            enabled,
        } => match enabled {
            Some(enabled) => {
                let sql = store.sql(
                    "UPDATE {schema}.plain_users SET enabled = $3 WHERE domain = $1 AND username = $2",
                );
                tx.execute(&sql, &[domain, name, enabled]).await
            }
            None => {
                let sql = store
                    .sql("DELETE FROM {schema}.plain_users WHERE domain = $1 AND username = $2");
                tx.execute(&sql, &[domain, name]).await
            }
        }
        .map_err(explain)?,
        Prepared::List(domain) => {
            list(&tx, store, domain).await?;
            1
        }
    };
    if changed == 0 {
        let (what, domain) = match &command {
            Prepared::SetKey { key, domain, .. } => (format!("key {key}"), domain),
            Prepared::SetUser { name, domain, .. } => (format!("user {name:?}"), domain),
            _ => unreachable!("inserts change a row or fail"),
        };
        return Err(format!(
            "no {what} in domain {domain:?}; see `zapctl db list {domain}`"
        ));
    }
    tx.commit().await.map_err(explain)?;
    match command {
        Prepared::AddKey { domain, key, .. } => println!("added key {key} to domain {domain:?}"),
        Prepared::SetKey {
            domain,
            key,
            enabled,
        } => println!("{} key {key} in domain {domain:?}", verb(enabled)),
        Prepared::AddUser { domain, name, .. } => {
            println!("set user {name:?} in domain {domain:?} (argon2id)")
        }
        Prepared::SetUser {
            domain,
            name,
            enabled,
        } => println!("{} user {name:?} in domain {domain:?}", verb(enabled)),
        Prepared::Migrate | Prepared::List(_) => {}
    }
    Ok(())
}

fn verb(enabled: Option<bool>) -> &'static str {
    match enabled {
        Some(true) => "enabled",
        Some(false) => "disabled",
        None => "removed",
    }
}

async fn list(
    tx: &tokio_postgres::Transaction<'_>,
    store: &Store,
    domain: &str,
) -> Result<(), String> {
    let sql = store.sql(
        "SELECT public_key, enabled, coalesce(user_id, ''), metadata::text,
                coalesce(expires_at::text, '')
         FROM {schema}.curve_keys WHERE domain = $1 ORDER BY public_key",
    );
    let keys = tx.query(&sql, &[&domain]).await.map_err(explain)?;
    let sql = store.sql(
        "SELECT username, enabled FROM {schema}.plain_users WHERE domain = $1 ORDER BY username",
    );
    let users = tx.query(&sql, &[&domain]).await.map_err(explain)?;
    println!(
        "domain {domain:?}: {} key(s), {} user(s)",
        keys.len(),
        users.len()
    );
    for row in &keys {
        let (key, enabled, user_id, meta, expires): (String, bool, String, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
        let mut line = format!(
            "  key  {key}  {}",
            if enabled { "enabled" } else { "disabled" }
        );
        if !user_id.is_empty() {
            line += &format!("  user-id={user_id}");
        }
        if meta != "{}" {
            line += &format!("  metadata={meta}");
        }
        if !expires.is_empty() {
            line += &format!("  expires={expires}");
        }
        println!("{line}");
    }
    for row in &users {
        let (name, enabled): (String, bool) = (row.get(0), row.get(1));
        println!(
            "  user {name}  {}",
            if enabled { "enabled" } else { "disabled" }
        );
    }
    Ok(())
}
