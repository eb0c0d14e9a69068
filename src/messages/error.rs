//! The errors a user of the authenticator can meet, one enum per kind of operation.

use std::path::PathBuf;
use std::time::Duration;

use crate::certs::CertError;
use crate::policy::{AddressError, PolicyError};

/// The linked libzmq cannot do CURVE (`zmq::has("curve")` is not true), so a CURVE policy
/// or a CURVE server socket would never work: the one error for it, wherever it is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the linked libzmq has no CURVE support: install a libzmq built with libsodium \
     (Debian: libzmq3-dev) and link it as the README describes"
)]
pub struct NoCurveSupport;

impl NoCurveSupport {
    /// Fails unless the linked libzmq can do CURVE (`has_curve` is `zmq::has("curve")`).
    pub(crate) fn check(has_curve: Option<bool>) -> Result<(), NoCurveSupport> {
        match has_curve {
            Some(true) => Ok(()),
            _ => Err(NoCurveSupport),
        }
    }
}

/// Why a handle could not ask its authenticator at all. Queries that cannot fail
/// (`inspect`, `stats`, `watches`, `subscribe`, `unsubscribe`) fail only with this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unavailable {
    /// The authenticator was stopped; start a new one.
    #[error("the authenticator is stopped")]
    Stopped,
    /// A blocking [`ThreadAuthenticator`](crate::ThreadAuthenticator) method was called on
    /// the authenticator's own thread (in an `on_decision` or `on_reload` callback, say).
    /// Waiting there would deadlock: the thread would wait for itself. Never returned by the
    /// async [`Authenticator`](crate::Authenticator).
    #[error(
        "a blocking ThreadAuthenticator method was called on the authenticator's own thread \
         (e.g. in a callback), where it would wait for itself; nothing was done"
    )]
    OwnThread,
}

/// A configuration message was not applied as asked. Most variants mean nothing changed; a
/// source that could not be read (`Certificates`, `LoadFailed`) was accepted as a narrowing:
/// the domain now refuses that mechanism (fail closed), as each variant says.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The policy refused it (allow and deny together, an empty table, a long domain).
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// An address or range did not parse.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// A certificate directory could not be read at all: it is missing, not a directory, or
    /// cannot be listed ([`CertError::File`] names it, and its
    /// [`FileError`](crate::certs::FileError) says which). The domain now refuses every CURVE
    /// client until a later configuration succeeds (fail closed).
    #[error(transparent)]
    Certificates(#[from] CertError),
    /// Loading a certificate directory did not finish: its read took longer than the deadline
    /// ([`ReloadError::TimedOut`]), panicked ([`ReloadError::Panicked`]), or had no thread to
    /// run on ([`ReloadError::NoThread`]). The domain refuses every CURVE client until a later
    /// configuration succeeds, as for an unreadable directory; a read left hanging is waited
    /// for by nobody, `stop()` included.
    #[error("loading certificates failed: {0}")]
    LoadFailed(ReloadError),
    /// A [`Watch`](crate::messages::Watch) asked for something refused (an interval below the floor).
    #[error(transparent)]
    Watch(#[from] WatchError),
    /// The linked libzmq cannot do CURVE, so a CURVE policy would never be used.
    #[error(transparent)]
    NoCurveSupport(#[from] NoCurveSupport),
    /// A credential source (e.g. the PostgreSQL store) refused the request; the text says
    /// what to do.
    #[error("credential source: {0}")]
    Source(String),
    /// The PostgreSQL credential store cannot be followed as it is (feature `postgres`):
    /// [`Authenticator::serve`](crate::Authenticator::serve) found it missing, unmigrated, of
    /// a newer schema version, or on a hot standby. Nothing was registered.
    #[cfg(feature = "postgres")]
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The authenticator was stopped; start a new one.
    #[error("the authenticator is stopped")]
    Stopped,
    /// A [`Watch`](crate::messages::Watch), or a `ConfigureCurve` of a directory, was replaced
    /// before its load finished: a later configuration, watch or unwatch of the same domain
    /// and mechanism came first, and that one is in force.
    #[error("superseded by a later configuration of the same domain and mechanism before it was installed")]
    Superseded,
    /// A blocking method was called on the authenticator's own thread (see
    /// [`Unavailable::OwnThread`]); nothing was done.
    #[error("{}", Unavailable::OwnThread)]
    OwnThread,
    /// The message was sent with a timeout (`Addr::send(..).timeout(..)`) that passed before
    /// the answer came; the message may still be applied.
    #[error("no answer within the timeout given to send")]
    TimedOut,
}

impl From<Unavailable> for ConfigError {
    fn from(unavailable: Unavailable) -> Self {
        match unavailable {
            Unavailable::Stopped => ConfigError::Stopped,
            Unavailable::OwnThread => ConfigError::OwnThread,
        }
    }
}

/// So that `auth.policy().send(message).await??` works with `ConfigError` as the error type.
impl From<actix::MailboxError> for ConfigError {
    fn from(error: actix::MailboxError) -> Self {
        match error {
            actix::MailboxError::Closed => ConfigError::Stopped,
            actix::MailboxError::Timeout => ConfigError::TimedOut,
        }
    }
}

/// The authenticator could not start. Nothing is bound and nothing runs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Another ZAP handler already owns `inproc://zeromq.zap.01` on this context.
    #[error("another ZAP handler is already bound on this zmq::Context")]
    EndpointInUse,
    /// `start` was called outside a running actix System (use `ThreadAuthenticator` there).
    #[error(
        "Authenticator::start must run inside an actix System; use ThreadAuthenticator otherwise"
    )]
    NoSystem,
    /// The linked libzmq predates 4.3.2 (CVE-2019-13132) and the caller did not accept it.
    #[error(
        "libzmq {0}.{1}.{2} is older than 4.3.2 (pre-authentication overflow, CVE-2019-13132); \
         upgrade it, or call accept_vulnerable_libzmq() if your distribution backported the fix"
    )]
    VulnerableLibzmq(i32, i32, i32),
    /// A zmq call failed.
    #[error("zmq: {0}")]
    Zmq(#[from] zmq::Error),
    /// A thread could not be started.
    #[error("could not start a thread: {0}")]
    Io(#[from] std::io::Error),
}

/// A [`Watch`](super::Watch) that cannot be started; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// [`Watch::every`](super::Watch::every) below [`Watch::MIN_INTERVAL`](super::Watch::MIN_INTERVAL).
    #[error("watch interval {interval:?} is below the floor of {floor:?}")]
    IntervalTooShort {
        /// The interval asked for.
        interval: Duration,
        /// [`Watch::MIN_INTERVAL`](super::Watch::MIN_INTERVAL).
        floor: Duration,
    },
    /// [`Watch::read_deadline`](super::Watch::read_deadline) below [`Watch::MIN_INTERVAL`](super::Watch::MIN_INTERVAL).
    #[error("watch read deadline {deadline:?} is below the floor of {floor:?}")]
    DeadlineTooShort {
        /// The deadline asked for.
        deadline: Duration,
        /// [`Watch::MIN_INTERVAL`](super::Watch::MIN_INTERVAL).
        floor: Duration,
    },
}

