//! End-to-end handshake rate over tcp on 127.0.0.1, with this authenticator and with the
//! references it is judged against, measured in the same run in alternating rounds.
//!
//! ```text
//! cargo bench --bench handshake_rate -- --scenario curve-certs --clients 64 \
//!     --handshakes 2000 --rounds 5
//! ```
//!
//! Prints ONE line of `key=value` pairs, e.g.
//! `scenario=curve-certs mechanism=CURVE outcome=admitted clients=64 handshakes=2000 rounds=5
//! handshakes_per_s=... minimal_per_s=... no_handler_per_s=... ratio=... ...`
//!
//! - `handshakes_per_s`: this authenticator (a `ThreadAuthenticator` on the server's context).
//! - `minimal_per_s`: the floor — a plain thread with a REP socket on the same context that
//!   answers every request `200` (or `400` for the refused scenarios) without looking at it.
//! - `no_handler_per_s`: nothing bound to the ZAP endpoint, where libzmq then lets clients in
//!   (NULL with a domain, CURVE); `n/a` for PLAIN and the refused scenarios.
//! - `ratio`: the median over rounds of (ours / minimal responder) measured in the same round;
//!   for `curve-slow-provider` (an async provider that sleeps 20 ms) the reference is the same
//!   scenario with an instant async provider (`instant_per_s`, ratio = slow / instant).
//! - The refused scenarios (`plain-refused`: wrong password, `curve-refused`: unknown key)
//!   count refusals per second (server `HANDSHAKE_FAILED_AUTH` events with status 400).
//!
//! How it is measured: see `support/rate.rs`.

#[path = "support/rate.rs"]
mod rate;

use rate::{Keys, Scenario, MAX_CLIENTS};

struct Options {
    scenario: Scenario,
    clients: usize,
    handshakes: usize,
    rounds: usize,
    verbose: bool,
}

fn usage() -> String {
    let names: Vec<_> = Scenario::ALL.iter().map(|s| s.name()).collect();
    format!(
        "usage: handshake_rate --scenario <{}> [--clients 64] [--handshakes 2000] \
         [--rounds 5] [--verbose]",
        names.join("|")
    )
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        scenario: Scenario::CurveCerts,
        clients: 64,
        handshakes: 2000,
        rounds: 5,
        verbose: false,
    };
    // `cargo bench --bench handshake_rate -- FLAGS` passes `--bench` too.
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        let number = |text: String| text.parse::<usize>().map_err(|e| format!("{text}: {e}"));
        match arg.as_str() {
            "--scenario" => {
                let name = value()?;
                options.scenario =
                    Scenario::parse(&name).ok_or_else(|| format!("unknown scenario {name}"))?;
            }
            "--clients" => options.clients = number(value()?)?,
            "--handshakes" => options.handshakes = number(value()?)?,
            "--rounds" => options.rounds = number(value()?)?,
            "--verbose" | "-v" => options.verbose = true,
            "--help" | "-h" => return Err(usage()),
            // `cargo bench` passes --bench to every target; ignore it.
            other => return Err(format!("unknown argument {other}\n{}", usage())),
        }
    }
    if options.clients == 0 || options.handshakes == 0 || options.rounds == 0 {
        return Err("--clients, --handshakes and --rounds must be positive".into());
    }
    if options.clients > MAX_CLIENTS {
        return Err(format!(
            "--clients above {MAX_CLIENTS} would exceed libzmq's 1023 sockets per context"
        ));
    }
    Ok(options)
}

fn main() {
    let options = options().unwrap_or_else(|message| {
        eprintln!("{message}");
        std::process::exit(2)
    });
    let keys = Keys::generate();
    let rounds = rate::rounds(
        options.scenario,
        &keys,
        options.clients,
        options.handshakes,
        options.rounds,
        options.verbose,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    println!("{}", rounds.line());
}
