//! `zapctl db`: manage the PostgreSQL credential store that authenticators follow. Every
//! command is one transaction; the followers see its change when it commits.

use std::path::Path;
use std::time::{Duration, SystemTime};

use actix_zap::certs::load_certificate;
use actix_zap::keys::CurvePublicKey;
use actix_zap::postgres::{Database, NewKey, Position, SslMode, Store, StoreError, WriteError};
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
is not there (or already is); 2 usage error (a connection string that does not parse, or an
empty password, too).
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
    /// List a domain's keys and users, enabled or not (control characters escaped)
    List {
        /// The ZAP domain
        domain: String,
    },
    /// Let ROLE write keys and users: USAGE on the schema; SELECT, INSERT, UPDATE, DELETE on
    /// curve_keys and plain_users; SELECT on settings (never TRUNCATE, TRIGGER, ownership, or
    /// anything on the change log). Run it as the store's owner
    GrantWriter {
        /// An existing role
        role: String,
    },
    /// Let ROLE follow the store: USAGE on the schema, SELECT on its tables and on the change
    /// log's sequence. Run it as the store's owner
    GrantFollower {
        /// An existing role
        role: String,
    },
    /// Delete change-log rows older than DURATION and raise the pruning mark past them (one
    /// transaction); a follower that had not applied them reads a snapshot. Run it as the
    /// store's owner
    Prune {
        /// How much of the log to keep, e.g. 30d, 12h, 1h30m, 0s
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        keep: Duration,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Admit a key in DOMAIN (from a NAME.key certificate file, with its metadata, or Z85
    /// text)
    Add {
        /// The ZAP domain
        domain: String,
        /// A public certificate file (pyzmq or CZMQ layout) or the key's 40-character Z85 text
        #[arg(allow_hyphen_values = true)]
        key: String,
        /// The User-Id servers see for this key (default: the key's Z85 text)
        #[arg(long, value_name = "ID")]
        user_id: Option<String>,
        /// Metadata for the 200 reply, e.g. --meta role=frontend (repeatable; sets the value
        /// of the certificate's property of the same name)
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
    /// from the first line of standard input, and stored as an argon2id hash. An empty
    /// password is refused
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

/// `30d`, `12h`, `1h30m`, `45m`, `90s`, `2w`, `0s`: a sum of whole numbers with units.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration like 30d, 12h, 1h30m or 0s");
    let mut total: u64 = 0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let unit_len = rest[digits..]
            .bytes()
            .take_while(u8::is_ascii_alphabetic)
            .count();
        if digits == 0 || unit_len == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let unit: u64 = match &rest[digits..digits + unit_len] {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 604_800,
            _ => return Err(bad()),
        };
        let seconds = number.checked_mul(unit).ok_or_else(bad)?;
        total = total.checked_add(seconds).ok_or_else(bad)?;
        rest = &rest[digits + unit_len..];
    }
    Ok(Duration::from_secs(total))
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
        key: NewKey,
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
        password: String,
    },
    SetUser {
        domain: String,
        name: String,
        enabled: Option<bool>,
    },
    List(String),
    GrantWriter(String),
    GrantFollower(String),
    Prune(Duration),
}

/// The key a certificate file (with its metadata) or a Z85 text names.
fn new_key_of(text: &str) -> Result<NewKey, String> {
    if text.len() == 40 && !Path::new(text).exists() {
        let key = CurvePublicKey::from_z85(text).map_err(|e| format!("{text:?}: {e}"))?;
        return Ok(NewKey::new(key));
    }
    load_certificate(Path::new(text))
        .map(|cert| NewKey::from_certificate(&cert))
        .map_err(|e| format!("{text}: {e} (give a public certificate file or a Z85 key)"))
}

fn key_of(text: &str) -> Result<CurvePublicKey, String> {
    new_key_of(text).map(|new| new.key)
}

/// The password from ZAPCTL_PASSWORD (when set, even to nothing), else the first line of
/// standard input; an empty one is refused.
fn read_password() -> Result<String, String> {
    let password = match std::env::var_os("ZAPCTL_PASSWORD") {
        Some(password) => password
            .into_string()
            .map_err(|_| "ZAPCTL_PASSWORD is not UTF-8".to_owned())?,
        // Prompted for, without echo, on a terminal.
        None => crate::secret::read_secret("Password: ")?,
    };
    if password.is_empty() {
        return Err(format!(
            "{}: set ZAPCTL_PASSWORD to the password, or write it on standard input",
            WriteError::EmptyPassword
        ));
    }
    Ok(password)
}

