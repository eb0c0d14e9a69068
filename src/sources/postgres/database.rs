//! Where the store's database is and how to reach it: a libpq connection string, parsed, with
//! libpq's TLS settings (`sslmode`, `sslrootcert`) taken out — `tokio-postgres` does not know
//! `verify-ca`, `verify-full` or `sslrootcert` — and turned into a connector; and the one way
//! to connect, with a client-side deadline and a server-side `statement_timeout`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use log::warn;
use tokio_postgres::config::Host;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, Socket};

use super::tls::{self, Verify};
use super::{Connector, Messages, StoreError};

/// libpq's `sslmode`, as this crate reads it (see the [module docs](super#tls)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// No TLS (libpq would try TLS only if the server asked for nothing else).
    Allow,
    /// No TLS, as before this crate read `sslmode` (libpq would try TLS without verifying);
    /// the default.
    #[default]
    Prefer,
    /// TLS, the server's certificate not checked (as libpq); a warning says so.
    Require,
    /// TLS, the server's certificate chain checked against `sslrootcert`.
    VerifyCa,
    /// TLS, the chain checked and the certificate must name the connection's `host`.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode, StoreError> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(StoreError::Config(format!(
                    "sslmode {other:?} is not one of disable, allow, prefer, require, \
                     verify-ca, verify-full"
                )))
            }
        })
    }

    /// libpq's name.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// What `tokio-postgres` is told: TLS is required, or not attempted.
    fn for_tokio_postgres(self) -> &'static str {
        match self {
            SslMode::Disable | SslMode::Allow => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => "require",
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Makes a connector for each connection.
pub(super) type MakeConnector = Arc<dyn Fn() -> Box<dyn Connector> + Send + Sync>;

/// A store's database: a libpq connection string (`key=value …` or `postgresql://…`) parsed,
/// and the connector its `sslmode` and `sslrootcert` call for. Its `Display` names host,
/// (hostaddr,) port, user and database, never the password: what errors and `zapctl db` show.
///
/// ```
/// use actix_zap::postgres::{Database, SslMode};
/// let db = Database::new("host=db.internal user=zap password=s3cret dbname=zap sslmode=disable")?;
/// assert_eq!(db.to_string(), "host=db.internal port=5432 user=zap dbname=zap");
/// assert_eq!(db.ssl_mode(), SslMode::Disable);
/// # Ok::<(), actix_zap::postgres::StoreError>(())
/// ```
#[derive(Clone)]
pub struct Database {
    config: tokio_postgres::Config,
    ssl_mode: SslMode,
    root: Option<PathBuf>,
    connector: MakeConnector,
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("target", &self.to_string())
            .field("ssl_mode", &self.ssl_mode)
            .field("sslrootcert", &self.root)
            .finish()
    }
}

impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hosts: Vec<String> = (self.config.get_hosts().iter())
            .map(|host| match host {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        if !hosts.is_empty() {
            write!(f, "host={} ", hosts.join(","))?;
        }
        let addresses = self.config.get_hostaddrs();
        if !addresses.is_empty() {
            let addresses: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
            write!(f, "hostaddr={} ", addresses.join(","))?;
        }
        if hosts.is_empty() && addresses.is_empty() {
            f.write_str("host=(none) ")?;
        }
        let ports: Vec<String> = match self.config.get_ports() {
            [] => vec!["5432".into()],
            ports => ports.iter().map(|p| p.to_string()).collect(),
        };
        let user = self.config.get_user().unwrap_or("(the system user)");
        let dbname = (self.config.get_dbname())
            .or(self.config.get_user())
            .unwrap_or("(the user's)");
        write!(f, "port={} user={user} dbname={dbname}", ports.join(","))
    }
}

/// One `key=value` pair of a connection string, its value unquoted.
fn key_values(text: &str) -> Result<Vec<(String, String)>, StoreError> {
    let bad = |what: &str| StoreError::Config(format!("invalid connection string: {what}"));
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        if key.is_empty() {
            if chars.peek().is_some() {
                return Err(bad("a value without a key"));
            }
            return Ok(pairs);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(bad(&format!("expected `=` after `{key}`")));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => return Err(bad(&format!("unterminated quoted value of `{key}`"))),
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
            if value.is_empty() {
                return Err(bad(&format!("no value for `{key}`")));
            }
        }
        pairs.push((key, value));
    }
}

