//! Start-up that says what is wrong: `serve` refuses, typed, a store that cannot be followed
//! (missing, unmigrated, of a newer version), and treats a database out of reach as an
//! outage (it answers, the domain refuses everyone, the stats say why); and a source's
//! `last_error` keeps its cause and clears once it recovers.

use std::time::{Duration, Instant};

use super::*;
use actix_zap::postgres::StoreError;

/// Serves domain `fleet` of `store` with the test database; the error `serve` answers.
fn serve_error(store: &Store) -> ConfigError {
    let (_context, auth) = started();
    let source = PostgresSource::new(&conninfo(), ["fleet"])
        .unwrap()
        .store(store.clone())
        .named(format!("{}-refused", store.schema()));
    let error = match block_on(auth.handle().serve(source)) {
        Ok(_) => panic!("served a store that cannot be followed"),
        Err(error) => error,
    };
    // Nothing was registered.
    assert!(auth.stats().unwrap().sources.is_empty());
    auth.stop();
    error
}

#[test]
fn serve_refuses_a_missing_store_and_says_to_migrate() {
    let store = Store::new(&format!("fleet_{}_never_migrated", std::process::id())).unwrap();
    let error = serve_error(&store);
    match &error {
        ConfigError::Store(StoreError::Missing { schema, database }) => {
            assert_eq!(schema, store.schema());
            assert!(database.contains("port="), "{database}");
        }
        other => panic!("{other:?}"),
    }
    let text = error.to_string();
    assert!(text.contains("zapctl db migrate"), "{text}");
}

#[test]
fn serve_refuses_an_unmigrated_store_and_says_to_migrate() {
    let db = Db::new("unmigrated");
    // A store older than this crate follows (this one's migrations recorded as not run).
    db.execute("DELETE FROM {schema}.schema_migrations");
    let error = serve_error(&db.store);
    match &error {
        ConfigError::Store(StoreError::Unmigrated { found, known, .. }) => {
            assert_eq!((*found, *known), (0, actix_zap::postgres::SCHEMA_VERSION));
        }
        other => panic!("{other:?}"),
    }
    assert!(error.to_string().contains("zapctl db migrate"), "{error}");
}

#[test]
fn serve_refuses_a_store_of_a_newer_version_and_says_to_upgrade() {
    let db = Db::new("newer");
    db.execute("INSERT INTO {schema}.schema_migrations (version) VALUES (99)");
    let error = serve_error(&db.store);
    match &error {
        ConfigError::Store(StoreError::NewerSchema { found: 99, known }) => {
            assert_eq!(*known, actix_zap::postgres::SCHEMA_VERSION);
        }
        other => panic!("{other:?}"),
    }
    assert!(error.to_string().contains("upgrade this server"), "{error}");
}

#[test]
fn an_unreachable_database_is_an_outage_the_domain_refuses_and_the_stats_say_why() {
    let db = Db::new("unreachable");
    let alice = Keys::generate();
    db.add_key(&alice, "alice");
    let closed = "host=127.0.0.1 port=1 user=zapuser password=hunter2 dbname=zapdb";
    // `serve` answers (start_as unwraps it): an outage is no configuration error.
    let member = Member::start_as(&db, 0, closed, |s| s);
    let deadline = Instant::now() + PATIENCE;
    let error = loop {
        let stats = member.stats();
        if let Some(error) = stats.last_error.clone() {
            assert!(
                !stats.connected && stats.last_error_at.is_some(),
                "{stats:?}"
            );
            break error;
        }
        assert!(Instant::now() < deadline, "no error reported: {stats:?}");
        std::thread::sleep(Duration::from_millis(10));
    };
    for shown in ["host=127.0.0.1", "port=1", "user=zapuser", "dbname=zapdb"] {
        assert!(error.contains(shown), "{shown} is not in {error}");
    }
    assert!(error.contains("Connection refused"), "the cause: {error}");
    assert!(!error.contains("hunter2"), "{error}");
    member.curve(&alice).assert_refused(500);
    assert!(member.stats().failed_closed);
    member.stop();
}

