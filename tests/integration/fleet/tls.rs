//! TLS to the store, against the local PostgreSQL (TLS on, with Debian's self-signed
//! "snakeoil" certificate): a source and `zapctl db` with `sslmode=verify-full`, that
//! certificate as the root, the name it holds as `host` and `hostaddr=127.0.0.1`, are
//! encrypted as the server sees it (`pg_stat_ssl`); a root the server's certificate does not
//! chain to, or a name it does not hold, is refused and says so; no password is printed; every
//! statement has a server-side timeout and every wait a client-side deadline.

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

/// The port, user and database of the test database (as `conninfo()` gives them).
fn target() -> (u16, String, String) {
    let config: tokio_postgres::Config = conninfo().parse().unwrap();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("postgres").to_owned();
    let dbname = config.get_dbname().unwrap_or(&user).to_owned();
    (port, user, dbname)
}

/// The server's certificate file (`SHOW ssl_cert_file`, with `ssl` on) and the first DNS
/// name it holds (else its common name).
fn server_certificate(db: &Db) -> (PathBuf, String) {
    let sql = "SELECT current_setting('ssl'), current_setting('ssl_cert_file')";
    let row = db.runtime.block_on(db.client.query_one(sql, &[])).unwrap();
    let (ssl, file): (String, String) = (row.get(0), row.get(1));
    assert_eq!(
        ssl, "on",
        "these tests need PostgreSQL with TLS on (ssl = on)"
    );
    let file = PathBuf::from(file);
    let pem = std::fs::read_to_string(&file).unwrap();
    (file, certificate_name(&pem))
}

fn certificate_name(pem: &str) -> String {
    use x509_cert::der::{oid::AssociatedOid as _, Decode as _, DecodePem as _};
    use x509_cert::ext::pkix::name::GeneralName;
    use x509_cert::ext::pkix::SubjectAltName;
    let cert = x509_cert::Certificate::from_pem(pem).unwrap();
    let extensions = cert.tbs_certificate.extensions.unwrap_or_default();
    for extension in extensions {
        if extension.extn_id == SubjectAltName::OID {
            let names = SubjectAltName::from_der(extension.extn_value.as_bytes()).unwrap();
            for name in names.0 {
                if let GeneralName::DnsName(name) = name {
                    return name.to_string();
                }
            }
        }
    }
    // No DNS name: the subject's common name (CN=...).
    let subject = cert.tbs_certificate.subject.to_string();
    let cn = subject
        .split(',')
        .find_map(|part| part.trim().strip_prefix("CN="));
    cn.expect("a certificate with a name").to_owned()
}

/// A connection string to the test database at 127.0.0.1 under the name `host`, with `tls`.
fn tls_conninfo(host: &str, tls: &str) -> String {
    let (port, user, dbname) = target();
    format!("host={host} hostaddr=127.0.0.1 port={port} user={user} dbname={dbname} {tls}")
}

/// Whether the server sees the session of `application_name` as encrypted (`pg_stat_ssl`),
/// and with which protocol; `None` while it has no such session.
fn encrypted(db: &Db, application_name: &str) -> Option<(bool, String)> {
    let sql = "SELECT s.ssl, coalesce(s.version, '') FROM pg_stat_ssl s
               JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1";
    let rows = (db.runtime)
        .block_on(db.client.query(sql, &[&application_name]))
        .unwrap();
    rows.first().map(|row| (row.get(0), row.get(1)))
}

/// A root certificate authority of the test's own, which signed nothing the server holds.
fn unrelated_root(dir: &Path) -> PathBuf {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let file = dir.join("unrelated-root.pem");
    std::fs::write(&file, cert.pem()).unwrap();
    file
}