/// `value` quoted for a `key=value` connection string.
fn quoted(value: &str) -> String {
    let mut text = String::from("'");
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            text.push('\\');
        }
        text.push(c);
    }
    text.push('\'');
    text
}

/// `%XX` escapes of a URL decoded.
fn percent_decoded(text: &str) -> Result<String, StoreError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map_err(|_| StoreError::Config("a URL parameter that is not UTF-8".into()))
}

/// The TLS settings of a connection string, taken out of it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Taken {
    ssl_mode: Option<String>,
    root: Option<String>,
}

impl Taken {
    fn take(&mut self, key: &str, value: String) -> bool {
        match key {
            "sslmode" => self.ssl_mode = Some(value),
            "sslrootcert" => self.root = Some(value),
            _ => return false,
        }
        true
    }
}

/// The connection string without `sslmode` and `sslrootcert`, with `tokio-postgres`'s
/// `sslmode` for `mode` instead; and what was taken out.
fn split(connection: &str) -> Result<(String, Taken), StoreError> {
    let mut taken = Taken::default();
    let url = ["postgres://", "postgresql://"]
        .iter()
        .any(|prefix| connection.starts_with(prefix));
    if !url {
        let mut kept = Vec::new();
        for (key, value) in key_values(connection)? {
            if !taken.take(&key, value.clone()) {
                kept.push(format!("{key}={}", quoted(&value)));
            }
        }
        return Ok((kept.join(" "), taken));
    }
    let (base, query) = match connection.split_once('?') {
        Some((base, query)) => (base, query),
        None => (connection, ""),
    };
    let mut kept = Vec::new();
    for parameter in query.split('&').filter(|p| !p.is_empty()) {
        if let Some((key, value)) = parameter.split_once('=') {
            if taken.take(&percent_decoded(key)?, percent_decoded(value)?) {
                continue;
            }
        }
        kept.push(parameter.to_owned());
    }
    let mut text = base.to_owned();
    if !kept.is_empty() {
        text += "?";
        text += &kept.join("&");
    }
    Ok((text, taken))
}

/// `text` with `tokio-postgres`'s `sslmode` for `mode` added.
fn with_ssl_mode(text: &str, mode: SslMode) -> String {
    let mode = mode.for_tokio_postgres();
    let url = ["postgres://", "postgresql://"]
        .iter()
        .any(|prefix| text.starts_with(prefix));
    match (url, text.contains('?')) {
        (false, _) if text.is_empty() => format!("sslmode={mode}"),
        (false, _) => format!("{text} sslmode={mode}"),
        (true, true) => format!("{text}&sslmode={mode}"),
        (true, false) => format!("{text}?sslmode={mode}"),
    }
}

/// libpq's default root certificate file, `~/.postgresql/root.crt`.
fn default_root() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    Some(Path::new(&home).join(".postgresql").join("root.crt"))
}

