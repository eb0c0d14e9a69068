//! A Kerberos realm of a test's own, on loopback: a KDC database in a temporary directory,
//! `krb5kdc -n` on 127.0.0.1 as a child process (killed and reaped on drop, also when the test
//! fails), a keytab for the server's service principal and, per client principal, a keytab and
//! a credential cache that `kinit -k -t` filled. Nothing of the machine's Kerberos is read: no
//! `/etc/krb5.conf`, no DNS, no system KDC (`./dev.sh test` installs the programs and starts no
//! service).
//!
//! Kerberos is configured through environment variables (`KRB5_CONFIG`, `KRB5_KDC_PROFILE`,
//! `KRB5_KTNAME`, `KRB5CCNAME`). Setting them in the multi-threaded test process would be a data
//! race, so they are only ever given to child processes: the Kerberos programs run here, and the
//! test's own body through [`isolated_in_realm`] (which runs it in a child with
//! [`Realm::server_env`]); a server child gives each client process [`client_env`].

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{child, PATIENCE};

/// The realm's name; each test's realm has its own KDC and files, so the name can repeat.
pub const REALM: &str = "ACTIX-ZAP.TEST";

/// The server's service principal, in the host-based form libzmq imports names with by default
/// (`ZMQ_GSSAPI_*PRINCIPAL_NAMETYPE` = `ZMQ_GSSAPI_NT_HOSTBASED`): `zmq@localhost` is the
/// Kerberos principal `zmq/localhost@REALM`. The client names the server this way
/// (`ZMQ_GSSAPI_SERVICE_PRINCIPAL`), and so may the server (`ZMQ_GSSAPI_PRINCIPAL`).
pub const SERVICE: &str = "zmq@localhost";

/// [`SERVICE`] as `kadmin.local` names it.
const SERVICE_PRINCIPAL: &str = "zmq/localhost";

/// Where a child finds the realm's directory.
const DIR_VARIABLE: &str = "ACTIX_ZAP_TEST_KRB5_DIR";

/// A client principal's full name, as the server's GSSAPI layer displays it (and libzmq sends it
/// in the ZAP request): `alice@ACTIX-ZAP.TEST`.
pub fn principal(client: &str) -> String {
    format!("{client}@{REALM}")
}

/// Runs `body` in a child process inside a realm with a principal per name of `clients`, like
/// [`child::isolated`]: in the test process, makes the realm and runs the child with
/// [`Realm::server_env`]; in the child, runs `body`. The KDC ends when the child has.
pub fn isolated_in_realm(test: &str, clients: &[&str], body: impl FnOnce()) {
    let realm = (!child::in_child(test)).then(|| Realm::start(clients));
    let env = realm.as_ref().map(Realm::server_env).unwrap_or_default();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    child::isolated(test, &env, body);
    drop(realm);
}

/// In a child of [`isolated_in_realm`]: the environment of `client`'s own process (its credential
/// cache). A process has one default cache, so each client principal needs a process.
pub fn client_env(client: &str) -> (&'static str, String) {
    let dir = std::env::var(DIR_VARIABLE).expect("not in a child of isolated_in_realm");
    let cache = Path::new(&dir).join(format!("{client}.ccache"));
    ("KRB5CCNAME", format!("FILE:{}", cache.display()))
}

/// A running realm; see the module's documentation.
pub struct Realm {
    kdc: Child,
    dir: tempfile::TempDir,
}