/// Waits until the member's source reports an error containing `expected`; answers it.
fn error_of(member: &Member, expected: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let stats = member.stats();
        if let Some(error) = stats.last_error.clone().filter(|e| e.contains(expected)) {
            assert!(!stats.connected && stats.applied_seq == 0, "{stats:?}");
            return error;
        }
        assert!(
            Instant::now() < deadline,
            "no error with {expected:?}: {stats:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_source_with_verify_full_admits_from_the_store_over_a_session_the_server_sees_encrypted() {
    let db = Db::new("tls_full");
    let (root, name) = server_certificate(&db);
    let alice = Keys::generate();
    let seq = db.add_key(&alice, "alice");
    let tls = format!("sslmode=verify-full sslrootcert={}", root.display());
    let verified = Member::start_as(&db, 0, &tls_conninfo(&name, &tls), |s| s);
    let plain = Member::start(&db, 1, |s| s);
    for member in [&verified, &plain] {
        member.at(seq).curve(&alice).assert_admitted("alice");
    }
    // The server's own view of both sessions: the verified one is encrypted, the other not
    // (so the query tells them apart).
    let (ssl, version) = encrypted(&db, &format!("actix-zap/{}", verified.name)).unwrap();
    assert!(ssl && version.starts_with("TLS"), "{ssl} {version}");
    let (ssl, _) = encrypted(&db, &format!("actix-zap/{}", plain.name)).unwrap();
    assert!(!ssl, "the source without sslmode uses no TLS, as before");
    // A revocation reaches it as it reaches any follower.
    let disabled = db.set_key(&alice, "enabled = false");
    verified.at(disabled).curve(&alice).assert_refused(400);
    let stats = verified.stats();
    assert!(stats.connected && stats.last_error.is_none(), "{stats:?}");
    verified.stop();
    plain.stop();
}

#[test]
fn sslmode_require_encrypts_without_a_root_and_verify_ca_checks_the_chain_not_the_name() {
    let db = Db::new("tls_modes");
    let (root, _) = server_certificate(&db);
    let alice = Keys::generate();
    let seq = db.add_key(&alice, "alice");
    let require = tls_conninfo("any.name.invalid", "sslmode=require");
    let chain = format!("sslmode=verify-ca sslrootcert={}", root.display());
    let chain = tls_conninfo("any.name.invalid", &chain);
    let members = [
        Member::start_as(&db, 0, &require, |s| s),
        Member::start_as(&db, 1, &chain, |s| s),
    ];
    for member in &members {
        member.at(seq).curve(&alice).assert_admitted("alice");
        let (ssl, _) = encrypted(&db, &format!("actix-zap/{}", member.name)).unwrap();
        assert!(ssl, "{} is not encrypted", member.name);
    }
    members.into_iter().for_each(Member::stop);
}

#[test]
fn a_certificate_that_does_not_verify_is_refused_and_the_error_says_why() {
    let db = Db::new("tls_refused");
    let (root, name) = server_certificate(&db);
    let dir = tempfile::tempdir().unwrap();
    let unrelated = unrelated_root(dir.path());
    let alice = Keys::generate();
    db.add_key(&alice, "alice");
    // The right name, a root the server's certificate does not chain to.
    let tls = format!("sslmode=verify-full sslrootcert={}", unrelated.display());
    let other_root = Member::start_as(&db, 0, &tls_conninfo(&name, &tls), |s| s);
    // The right root, a name the certificate does not hold.
    let tls = format!("sslmode=verify-full sslrootcert={}", root.display());
    let wrong_name = Member::start_as(&db, 1, &tls_conninfo("wrong.invalid", &tls), |s| s);
    let error = error_of(&other_root, "does not chain to a root");
    assert!(
        error.contains(&unrelated.display().to_string()) && error.contains("port="),
        "{error}"
    );
    let error = error_of(&wrong_name, "not valid for name");
    assert!(error.contains("wrong.invalid"), "{error}");
    for member in [&other_root, &wrong_name] {
        // Never connected, never read: its domain refuses everyone.
        member.curve(&alice).assert_refused(500);
        let application = format!("actix-zap/{}", member.name);
        assert_eq!(encrypted(&db, &application), None, "no session got through");
    }
    other_root.stop();
    wrong_name.stop();
}

/// Runs `zapctl db ARGS` with `--database` and `--schema`, waiting for it; exit code,
/// stdout, stderr.
fn zapctl_with(database: &str, schema: &str, args: &[&str]) -> (i32, String, String) {
    let out = zapctl_command(database, schema, args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn zapctl_command(database: &str, schema: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_zapctl"));
    command
        .args(["db", "--schema", schema, "--database", database])
        .args(args)
        .env_remove("ZAPCTL_DATABASE")
        .env_remove("ZAPCTL_PASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// A connection of the test's own holding `LOCK TABLE {schema}.curve_keys IN SHARE MODE`
/// (writers wait) until it is dropped.
struct Locked {
    client: tokio_postgres::Client,
}

impl Locked {
    fn new(db: &Db) -> Locked {
        let (client, connection) = db.runtime.block_on(async {
            tokio_postgres::connect(&conninfo(), tokio_postgres::NoTls)
                .await
                .unwrap()
        });
        db.runtime.spawn(connection);
        let lock = db
            .store
            .sql("BEGIN; LOCK TABLE {schema}.curve_keys IN SHARE MODE");
        db.runtime.block_on(client.batch_execute(&lock)).unwrap();
        Locked { client }
    }

    fn release(self, db: &Db) {
        db.runtime
            .block_on(self.client.batch_execute("ROLLBACK"))
            .unwrap();
    }
}

#[test]
fn zapctl_db_with_verify_full_is_encrypted_as_the_server_sees_it() {
    let db = Db::new("tls_zapctl");
    let (root, name) = server_certificate(&db);
    let schema = db.store.schema().to_owned();
    let alice = Keys::generate();
    let member = Member::start(&db, 0, |s| s);
    let tls = format!("sslmode=verify-full sslrootcert={}", root.display());
    let database = tls_conninfo(&name, &tls);
    // The writers' lock is held, so zapctl's insert waits where the server can be asked
    // about its session.
    let locked = Locked::new(&db);
    let z85 = alice.public.to_z85();
    let args = ["key", "add", "fleet", &z85, "--user-id", "alice"];
    let child = zapctl_command(&database, &schema, &args).spawn().unwrap();
    let sql = "SELECT s.ssl, coalesce(s.version, '') FROM pg_stat_ssl s
               JOIN pg_stat_activity a USING (pid)
               WHERE a.application_name = 'zapctl' AND a.query LIKE '%' || $1 || '.curve_keys%'";
    let deadline = Instant::now() + PATIENCE;
    let (ssl, version): (bool, String) = loop {
        let rows = (db.runtime)
            .block_on(db.client.query(sql, &[&schema]))
            .unwrap();
        if let Some(row) = rows.first() {
            break (row.get(0), row.get(1));
        }
        assert!(Instant::now() < deadline, "zapctl's session never showed");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(ssl && version.starts_with("TLS"), "{ssl} {version}");
    locked.release(&db);
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    let (port, user, dbname) = target();
    let used = format!(
        "database host={name} hostaddr=127.0.0.1 port={port} user={user} dbname={dbname} \
         (sslmode verify-full), schema {schema}"
    );
    assert!(stdout.contains(&used), "{stdout}");
    member
        .at(db.latest())
        .curve(&alice)
        .assert_admitted("alice");
    member.stop();
}

#[test]
fn zapctl_db_refuses_a_root_that_does_not_verify_and_a_wrong_name() {
    let db = Db::new("tls_zapctl_refused");
    let (root, name) = server_certificate(&db);
    let dir = tempfile::tempdir().unwrap();
    let unrelated = unrelated_root(dir.path());
    let schema = db.store.schema();
    let tls = format!("sslmode=verify-full sslrootcert={}", unrelated.display());
    let (code, out, err) = zapctl_with(&tls_conninfo(&name, &tls), schema, &["list", "fleet"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("does not chain to a root of sslrootcert="),
        "{err}"
    );
    assert!(!out.contains("database"), "nothing was used: {out}");
    let tls = format!("sslmode=verify-ca sslrootcert={}", unrelated.display());
    let (code, _, err) = zapctl_with(&tls_conninfo(&name, &tls), schema, &["list", "fleet"]);
    assert_eq!(code, 1);
    assert!(err.contains("UnknownIssuer"), "{err}");
    let tls = format!("sslmode=verify-full sslrootcert={}", root.display());
    let wrong = tls_conninfo("wrong.invalid", &tls);
    let (code, _, err) = zapctl_with(&wrong, schema, &["list", "fleet"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("not valid for name \"wrong.invalid\"") && err.contains("hostaddr="),
        "{err}"
    );
    // The same root and name verify: the refusals were about them.
    let (code, out, err) = zapctl_with(&tls_conninfo(&name, &tls), schema, &["list", "fleet"]);
    assert_eq!(code, 0, "{out}{err}");
    // A root file that is not there is a usage error, before any connection.
    let missing = tls_conninfo(
        &name,
        "sslmode=verify-full sslrootcert=/nonexistent/root.pem",
    );
    let (code, _, err) = zapctl_with(&missing, schema, &["list", "fleet"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/root.pem"), "{err}");
}

#[test]
fn zapctl_db_never_prints_a_password_but_names_the_database() {
    let schema = "unused";
    for database in [
        "host=127.0.0.1 port=1 user=zapuser password=hunter2 dbname=zapdb",
        "postgresql://zapuser:hunter2@127.0.0.1:1/zapdb?application_name=x",
        "host=127.0.0.1 port=1 user=zapuser password='hunter2' dbname=zapdb sslmode=require",
    ] {
        let (code, out, err) = zapctl_with(database, schema, &["list", "fleet"]);
        assert_eq!(code, 1, "{out}{err}");
        assert!(
            !out.contains("hunter2") && !err.contains("hunter2"),
            "{out}{err}"
        );
        for shown in ["host=127.0.0.1", "port=1", "user=zapuser", "dbname=zapdb"] {
            assert!(err.contains(shown), "{shown} is not in {err}");
        }
        assert!(err.contains("Connection refused"), "the cause: {err}");
    }
    // A string that does not parse is not echoed either.
    let (code, _, err) = zapctl_with("host=h password=hunter2 sslcert=x", schema, &["list", "d"]);
    assert_eq!(code, 2);
    assert!(err.contains("sslcert") && !err.contains("hunter2"), "{err}");
}

#[test]
fn zapctl_db_statements_time_out_on_the_server_and_waits_on_the_client() {
    let db = Db::new("tls_timeouts");
    let schema = db.store.schema().to_owned();
    let z85 = Keys::generate().public.to_z85();
    // The server cancels a statement that waits longer than --timeout.
    let locked = Locked::new(&db);
    let started = Instant::now();
    let args = ["--timeout", "1", "key", "add", "fleet", &z85];
    let (code, out, err) = zapctl_with(&conninfo(), &schema, &args);
    locked.release(&db);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("statement timeout"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "{err}");
    assert_eq!(db.latest(), 0, "nothing was added");
    // A server that never answers: zapctl's own deadline ends the wait.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let holder = std::thread::spawn(move || {
        // Accept one connection and read what comes, answering nothing.
        if let Ok((mut stream, _)) = silent.accept() {
            let mut buffer = [0; 1024];
            while matches!(stream.read(&mut buffer), Ok(n) if n > 0) {}
        }
    });
    let database = format!("host=127.0.0.1 port={port} user=zapuser password=hunter2 dbname=z");
    let started = Instant::now();
    let (code, out, err) = zapctl_with(&database, &schema, &["--timeout", "1", "list", "fleet"]);
    let took = started.elapsed();
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("no answer within 1s") && err.contains(&format!("port={port}")),
        "{err}"
    );
    assert!(!err.contains("hunter2"));
    assert!(took < Duration::from_secs(10), "took {took:?}");
    holder.join().unwrap();
}