impl Database {
    /// Parses a libpq connection string: `key=value` pairs (`host=db user=zap dbname=zap`)
    /// or a URL (`postgresql://zap@db/zap?sslmode=verify-full`), with libpq's `sslmode`
    /// (`disable`, `allow`, `prefer`, `require`, `verify-ca`, `verify-full`) and
    /// `sslrootcert=FILE` (a PEM file of root certificates, read now). See the
    /// [module docs](super#tls) for what each mode checks.
    pub fn new(connection: &str) -> Result<Database, StoreError> {
        let (rest, taken) = split(connection)?;
        let asked = match &taken.ssl_mode {
            Some(mode) => SslMode::parse(mode)?,
            None => SslMode::Prefer,
        };
        let config: tokio_postgres::Config =
            with_ssl_mode(&rest, asked)
                .parse()
                .map_err(|e: tokio_postgres::Error| {
                    StoreError::Config(crate::messages::error::cause_chain(&e))
                })?;
        if taken.root.as_deref() == Some("system") {
            return Err(StoreError::Config(
                "sslrootcert=system is not supported: give the file of the roots to trust".into(),
            ));
        }
        let given = taken.root.map(PathBuf::from);
        // As libpq: a root file makes `require` check the chain too (verify-ca).
        let root = match asked {
            SslMode::VerifyCa | SslMode::VerifyFull => match given.or_else(default_root) {
                Some(root) if root.exists() => Some(root),
                Some(root) => {
                    return Err(StoreError::Config(format!(
                        "sslmode={asked} checks the server's certificate against trusted roots: \
                         give sslrootcert=FILE ({} does not exist)",
                        root.display()
                    )))
                }
                None => {
                    return Err(StoreError::Config(format!(
                        "sslmode={asked} checks the server's certificate against trusted roots: \
                         give sslrootcert=FILE"
                    )))
                }
            },
            SslMode::Require => given.or_else(default_root).filter(|root| root.exists()),
            _ => None,
        };
        let ssl_mode = match (asked, &root) {
            (SslMode::Require, Some(_)) => SslMode::VerifyCa,
            _ => asked,
        };
        let tcp_host = config
            .get_hosts()
            .iter()
            .any(|host| matches!(host, Host::Tcp(_)));
        let verify = match ssl_mode {
            SslMode::Require => Some(Verify::Nothing),
            SslMode::VerifyCa => Some(Verify::Chain),
            SslMode::VerifyFull => Some(Verify::ChainAndName),
            _ => None,
        };
        let connector: MakeConnector = match verify {
            None => Arc::new(|| Box::new(tokio_postgres::NoTls)),
            Some(verify) => {
                if !tcp_host {
                    return Err(StoreError::Config(format!(
                        "sslmode={ssl_mode} needs host=NAME, the server's name (its \
                         certificate's, for verify-full); add hostaddr=ADDRESS to connect to \
                         an address without looking the name up"
                    )));
                }
                let roots = root
                    .as_deref()
                    .map(tls::load_roots)
                    .transpose()
                    .map_err(StoreError::Config)?;
                let config = tls::client_config(verify, roots).map_err(StoreError::Config)?;
                let make = tokio_postgres_rustls::MakeRustlsConnect::new(config);
                Arc::new(move || Box::new(make.clone()))
            }
        };
        let database = Database {
            config,
            ssl_mode,
            root,
            connector,
        };
        if ssl_mode == SslMode::Require {
            warn!(
                target: "actix_zap::postgres",
                "{database}: sslmode=require encrypts without checking the server's certificate \
                 (as libpq does): anyone on the way can read and change the session; use \
                 sslmode=verify-full with sslrootcert=FILE"
            );
        }
        Ok(database)
    }