fn prepare(command: DbCommand) -> Result<Prepared, String> {
    Ok(match command {
        DbCommand::Migrate => Prepared::Migrate,
        DbCommand::List { domain } => Prepared::List(domain),
        DbCommand::GrantWriter { role } => Prepared::GrantWriter(role),
        DbCommand::GrantFollower { role } => Prepared::GrantFollower(role),
        DbCommand::Prune { keep } => Prepared::Prune(keep),
        DbCommand::Key(KeyCommand::Add {
            domain,
            key,
            user_id,
            meta,
            expires,
        }) => {
            let mut key = new_key_of(&key)?;
            for (name, value) in meta {
                key = key.meta(name, value);
            }
            if let Some(user_id) = user_id {
                key = key.user_id(user_id);
            }
            actix_zap::zap::Metadata::from_pairs(key.metadata.iter().map(|(n, v)| (n, v)))
                .map_err(|e| format!("metadata (the certificate's and --meta): {e}"))?;
            Prepared::AddKey {
                domain,
                key,
                expires,
            }
        }
        DbCommand::Key(KeyCommand::Disable(k)) => set_key(k, Some(false))?,
        DbCommand::Key(KeyCommand::Enable(k)) => set_key(k, Some(true))?,
        DbCommand::Key(KeyCommand::Remove(k)) => set_key(k, None)?,
        DbCommand::User(UserCommand::Add { domain, name }) => {
            if name.is_empty() {
                return Err(WriteError::EmptyUsername.to_string());
            }
            let password = read_password()?;
            Prepared::AddUser {
                domain,
                name,
                password,
            }
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

/// The error, with what to do about the usual ones.
fn explain(failure: tokio_postgres::Error) -> String {
    use tokio_postgres::error::SqlState;
    // The server's messages may quote values from the store.
    let error = match failure.as_db_error() {
        Some(db) => format!("PostgreSQL: {}", escaped(db.message())),
        None => actix_zap::postgres::error_text(&failure),
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
        Some(code)
            if *code == SqlState::INVALID_DATETIME_FORMAT
                || *code == SqlState::DATETIME_FIELD_OVERFLOW =>
        {
            format!("{error}: write --expires like \"2027-01-01 00:00+00\"")
        }
        Some(code) if *code == SqlState::INSUFFICIENT_PRIVILEGE => {
            format!(
                "{error}: this role may not do that; the store's owner grants writing with \
                 `zapctl db grant-writer ROLE` (migrate, prune and grants are the owner's)"
            )
        }
        _ => error,
    }
}

/// A refused write, with what to do about it.
fn write_failed(error: WriteError) -> String {
    match error {
        WriteError::Postgres(error) => explain(error),
        // Names are quoted (escaped) by the errors' own messages.
        WriteError::NotFound { credential, domain } => format!(
            "no {credential} in domain {}; see `zapctl db list {}`",
            quoted(&domain),
            escaped(&domain)
        ),
        error @ WriteError::AlreadyThere { .. } => {
            format!("{error}; use `enable`, or `remove` it first")
        }
        other => other.to_string(),
    }
}

/// Text from the store or the command line as it may be printed: control characters (and
/// other characters that are not printable, such as bidirectional overrides) escaped, and
/// quoted.
fn quoted(text: &str) -> String {
    format!("{text:?}")
}

/// Text with its control (and other unprintable) characters escaped, quotes and backslashes
/// left as they are.
fn escaped(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\'' | '\\' => c.to_string(),
            c => c.escape_debug().to_string(),
        })
        .collect()
}

async fn execute(client: &mut Client, store: &Store, command: Prepared) -> Result<(), String> {
    let failed = |e: WriteError| write_failed(e);
    let position: Position = match command {
        Prepared::Migrate => {
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
        Prepared::List(domain) => return list(client, store, &domain).await,
        Prepared::GrantWriter(role) => {
            store.grant_writer(client, &role).await.map_err(failed)?;
            println!(
                "role {} may write keys and users of the store in schema {}",
                quoted(&role),
                store.schema()
            );
            return Ok(());
        }
        Prepared::GrantFollower(role) => {
            store.grant_follower(client, &role).await.map_err(failed)?;
            println!(
                "role {} may follow the store in schema {}",
                quoted(&role),
                store.schema()
            );
            return Ok(());
        }
        Prepared::Prune(keep) => {
            let pruned = store.prune(client, keep).await.map_err(failed)?;
            println!(
                "deleted {} change-log row(s) older than {} s; pruning mark {} (store {})",
                pruned.deleted,
                keep.as_secs(),
                pruned.mark,
                pruned.store
            );
            return Ok(());
        }
        Prepared::AddKey {
            domain,
            mut key,
            expires,
        } => {
            if let Some(expires) = expires {
                key = key.expires(expiry(client, &expires).await?);
            }
            let position = store.add_key(client, &domain, &key).await.map_err(failed)?;
            print!("added key {} to domain {}", key.key, quoted(&domain));
            position
        }
        Prepared::SetKey {
            domain,
            key,
            enabled,
        } => {
            let position = match enabled {
                Some(true) => store.enable_key(client, &domain, &key).await,
                Some(false) => store.disable_key(client, &domain, &key).await,
                None => store.remove_key(client, &domain, &key).await,
            }
            .map_err(failed)?;
            print!("{} key {key} in domain {}", verb(enabled), quoted(&domain));
            position
        }
        Prepared::AddUser {
            domain,
            name,
            password,
        } => {
            let position = (store.add_user(client, &domain, &name, password.as_bytes()))
                .await
                .map_err(failed)?;
            print!(
                "set user {} in domain {} (argon2id)",
                quoted(&name),
                quoted(&domain)
            );
            position
        }
        Prepared::SetUser {
            domain,
            name,
            enabled,
        } => {
            let position = match enabled {
                Some(true) => store.enable_user(client, &domain, &name).await,
                Some(false) => store.disable_user(client, &domain, &name).await,
                None => store.remove_user(client, &domain, &name).await,
            }
            .map_err(failed)?;
            print!(
                "{} user {} in domain {}",
                verb(enabled),
                quoted(&name),
                quoted(&domain)
            );
            position
        }
    };
    // Where the change lies: `SourceHandle::synced` with it says when a server has it.
    println!(": {position}");
    Ok(())
}

/// `--expires` as PostgreSQL reads a `timestamptz` (in the session's time zone).
async fn expiry(client: &Client, text: &str) -> Result<SystemTime, String> {
    let row = client
        .query_one("SELECT $1::text::timestamptz", &[&text])
        .await
        .map_err(explain)?;
    Ok(row.get(0))
}

fn verb(enabled: Option<bool>) -> &'static str {
    match enabled {
        Some(true) => "enabled",
        Some(false) => "disabled",
        None => "removed",
    }
}

/// Prints a domain's keys and users; every text from the store is escaped.
async fn list(client: &mut Client, store: &Store, domain: &str) -> Result<(), String> {
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(explain)?;
    let sql = store.sql(
        "SELECT public_key, enabled, user_id,
                ARRAY(SELECT e.key FROM jsonb_each_text(metadata) e ORDER BY e.key),
                ARRAY(SELECT e.value FROM jsonb_each_text(metadata) e ORDER BY e.key),
                expires_at::text
         FROM {schema}.curve_keys WHERE domain = $1 ORDER BY public_key",
    );
    let keys = tx.query(&sql, &[&domain]).await.map_err(explain)?;
    let sql = store.sql(
        "SELECT username, enabled FROM {schema}.plain_users WHERE domain = $1 ORDER BY username",
    );
    let users = tx.query(&sql, &[&domain]).await.map_err(explain)?;
    println!(
        "domain {}: {} key(s), {} user(s)",
        quoted(domain),
        keys.len(),
        users.len()
    );
    let state = |enabled: bool| if enabled { "enabled" } else { "disabled" };
    for row in &keys {
        let key: String = row.get(0);
        let enabled: bool = row.get(1);
        let user_id: Option<String> = row.get(2);
        let names: Vec<String> = row.get(3);
        let values: Vec<Option<String>> = row.get(4);
        let expires: Option<String> = row.get(5);
        let mut line = format!("  key  {}  {}", escaped(&key), state(enabled));
        if let Some(user_id) = user_id {
            line += &format!("  user-id={}", quoted(&user_id));
        }
        if !names.is_empty() {
            let pairs: Vec<String> = (names.iter().zip(&values))
                .map(|(name, value)| match value {
                    Some(value) => format!("{}={}", quoted(name), quoted(value)),
                    None => format!("{}=null", quoted(name)),
                })
                .collect();
            line += &format!("  metadata: {}", pairs.join(", "));
        }
        if let Some(expires) = expires {
            line += &format!("  expires={}", escaped(&expires));
        }
        println!("{line}");
    }
    for row in &users {
        let (name, enabled): (String, bool) = (row.get(0), row.get(1));
        println!("  user {}  {}", quoted(&name), state(enabled));
    }
    tx.commit().await.map_err(explain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_sums_of_whole_units() {
        let d = |text| parse_duration(text).map(|d| d.as_secs());
        assert_eq!(d("0s"), Ok(0));
        assert_eq!(d("1h30m"), Ok(5400));
        assert_eq!(d("30d"), Ok(2_592_000));
        assert_eq!(d("2w"), Ok(1_209_600));
        for bad in ["", "5", "h", "1x", "-1s", "1.5h", "99999999999999999999w"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn text_from_the_store_is_printed_escaped() {
        assert_eq!(quoted("ops\x1b[2J\n"), r#""ops\u{1b}[2J\n""#);
        assert_eq!(escaped("a\u{202e}b\u{7f}\"c\\"), r#"a\u{202e}b\u{7f}"c\"#);
        assert_eq!(escaped("plain name"), "plain name");
    }
}