impl Realm {
    /// Makes the realm with a principal (and keytab, and credential cache) per name of
    /// `clients`, and starts its KDC.
    pub fn start(clients: &[&str]) -> Realm {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path();
        // The configuration names the KDC's port, which is known only once one is free; the
        // database does not depend on it.
        write_configuration(path, 0);
        let kerberos = |program: &str| kerberos_command(program, path);
        let password = "actix-zap-test-master-key"; // stashed; guards nothing outside the test
        run(
            kerberos("kdb5_util").args(["-r", REALM, "create", "-s", "-P", password]),
            None,
        );
        let mut script = String::new();
        for (principal, keytab) in std::iter::once((SERVICE_PRINCIPAL, "server"))
            .chain(clients.iter().map(|client| (*client, *client)))
        {
            let keytab = path.join(format!("{keytab}.keytab"));
            script += &format!("addprinc -randkey {principal}\n");
            script += &format!("ktadd -k {} {principal}\n", keytab.display());
        }
        // kadmin.local reads its commands from standard input, one a line.
        run(kerberos("kadmin.local").args(["-r", REALM]), Some(&script));
        let kdc = start_kdc(path);
        for client in clients {
            let keytab = path.join(format!("{client}.keytab"));
            let cache = format!("FILE:{}", path.join(format!("{client}.ccache")).display());
            let keytab = keytab.to_str().expect("a UTF-8 temporary path");
            run(
                kerberos("kinit").args(["-k", "-t", keytab, "-c", &cache, &principal(client)]),
                None,
            );
        }
        Realm { kdc, dir }
    }

    /// The server process's environment: the realm's configuration, the server's keytab, a
    /// replay cache of its own, a trace of every Kerberos call (shown when the test fails);
    /// the realm's directory for [`client_env`].
    ///
    /// The server's keytab is also its *client* keytab: a libzmq 4.3.4 server given its
    /// principal (`ZMQ_GSSAPI_PRINCIPAL`) acquires credentials to accept *and initiate*
    /// (`GSS_C_BOTH`), which fails without initiator credentials for that principal (a ticket
    /// cache holding them, or a client keytab: then it asks the KDC for a ticket-granting
    /// ticket, kept in the default cache). A server without a principal needs only the keytab.
    pub fn server_env(&self) -> Vec<(String, String)> {
        let path = self.dir.path();
        let file = |name: &str| path.join(name).display().to_string();
        let keytab = format!("FILE:{}", file("server.keytab"));
        vec![
            ("KRB5_CONFIG".into(), file("krb5.conf")),
            ("KRB5_KTNAME".into(), keytab.clone()),
            ("KRB5_CLIENT_KTNAME".into(), keytab),
            ("KRB5RCACHEDIR".into(), path.display().to_string()),
            ("KRB5_TRACE".into(), file("trace.log")),
            (DIR_VARIABLE.into(), path.display().to_string()),
        ]
    }
}

impl Drop for Realm {
    /// Ends the KDC; when the test failed, shows the KDC's log and the processes' trace first
    /// (the directory goes with the realm).
    fn drop(&mut self) {
        let _ = self.kdc.kill();
        let _ = self.kdc.wait();
        if std::thread::panicking() {
            for log in ["kdc.stderr", "kdc.log", "trace.log"] {
                let text = std::fs::read_to_string(self.dir.path().join(log)).unwrap_or_default();
                eprintln!("---- {log}\n{text}");
            }
        }
    }
}

/// Writes `kdc.conf` (the KDC's and kdb5_util's) and `krb5.conf` (everyone's) for a KDC on
/// 127.0.0.1:`port`. Only TCP is used (`udp_preference_limit = 1`), so that the KDC is ready
/// once its TCP port accepts. No DNS and no reverse lookups: `localhost` stays `localhost` in
/// the service principal whatever the machine's resolver says.
fn write_configuration(path: &Path, port: u16) {
    let dir = path.display();
    let kdc = format!(
        "[kdcdefaults]\n\
         \x20   kdc_listen = 127.0.0.1:{port}\n\
         \x20   kdc_tcp_listen = 127.0.0.1:{port}\n\
         [realms]\n\
         \x20   {REALM} = {{\n\
         \x20       database_name = {dir}/principal\n\
         \x20       key_stash_file = {dir}/stash\n\
         \x20   }}\n\
         [logging]\n\
         \x20   kdc = FILE:{dir}/kdc.log\n"
    );
    let krb5 = format!(
        "[libdefaults]\n\
         \x20   default_realm = {REALM}\n\
         \x20   dns_lookup_kdc = false\n\
         \x20   dns_lookup_realm = false\n\
         \x20   dns_canonicalize_hostname = false\n\
         \x20   rdns = false\n\
         \x20   udp_preference_limit = 1\n\
         \x20   default_ccache_name = FILE:{dir}/default.ccache\n\
         [realms]\n\
         \x20   {REALM} = {{\n\
         \x20       kdc = 127.0.0.1:{port}\n\
         \x20   }}\n\
         [domain_realm]\n\
         \x20   localhost = {REALM}\n"
    );
    std::fs::write(path.join("kdc.conf"), kdc).expect("writing kdc.conf");
    std::fs::write(path.join("krb5.conf"), krb5).expect("writing krb5.conf");
}