    /// The `tokio-postgres` configuration (without the TLS settings this type handles).
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// What TLS is used: the `sslmode` given (`prefer` if none), except that `require` with a
    /// root certificate file is `verify-ca`, as in libpq.
    pub fn ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }

    /// The root certificate file in use, if any.
    pub fn root_certificate(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// Connects through `connector` instead of the one picked from the string (see
    /// [`PostgresSource::tls`](super::PostgresSource::tls)).
    pub fn tls<T>(self, connector: T) -> Self
    where
        T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
        T::Stream: 'static,
        T::TlsConnect: 'static,
        <T::TlsConnect as TlsConnect<Socket>>::Future: 'static,
    {
        Database {
            connector: Arc::new(move || Box::new(connector.clone())),
            ..self
        }
    }

    /// What to do about a certificate that did not verify (empty for other errors).
    fn hint(&self, error: &tokio_postgres::Error) -> String {
        use rustls::CertificateError as Bad;
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
        let mut found = None;
        while let Some(error) = next {
            let inner = (error.downcast_ref::<std::io::Error>())
                .and_then(|io| io.get_ref())
                .map(|inner| inner as &(dyn std::error::Error + 'static));
            if let Some(rustls::Error::InvalidCertificate(bad)) =
                inner.unwrap_or(error).downcast_ref::<rustls::Error>()
            {
                found = Some(bad.clone());
                break;
            }
            next = error.source();
        }
        let root = self
            .root
            .as_deref()
            .map_or("(none)".into(), |r| r.display().to_string());
        match found {
            Some(Bad::UnknownIssuer | Bad::BadSignature | Bad::UnhandledCriticalExtension) => {
                format!(
                    " (the server's certificate does not chain to a root of sslrootcert={root})"
                )
            }
            Some(Bad::NotValidForName | Bad::NotValidForNameContext { .. }) => " (the server's \
                certificate does not name the host: give the name it holds as host= and the \
                address as hostaddr=, or use sslmode=verify-ca)"
                .into(),
            Some(Bad::Expired | Bad::ExpiredContext { .. }) => {
                " (the server's certificate has expired)".into()
            }
            _ => String::new(),
        }
    }

    /// Connects as `application_name`, giving up after `within` (a client-side deadline:
    /// the TCP connection, TLS and the login together), with every statement of the session
    /// limited to `statement_timeout` by the server (unless the connection string's
    /// `options` set one). The messages must be polled for the client to make progress. A
    /// failure names the database (never the password) and keeps its cause.
    pub async fn connect(
        &self,
        application_name: &str,
        within: Duration,
        statement_timeout: Duration,
    ) -> Result<(Client, Messages), StoreError> {
        let mut config = self.config.clone();
        config.application_name(application_name);
        let socket_within = config
            .get_connect_timeout()
            .map_or(within, |t| (*t).min(within));
        config.connect_timeout(socket_within.max(Duration::from_millis(1)));
        let options = config.get_options().unwrap_or("").to_owned();
        if !options.contains("statement_timeout") {
            let ms = statement_timeout.as_millis().clamp(1, i32::MAX as u128);
            let options = format!("{options} -c statement_timeout={ms}");
            config.options(options.trim_start());
        }
        let connector = (self.connector)();
        match tokio::time::timeout(within, connector.connect(&config)).await {
            Ok(Ok(connected)) => Ok(connected),
            Ok(Err(error)) => Err(StoreError::Connect {
                database: self.to_string(),
                hint: self.hint(&error),
                error,
            }),
            Err(_) => Err(StoreError::TimedOut {
                database: self.to_string(),
                what: "connecting and logging in".into(),
                after: within,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_settings_are_taken_out_of_both_forms_and_the_rest_is_kept() {
        let (rest, taken) =
            split("host=db  user = 'z a\\'p' sslmode=verify-full sslrootcert='/r o/ca.pem'")
                .unwrap();
        assert_eq!(rest, "host='db' user='z a\\'p'");
        assert_eq!(taken.ssl_mode.as_deref(), Some("verify-full"));
        assert_eq!(taken.root.as_deref(), Some("/r o/ca.pem"));
        let config: tokio_postgres::Config = rest.parse().unwrap();
        assert_eq!(config.get_user(), Some("z a'p"));

        let (rest, taken) = split(
            "postgresql://zap:pw@db:5433/zap?sslrootcert=%2Fca.pem&application_name=x&sslmode=require",
        )
        .unwrap();
        assert_eq!(rest, "postgresql://zap:pw@db:5433/zap?application_name=x");
        assert_eq!(taken.ssl_mode.as_deref(), Some("require"));
        assert_eq!(taken.root.as_deref(), Some("/ca.pem"));
        let (rest, _) = split("postgres://db/zap?sslmode=disable").unwrap();
        assert_eq!(
            with_ssl_mode(&rest, SslMode::VerifyCa),
            "postgres://db/zap?sslmode=require"
        );
        assert_eq!(
            with_ssl_mode("postgres://db/zap?a=b", SslMode::Allow),
            "postgres://db/zap?a=b&sslmode=disable"
        );

        for bad in ["host", "host=", "host='db", "=db"] {
            assert!(split(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_mode_picks_what_is_checked_and_the_display_hides_the_password() {
        let db = Database::new("host=db port=6432 user=zap password=hunter2 dbname=z").unwrap();
        assert_eq!(db.ssl_mode(), SslMode::Prefer);
        assert_eq!(db.to_string(), "host=db port=6432 user=zap dbname=z");
        assert!(!format!("{db:?}").contains("hunter2"));
        let db = Database::new("postgresql://zap:hunter2@db/z?sslmode=require").unwrap();
        assert_eq!(db.ssl_mode(), SslMode::Require);
        assert_eq!(db.to_string(), "host=db port=5432 user=zap dbname=z");
        let db = Database::new("host=n hostaddr=127.0.0.1 user=u sslmode=disable").unwrap();
        assert_eq!(
            db.to_string(),
            "host=n hostaddr=127.0.0.1 port=5432 user=u dbname=u"
        );

        let error = |conn: &str| Database::new(conn).unwrap_err().to_string();
        let no_root = error("host=db sslmode=verify-full sslrootcert=/nonexistent/ca.pem");
        assert!(no_root.contains("/nonexistent/ca.pem"), "{no_root}");
        let mode = error("host=db sslmode=verify-everything");
        assert!(mode.contains("verify-full"), "{mode}");
        let no_host = error("hostaddr=127.0.0.1 sslmode=require");
        assert!(no_host.contains("host=NAME"), "{no_host}");
        assert!(error("host=db sslrootcert=system sslmode=verify-ca").contains("system"));
        let unknown = error("host=db password=hunter2 sslcert=x");
        assert!(
            unknown.contains("sslcert") && !unknown.contains("hunter2"),
            "{unknown}"
        );
    }
}