/// Why a watched source, or one of its files, was not loaded.
///
/// As [`Reloaded::error`](super::Reloaded::error) the domain refuses everyone of that mechanism until a later
/// reload succeeds (fail closed); as an entry of [`Reloaded::rejected`](super::Reloaded::rejected), only that file was
/// skipped. The text of an I/O or parse failure is kept as `cause`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// The watch has started and its first load has not finished.
    #[error("not loaded yet")]
    NotLoadedYet,
    /// The directory (or a subdirectory) cannot be listed, or a file cannot be read (or
    /// changed while it was read).
    #[error("{}: {cause}", path.display())]
    Unreadable {
        /// The directory or file.
        path: PathBuf,
        /// The failure, as the system reported it.
        cause: String,
    },
    /// A file holds no valid entry: a broken certificate, a duplicate key, a password file
    /// that is not UTF-8, or not a regular file at all.
    #[error("{}: {cause}", path.display())]
    InvalidFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        cause: String,
    },
    /// A watched password file larger than its cap
    /// ([`Watch::max_file_bytes`](super::Watch::max_file_bytes)): refused, not read.
    #[error("{}: {size} bytes, over the cap of {limit} bytes; refusing everyone", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The cap.
        limit: u64,
    },
    /// A watched directory with more entries than its cap
    /// ([`Watch::max_entries`](super::Watch::max_entries)): refused whole.
    #[error("{} has more than {limit} entries; refusing everyone", path.display())]
    TooManyEntries {
        /// The directory.
        path: PathBuf,
        /// The cap.
        limit: usize,
    },
    /// The source holds no entries at all, so the domain would refuse everyone.
    #[error("{} has no entries", path.display())]
    NoEntries {
        /// The directory or file.
        path: PathBuf,
    },
    /// One look at the source took longer than [`Watch::read_deadline`](super::Watch::read_deadline).
    #[error(
        "reading {} took longer than {deadline:?}; refusing everyone until it can be read",
        path.display()
    )]
    TimedOut {
        /// The directory or file.
        path: PathBuf,
        /// The deadline it passed.
        deadline: Duration,
    },
    /// Reading the source panicked.
    #[error("reading {} panicked; refusing everyone", path.display())]
    Panicked {
        /// The directory or file.
        path: PathBuf,
    },
    /// No thread could be started to read the source.
    #[error("cannot start a thread to read the source: {cause}")]
    NoThread {
        /// The failure, as the system reported it.
        cause: String,
    },
}