#[test]
fn last_error_keeps_its_cause_and_clears_on_recovery_keeping_its_time() {
    let mut db = Db::new("recovery");
    let role = db.role();
    let alice = Keys::generate();
    let first = db.add_key(&alice, "alice");
    let conninfo = format!("{} user={role}", conninfo());
    let member = Member::start_as(&db, 0, &conninfo, |s| s);
    member.at(first).curve(&alice).assert_admitted("alice");
    assert_eq!(member.stats().last_error_at, None);
    db.execute(&format!("ALTER ROLE {role} NOLOGIN"));
    db.terminate_sources();
    let deadline = Instant::now() + PATIENCE;
    let (error, at) = loop {
        let stats = member.stats();
        let wanted = stats.last_error.clone();
        if let Some(error) = wanted.filter(|e| e.contains("not permitted to log in")) {
            break (error, stats.last_error_at.unwrap());
        }
        assert!(Instant::now() < deadline, "{stats:?}");
        std::thread::sleep(Duration::from_millis(10));
    };
    // The server's message, not "db error", with the database it came from.
    assert!(error.contains(&role) && error.contains("port="), "{error}");
    assert!(!error.contains("db error"), "{error}");
    let back = db.execute(&format!("ALTER ROLE {role} LOGIN"));
    member.at(back);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let stats = member.stats();
        if stats.connected && stats.last_error.is_none() {
            assert!(stats.last_error_at.unwrap() >= at, "{stats:?}");
            break;
        }
        assert!(Instant::now() < deadline, "never recovered: {stats:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    member.curve(&alice).assert_admitted("alice");
    member.stop();
}

/// A throwaway PostgreSQL cluster of the test's own, started as a hot standby (a fresh
/// `initdb` with `standby.signal`: in recovery, read-only, `LISTEN` refused) on a free port;
/// stopped when dropped. Made with the local PostgreSQL's programs (`PG_BINDIR`, else the
/// newest `/usr/lib/postgresql/*/bin`), as the `postgres` user when the test runs as root.
struct Standby {
    bin: std::path::PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl Standby {
    fn start() -> Standby {
        let bin = std::env::var_os("PG_BINDIR")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                let mut found: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
                    .ok()?
                    .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                    .filter(|bin| bin.join("initdb").exists())
                    .collect();
                found.sort_by_key(|bin| {
                    let version = bin.parent().and_then(|v| v.file_name());
                    version.and_then(|v| v.to_str()?.parse::<u32>().ok())
                });
                found.pop()
            })
            .expect("PostgreSQL's programs (initdb, pg_ctl): set PG_BINDIR");
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let standby = Standby { bin, dir, port };
        if Standby::as_root() {
            let chown = std::process::Command::new("chown")
                .arg("postgres")
                .arg(standby.dir.path())
                .status()
                .unwrap();
            assert!(chown.success());
        }
        let data = standby.dir.path().join("data");
        standby.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        std::fs::write(data.join("standby.signal"), "").unwrap();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c shared_buffers=8MB",
            standby.dir.path().display()
        );
        let log = standby.dir.path().join("log");
        standby.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
        standby
    }

    fn as_root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let mut command = if Standby::as_root() {
            let mut command = std::process::Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            std::process::Command::new(&program)
        };
        let out = command
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} {args:?}: {}{}",
            program.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let program = self.bin.join("pg_ctl");
        let args = ["-D", data.to_str().unwrap(), "-m", "immediate", "stop"];
        let mut command = if Standby::as_root() {
            let mut command = std::process::Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            std::process::Command::new(&program)
        };
        let _ = command.args(args).output();
    }
}

#[test]
fn serve_refuses_a_hot_standby_where_listen_is_refused() {
    init_logging();
    let standby = Standby::start();
    let database = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres",
        standby.port
    );
    let (_context, auth) = started();
    let source = PostgresSource::new(&database, ["fleet"]).unwrap();
    let error = match block_on(auth.handle().serve(source)) {
        Ok(_) => panic!("served a hot standby"),
        Err(error) => error,
    };
    match &error {
        ConfigError::Store(StoreError::HotStandby { database }) => {
            assert!(
                database.contains(&format!("port={}", standby.port)),
                "{database}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(error.to_string().contains("primary"), "{error}");
    assert!(auth.stats().unwrap().sources.is_empty());
    auth.stop();
}