/// Starts `krb5kdc -n` (in the foreground: a child of this process) on a free port and waits
/// until it accepts connections. A port found free can be taken before the KDC binds it: then
/// the KDC exits, and another port is tried.
fn start_kdc(dir: &Path) -> Child {
    let mut failures = Vec::new();
    for _ in 0..3 {
        let port = free_port();
        write_configuration(dir, port);
        let stderr = std::fs::File::create(dir.join("kdc.stderr")).expect("kdc.stderr");
        let mut command = kerberos_command("krb5kdc", dir);
        command
            .args(["-n", "-r", REALM])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        // SAFETY: prctl is async-signal-safe and touches no memory of this process. Should the
        // thread that started the KDC end without dropping the realm (the test binary killed),
        // the KDC is killed too.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut kdc = command.spawn().expect("starting krb5kdc");
        match wait_until_listening(&mut kdc, port) {
            Ok(()) => return kdc,
            Err(why) => {
                let _ = kdc.kill();
                let _ = kdc.wait();
                let log = std::fs::read_to_string(dir.join("kdc.log")).unwrap_or_default();
                let stderr = std::fs::read_to_string(dir.join("kdc.stderr")).unwrap_or_default();
                failures.push(format!("port {port}: {why}\n{stderr}{log}"));
            }
        }
    }
    panic!("krb5kdc did not start:\n{}", failures.join("\n"));
}

/// Waits (at most [`PATIENCE`]) until `port` accepts a TCP connection, or the KDC exits.
fn wait_until_listening(kdc: &mut Child, port: u16) -> Result<(), String> {
    let address = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port).into();
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = kdc.try_wait().expect("waiting for krb5kdc") {
            return Err(format!("krb5kdc exited ({status})"));
        }
        if TcpStream::connect_timeout(&address, Duration::from_millis(100)).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("not listening after {PATIENCE:?}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().unwrap().port()
}

/// `program` with the realm's configuration in its environment (only in its own).
fn kerberos_command(program: &str, dir: &Path) -> Command {
    let mut command = Command::new(find_program(program));
    command
        .env("KRB5_CONFIG", dir.join("krb5.conf"))
        .env("KRB5_KDC_PROFILE", dir.join("kdc.conf"));
    command
}

/// The Kerberos programs are in `/usr/sbin` on Debian, which is not on every user's `PATH`.
fn find_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} not found: ./dev.sh test installs it (krb5-kdc, krb5-admin-server, \
                 krb5-user)"
            )
        })
}

/// Runs `command` to its end (with `input` on its standard input; at most [`PATIENCE`]) and
/// panics with its output unless it succeeded. The programs here write a few lines: the pipes
/// never fill.
fn run(command: &mut Command, input: Option<&str>) {
    let mut process = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let mut stdin = process.stdin.take().unwrap();
    if let Some(input) = input {
        stdin
            .write_all(input.as_bytes())
            .expect("writing to kadmin.local");
    }
    drop(stdin);
    let deadline = Instant::now() + PATIENCE;
    while process.try_wait().expect("waiting").is_none() {
        if Instant::now() >= deadline {
            let _ = process.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let output = process
        .wait_with_output()
        .expect("waiting for a Kerberos program");
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