/// What went wrong with a PostgreSQL credential store or its database (feature `postgres`);
/// also [`actix_zap::postgres::StoreError`](crate::postgres::StoreError).
///
/// No variant holds a connection string or a password: the database is named by host, port,
/// user and database name ([`Database`](crate::postgres::Database)'s `Display`), and errors of
/// PostgreSQL keep their cause (the server's message, not "db error").
#[cfg(feature = "postgres")]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A schema or channel name this crate will not write into SQL.
    #[error(
        "{what} name {name:?} must be lower-case letters, digits and '_', not start with a \
         digit, and be at most 63 bytes"
    )]
    BadName {
        /// `"schema"` or `"channel"`.
        what: &'static str,
        /// The name.
        name: String,
    },
    /// The connection string did not parse, or its TLS settings cannot be used (an
    /// `sslrootcert` that cannot be read, `verify-full` without a host name).
    #[error("bad connection string: {0}")]
    Config(String),
    /// The connection failed: the database could not be reached, refused the login, or its
    /// certificate did not verify.
    #[error("cannot connect to {database}: {}{hint}", postgres_cause(.error))]
    Connect {
        /// Host, port, user and database name (never a password).
        database: String,
        /// What to do about it, if this crate knows (a certificate that did not verify).
        hint: String,
        /// What failed.
        #[source]
        error: tokio_postgres::Error,
    },
    /// The database did not answer in time.
    #[error("{database}: no answer within {after:?} ({what})")]
    TimedOut {
        /// Host, port, user and database name (never a password).
        database: String,
        /// What was asked.
        what: String,
        /// The deadline.
        after: Duration,
    },
    /// There is no store in this schema of this database (no `settings` or
    /// `schema_migrations` table): a misspelled schema, or a store never migrated.
    #[error(
        "no credential store in schema {schema} of {database}: run `zapctl db migrate --schema \
         {schema}` (with the same database), or check the schema's name"
    )]
    Missing {
        /// The schema.
        schema: String,
        /// Host, port, user and database name.
        database: String,
    },
    /// The store's schema is older than this crate follows: migrate it first (migrations
    /// are additive: servers of the older version keep working).
    #[error(
        "the store in schema {schema} is at version {found}, this program follows version \
         {known}: run `zapctl db migrate --schema {schema}` first"
    )]
    Unmigrated {
        /// The schema.
        schema: String,
        /// The schema's version.
        found: i32,
        /// This crate's ([`SCHEMA_VERSION`](crate::postgres::SCHEMA_VERSION)).
        known: i32,
    },
    /// The schema was migrated by a newer version of this crate.
    #[error(
        "schema version {found} is newer than this program knows ({known}): upgrade this \
         server (or zapctl) to a version that knows it"
    )]
    NewerSchema {
        /// The schema's version.
        found: i32,
        /// This crate's.
        known: i32,
    },
    /// The database is a hot standby (`pg_is_in_recovery()`), where `LISTEN` is refused:
    /// follow the primary.
    #[error(
        "{database} is a hot standby (in recovery), where LISTEN is refused: connect to the \
         primary"
    )]
    HotStandby {
        /// Host, port, user and database name.
        database: String,
    },
    /// The database refused or the connection failed.
    #[error("PostgreSQL: {}", postgres_cause(.0))]
    Postgres(#[from] tokio_postgres::Error),
}

/// A PostgreSQL error with its cause: the server's own message (with its detail and hint)
/// rather than "db error", or the chain of causes of a connection or TLS failure.
#[cfg(feature = "postgres")]
pub(crate) fn postgres_cause(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = db.message().to_owned();
        if let Some(detail) = db.detail() {
            text += &format!(" ({detail})");
        }
        if let Some(hint) = db.hint() {
            text += &format!("; hint: {hint}");
        }
        return text;
    }
    cause_chain(error)
}

/// An error and its causes (`source()`), each said once, joined with `": "`, on one line.
#[cfg(feature = "postgres")]
pub(crate) fn cause_chain(error: &(dyn std::error::Error + 'static)) -> String {
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
