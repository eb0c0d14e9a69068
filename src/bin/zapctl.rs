//! `zapctl`: the operator's command for ZeroMQ security — say why a connection fails
//! (`probe`), make or inspect CURVE certificates (`cert`), and manage the PostgreSQL
//! credential store (`db`, with the `postgres` feature).

#[path = "zapctl/cert.rs"]
mod cert;
#[cfg(feature = "postgres")]
#[path = "zapctl/db.rs"]
mod db;
#[path = "zapctl/json.rs"]
mod json;
#[path = "zapctl/probe.rs"]
mod probe;
#[path = "zapctl/secret.rs"]
mod secret;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// What `zapctl` prints after `--help`: the exit codes every script needs.
const EXIT_CODES: &str = "\
Exit codes of `zapctl probe`, one per outcome:
  0  admitted              the handshake succeeded
  2  usage error           bad arguments, unreadable key or certificate, no password
  3  refused               the authenticator said 400 (credentials, key or address)
  4  authenticator error   the authenticator said 500 (a server-side failure)
  5  stalled               connected, no outcome: a 300 (try later) or no answer at all
  6  protocol error        the client and server mechanisms differ (both named, read
                           from the server's greeting), or another ZMTP protocol error
  7  dropped               hung up during the handshake: most likely a wrong server key
  8  unreachable           nothing listening, connection refused and retried
  9  deadline passed       nothing conclusive before --timeout
`zapctl cert` exits 0 on success, 1 when a file cannot be written or read or `cert check`
finds a problem, 2 on a usage error.";

/// The exit codes of `zapctl cert`.
const CERT_EXIT_CODES: &str = "\
Exit codes: 0 success; 1 a file cannot be written or read, `cert new` found the key pair
already there (without --force), or `cert check` found a refused file, a duplicate key or a
permission problem; 2 usage error.";

#[derive(Debug, Parser)]
#[command(
    name = "zapctl",
    version,
    about = "Say why a ZeroMQ connection fails, and manage CURVE certificates",
    long_about = "Say why a ZeroMQ connection fails (`zapctl probe`), and make or inspect the \
                  CURVE certificates a ZAP authenticator loads (`zapctl cert`).",
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Connect to an endpoint and report how the security handshake ended
    #[command(after_help = EXIT_CODES)]
    #[command(
        long_about = "Connect to ENDPOINT as a client, watch the security handshake and \
        say in one line how it ended and what to change. No message is sent or received. \
        For a tcp:// endpoint the server's greeting is read first, over a connection of its \
        own (11 bytes out, 64 in, closed before any credentials travel), so that a client and server \
        using different mechanisms are named for certain.\n\n\
        The PLAIN password is read from the environment variable ZAPCTL_PASSWORD, or else from \
        the first line of standard input; never from an argument (arguments are visible to \
        every user of the machine)."
    )]
    Probe(probe::ProbeArgs),
    /// Make, show and check CURVE certificates (pyzmq and CZMQ layouts)
    #[command(subcommand, after_help = CERT_EXIT_CODES)]
    Cert(cert::CertCommand),
    /// Manage the PostgreSQL credential store that authenticators follow (keys, users)
    #[cfg(feature = "postgres")]
    #[command(after_help = db::DB_EXIT_CODES)]
    #[command(
        long_about = "Manage the PostgreSQL credential store that authenticators follow \
        (actix_zap::postgres): create its schema, add, disable, enable and remove CURVE \
        keys and PLAIN users, list a domain, grant writers and followers their rights, prune \
        the change log. Every command is one transaction; every authenticator following the \
        store applies it when it commits. A write prints its position (store UUID seq N): \
        SourceHandle::synced with it says when a server has it in force. PLAIN passwords are \
        read from ZAPCTL_PASSWORD or standard input, never empty, and stored as argon2id \
        hashes, never as text."
    )]
    Db(db::DbArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Probe(args) => probe::run(args),
        Command::Cert(command) => cert::run(command),
        #[cfg(feature = "postgres")]
        Command::Db(args) => db::run(args),
    };
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Z85 text may begin with '-' (one key in 85 does): it is a value, never taken for a flag.
    #[test]
    fn keys_that_begin_with_a_dash_are_values() {
        let key = "-Vq/T]f$PzP8:Ly+qPk.x5mnb-jnOi0}#SwN&#Hp";
        let probe = [
            "zapctl",
            "probe",
            "tcp://127.0.0.1:1",
            "--curve",
            "--server-key",
            key,
            "--cert",
            "c",
        ];
        let parsed = Cli::try_parse_from(probe).unwrap();
        assert!(format!("{parsed:?}").contains(key));
        #[cfg(feature = "postgres")]
        for db in [
            ["zapctl", "db", "key", "add", "fleet", key],
            ["zapctl", "db", "key", "remove", "fleet", key],
        ] {
            let parsed = Cli::try_parse_from(db).unwrap();
            assert!(format!("{parsed:?}").contains(key));
        }
    }
}
