//! Guessing and floods (issue 18 items 1 and 2), measured with real sockets on 127.0.0.x.
//!
//! ```text
//! cargo bench --bench guessing -- flood [--mode one-user|spray] [--throttle on|off]
//!                                              [--attackers 4] [--seconds 6]
//!                                              [--attacker process|threads] [--nice 0]
//! cargo bench --bench guessing -- timing [--attempts 100]
//! cargo bench --bench guessing -- cost [--rounds 9] [--decisions 1000000]
//!                                             [--handshakes 2000] [--e2e-rounds 5]
//! cargo bench --bench guessing -- instructions <decide|check-decide> N
//! ```
//!
//! - `flood`: argon2id users (default parameters, as `zapctl db user add` hashes) behind a
//!   PLAIN server. `--attackers` raw ZMTP clients on 127.0.0.1 send HELLOs as fast as the
//!   server answers: wrong passwords for alice (`one-user`), or a new unknown username each
//!   time (`spray`). Meanwhile, every 50 ms, a libzmq client logs in, in turn from 127.0.0.2
//!   (libzmq's source-address form, `tcp://127.0.0.2:0;127.0.0.1:PORT`) and from 127.0.0.1,
//!   the attacker's address; each login is another user, so that each one runs argon2 (a
//!   user's success is remembered for a minute). Prints the time from connect to the
//!   server receiving the client's message (p50, p99, max; before the flood too), the
//!   logins that did not get in within 1 s, and what the attacker got (replies by reason,
//!   argon2 runs, `300`s). `--throttle off`: failure throttle and per-address caps off.
//!   `--attacker process` (the default) runs the attacker's clients in a child process of
//!   this tool (`guessing attack ENDPOINT MODE ATTACKERS`, stopped when its stdin closes), so
//!   that the legitimate logins are not timed in the process whose threads flood; `threads`
//!   runs them here, as the first measurements did. `--nice N` runs the child at that
//!   niceness, so that its clients take the cores only when the server does not want them
//!   (as an attacker's own machine would); `--attackers 0` is a control (the logins alone,
//!   at the same time of day). The 1-minute load average (other people's work on a shared
//!   machine included) is printed before and after. Besides each login's total, it prints
//!   the authenticator's own time for each admission (from its decision events) and each
//!   login split where its argon2 verification started on a worker (from a hidden hook,
//!   `BeforeVerificationForTests`).
//! - `timing`: a wrong password for a known username and an unknown username, in turn, one
//!   at a time over raw ZMTP (throttle off, so that every attempt is verified): median times
//!   to the refusal.
//! - `cost`: the throttle's cost. Sans-IO: parse + `Policy::decide` of a PLAIN request
//!   against parse + `Throttle::check` + decide, as the policy actor does them, in
//!   alternating rounds (ns per decision; an empty table, a table holding 10,000 other
//!   addresses, a table holding this address). End to end: the handshake rate (support/rate.rs)
//!   with the authenticator as configured by default against one with the throttle and caps
//!   off, in alternating rounds, for PLAIN admissions, PLAIN wrong passwords and unknown CURVE
//!   keys (which are counted as failures).
//! - `instructions`: a callgrind driver for the sans-IO comparison: N decisions of a scenario
//!   (`decide`, `check-decide`, `check-decide-others`, `check-decide-this`, `refuse`,
//!   `refuse-record`, `refuse-record-reparse`: see `instructions`). `valgrind --tool=callgrind
//!   --callgrind-out-file=/dev/null target/release/deps/guessing-HASH instructions
//!   check-decide 20000` (`cargo bench --no-run --bench guessing` prints the path); per
//!   decision: (I(20000) - I(10000)) / 10000.

#[path = "support/rate.rs"]
mod rate;
#[path = "support/zmtp.rs"]
mod zmtp;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_zap::messages::{AddPlainUsers, BeforeVerificationForTests, DecisionEvent, Subscriber};
use actix_zap::policy::{
    Attempt, Decision, HashedPassword, Now, PasswordTable, Policy, Throttle, ThrottleLimits,
};
use actix_zap::zap::StatusCode;
use actix_zap::zap::{Request, RequestBuilder};
use actix_zap::{Settings, ThreadAuthenticator};
use futures::executor::block_on;
use zmtp::{plain_hello, Hello};

const DOMAIN: &str = "hashed";
/// Logins per second during a flood (each one another user: `user-0`, `user-1`, ...).
const LOGINS_PER_S: usize = 20;

fn main() {
    // `cargo bench --bench guessing -- FLAGS` passes `--bench` too.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let option = |name: &str, default: &str| -> String {
        args.iter()
            .rposition(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    };
    let number = |name: &str, default: usize| -> usize {
        option(name, &default.to_string())
            .parse()
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    match args.first().map(String::as_str) {
        Some("flood") => flood(
            &option("--mode", "one-user"),
            option("--throttle", "on") == "on",
            number("--attackers", 4),
            Duration::from_secs(number("--seconds", 6) as u64),
            option("--attacker", "process") == "process",
            number("--nice", 0),
        ),
        Some("attack") => attack(
            args.get(1).expect("attack ENDPOINT MODE ATTACKERS"),
            args.get(2).map_or("one-user", String::as_str),
            args.get(3).map_or(4, |n| n.parse().expect("ATTACKERS")),
        ),
        Some("timing") => timing(number("--attempts", 100)),
        Some("cost") => cost(
            number("--rounds", 9),
            number("--decisions", 1_000_000),
            number("--handshakes", 2000),
            number("--e2e-rounds", 5),
        ),
        Some("instructions") => instructions(
            args.get(1).map_or("decide", String::as_str),
            args.get(2).map_or(10_000, |n| n.parse().expect("N")),
        ),
        _ => {
            eprintln!(
                "usage: guessing flood|attack|timing|cost|instructions (see the source's header)"
            );
            std::process::exit(2);
        }
    }
}

/// Settings with the throttle and the caps per address on (the defaults) or off.
fn settings(throttle: bool) -> Settings {
    if throttle {
        return Settings::default();
    }
    Settings::default()
        .with_throttle_capacity(0)
        .with_verifications_per_address(usize::MAX)
        .with_lookups_per_address(usize::MAX)
}

/// A running authenticator with hashed users alice and bob, and a PLAIN server for them.
struct Setup {
    server_context: zmq::Context,
    client_context: zmq::Context,
    auth: ThreadAuthenticator,
    server: zmq::Socket,
    endpoint: String,
    reasons: Arc<Mutex<BTreeMap<String, u64>>>,
    first_throttled: Arc<Mutex<Option<Instant>>>,
    /// The authenticator's own time (request read to reply) of each admission, by address.
    decided: Arc<Mutex<BTreeMap<String, Vec<Duration>>>>,
    /// When each argon2 verification started on a worker (the hidden test hook).
    argon2_starts: Arc<Mutex<Vec<Instant>>>,
}

impl Setup {
    fn new(settings: Settings, legitimate: usize) -> Setup {
        let server_context = zmq::Context::new();
        let auth = ThreadAuthenticator::builder()
            .settings(settings)
            .start(&server_context)
            .expect("authenticator");
        // alice, and the legitimate users (hashed on both cores).
        let names: Vec<String> = std::iter::once("alice".to_owned())
            .chain((0..legitimate).map(|k| format!("user-{k}")))
            .collect();
        let halves: Vec<Vec<String>> = names
            .chunks(names.len() / 2 + 1)
            .map(<[_]>::to_vec)
            .collect();
        let users: Vec<(String, HashedPassword)> = std::thread::scope(|scope| {
            let workers: Vec<_> = halves
                .into_iter()
                .map(|names| {
                    scope.spawn(move || {
                        names
                            .into_iter()
                            .map(|user| {
                                let password = format!("{user}'s password");
                                let hash = HashedPassword::hash(password.as_bytes());
                                (user, hash.expect("hash"))
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        block_on(auth.handle().send(AddPlainUsers::new(DOMAIN, users))).expect("users");
        let reasons = Arc::new(Mutex::new(BTreeMap::new()));
        let first_throttled = Arc::new(Mutex::new(None));
        let decided = Arc::new(Mutex::new(BTreeMap::new()));
        let (sink, first) = (Arc::clone(&reasons), Arc::clone(&first_throttled));
        let admissions = Arc::clone(&decided);
        let callback = move |event: &DecisionEvent| {
            if event.status == StatusCode::Ok {
                let mut admissions = admissions.lock().unwrap();
                let by_address: &mut Vec<Duration> =
                    admissions.entry(event.address.clone()).or_default();
                by_address.push(event.latency);
            }
            let reason = format!("{} {}", event.status, event.reason);
            if event.reason == "Too many failures" {
                first.lock().unwrap().get_or_insert_with(Instant::now);
            }
            *sink.lock().unwrap().entry(reason).or_insert(0) += 1;
        };
        auth.subscribe(Subscriber::Callback(Arc::new(callback)))
            .expect("subscribe");
        let argon2_starts = Arc::new(Mutex::new(Vec::new()));
        let starts = Arc::clone(&argon2_starts);
        let hook = BeforeVerificationForTests(Arc::new(move || {
            starts.lock().unwrap().push(Instant::now());
        }));
        block_on(auth.handle().send(hook)).expect("the argon2 hook");
        let server = server_context.socket(zmq::PULL).unwrap();
        server.set_linger(0).unwrap();
        server.set_plain_server(true).unwrap();
        server.set_zap_domain(DOMAIN).unwrap();
        server.set_backlog(1024).unwrap();
        server.bind("tcp://127.0.0.1:0").unwrap();
        let endpoint = server.get_last_endpoint().unwrap().unwrap();
        Setup {
            server_context,
            client_context: zmq::Context::new(),
            auth,
            server,
            endpoint,
            reasons,
            first_throttled,
            decided,
            argon2_starts,
        }
    }

    fn port(&self) -> &str {
        self.endpoint.rsplit(':').next().unwrap()
    }

    /// One libzmq login from `source`: the time until the server received its message, or
    /// `None` when nothing arrived within `patience`.
    fn login(&self, source: &str, user: &str, patience: Duration) -> Option<Duration> {
        let started = Instant::now();
        let client = self.client_context.socket(zmq::PUSH).unwrap();
        client.set_linger(0).unwrap();
        client.set_plain_username(Some(user)).unwrap();
        client
            .set_plain_password(Some(&format!("{user}'s password")))
            .unwrap();
        client
            .connect(&format!("tcp://{source}:0;127.0.0.1:{}", self.port()))
            .unwrap();
        client.send(user, zmq::DONTWAIT).unwrap();
        self.server
            .set_rcvtimeo(patience.as_millis() as i32)
            .unwrap();
        let mut message = zmq::Message::new();
        loop {
            self.server.recv(&mut message, 0).ok()?;
            // A late message of a login that timed out earlier is not this one's.
            if message.gets("Peer-Address") == Some(source) && &*message == user.as_bytes() {
                return Some(started.elapsed());
            }
            if started.elapsed() > patience {
                return None;
            }
        }
    }

    fn stop(self) {
        self.auth.stop();
        drop(self.server);
        drop(self.client_context);
        drop(self.server_context);
    }
}

/// Percentiles of a sample, in ms: (p50, p99, max).
fn percentiles(mut times: Vec<Duration>) -> String {
    if times.is_empty() {
        return "n=0".into();
    }
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "n={} p50={:.1}ms p99={:.1}ms max={:.1}ms",
        times.len(),
        ms(at(0.5)),
        ms(at(0.99)),
        ms(*times.last().unwrap())
    )
}

/// Each login's time (from `at`, taking `took`) split where its argon2 verification started:
/// the first start within it. Meaningful only while the attacker runs no argon2 (`one-user`
/// once throttled; not `spray`): the logins run one at a time.
fn split_at_argon2(
    logins: &[(Instant, Duration)],
    starts: &[Instant],
) -> (Vec<Duration>, Vec<Duration>) {
    let mut starts = starts.to_vec();
    starts.sort();
    let (mut before, mut on) = (Vec::new(), Vec::new());
    for (at, took) in logins {
        let first = starts.partition_point(|start| start < at);
        if let Some(start) = starts.get(first).filter(|s| **s <= *at + *took) {
            before.push(start.duration_since(*at));
            on.push(*took - start.duration_since(*at));
        }
    }
    (before, on)
}

/// CPU time (user + system) of this process's threads by name (`/proc/self/task/*/stat`;
/// empty where there is none).
fn thread_cpu() -> BTreeMap<String, Duration> {
    let mut by_name = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return by_name;
    };
    // Clock ticks are 100 a second on Linux.
    let tick = Duration::from_millis(10);
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_owned();
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u32>().ok())
                .unwrap_or(0)
        };
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        *by_name.entry(name).or_default() += tick * (ticks(11) + ticks(12));
    }
    by_name
}

/// The 1-minute load average (`/proc/loadavg`), or `None` where there is none.
fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// The attacker's clients: `attackers` threads sending PLAIN HELLOs to `endpoint` as fast as
/// the server answers, until `stop`. Answers (guesses, closed without an `ERROR`).
fn guess(endpoint: &str, spray: bool, attackers: usize, stop: &AtomicBool) -> (usize, usize) {
    let guesses = AtomicUsize::new(0);
    let closed = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for n in 0..attackers {
            let (guesses, closed) = (&guesses, &closed);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let g = guesses.fetch_add(1, Ordering::Relaxed);
                    let user = if spray {
                        format!("user-{n}-{g}")
                    } else {
                        "alice".to_owned()
                    };
                    let guess = format!("guess-{n}-{g}");
                    if plain_hello(endpoint, user.as_bytes(), guess.as_bytes()) == Hello::Closed {
                        closed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    (guesses.into_inner(), closed.into_inner())
}

/// `guessing attack ENDPOINT MODE ATTACKERS`: the attacker as a child process. Floods until
/// its stdin closes, then prints `guesses=N closed=M`.
fn attack(endpoint: &str, mode: &str, attackers: usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = Arc::clone(&stop);
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        watcher.store(true, Ordering::Relaxed);
    });
    let (guesses, closed) = guess(endpoint, mode == "spray", attackers, &stop);
    println!("guesses={guesses} closed={closed}");
}

/// The attacker, running until `stop` is called: a child process, or threads of this one.
enum Attacker {
    Process(std::process::Child),
    Threads(Arc<AtomicBool>, std::thread::JoinHandle<(usize, usize)>),
}

impl Attacker {
    fn start(
        endpoint: &str,
        mode: &str,
        attackers: usize,
        in_process: bool,
        nice: usize,
    ) -> Attacker {
        if in_process {
            let stop = Arc::new(AtomicBool::new(false));
            let (endpoint, spray, flag) = (endpoint.to_owned(), mode == "spray", stop.clone());
            let thread = std::thread::spawn(move || guess(&endpoint, spray, attackers, &flag));
            return Attacker::Threads(stop, thread);
        }
        let this = std::env::current_exe().expect("this tool");
        let child = std::process::Command::new("nice")
            .arg(format!("-n{nice}"))
            .arg(this)
            .args(["attack", endpoint, mode, &attackers.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("the attacker's process");
        Attacker::Process(child)
    }

    /// Stops the flood: (guesses, closed without an `ERROR`).
    fn stop(self) -> (usize, usize) {
        match self {
            Attacker::Threads(stop, thread) => {
                stop.store(true, Ordering::Relaxed);
                thread.join().unwrap()
            }
            Attacker::Process(mut child) => {
                drop(child.stdin.take());
                let out = child.wait_with_output().expect("the attacker's report");
                let text = String::from_utf8_lossy(&out.stdout);
                let field = |name: &str| -> usize {
                    text.split_whitespace()
                        .find_map(|f| f.strip_prefix(name))
                        .and_then(|n| n.parse().ok())
                        .unwrap_or_else(|| panic!("the attacker said {text:?}"))
                };
                (field("guesses="), field("closed="))
            }
        }
    }
}

fn flood(
    mode: &str,
    throttle: bool,
    attackers: usize,
    seconds: Duration,
    child: bool,
    nice: usize,
) {
    let legitimate = 11 + seconds.as_secs() as usize * LOGINS_PER_S;
    let setup = Setup::new(settings(throttle), legitimate);
    let patience = Duration::from_secs(1);
    let mut users = (0..legitimate).map(|k| format!("user-{k}"));
    // Before the flood: the cost of a login on a quiet server (the first starts the workers).
    let quiet: Vec<Duration> = (0..11)
        .filter_map(|n| {
            let source = ["127.0.0.2", "127.0.0.1"][n % 2];
            let took = setup.login(source, &users.next().unwrap(), patience);
            took.filter(|_| n > 0)
        })
        .collect();

    let load_before = load_average();
    setup.decided.lock().unwrap().clear();
    let cpu_before = thread_cpu();
    let started = Instant::now();
    let attacker = Attacker::start(&setup.endpoint, mode, attackers, !child, nice);
    // Let the flood build up, then log in every 50 ms.
    std::thread::sleep(Duration::from_millis(300));
    let (mut other_address, mut attacker_address) = (Vec::new(), Vec::new());
    let (mut missed_other, mut missed_attacker) = (0, 0);
    let mut logins = Vec::new();
    let mut turn = 0;
    while started.elapsed() < seconds {
        let source = ["127.0.0.2", "127.0.0.1"][turn % 2];
        let Some(user) = users.next() else {
            break;
        };
        let at = Instant::now();
        let took = setup.login(source, &user, patience);
        if let Some(took) = took {
            logins.push((at, took));
        }
        match (took, turn % 2 == 0) {
            (Some(took), true) => other_address.push(took),
            (Some(took), false) => attacker_address.push(took),
            (None, true) => missed_other += 1,
            (None, false) => missed_attacker += 1,
        }
        turn += 1;
        std::thread::sleep(Duration::from_millis(1000 / LOGINS_PER_S as u64));
    }
    let load_after = load_average();
    let cpu_after = thread_cpu();
    let (guesses, closed) = attacker.stop();
    let elapsed = started.elapsed();
    let stats = setup.auth.stats().expect("stats");
    let first_throttled = setup
        .first_throttled
        .lock()
        .unwrap()
        .map(|at| at.saturating_duration_since(started));
    println!(
        "flood mode={mode} throttle={} attackers={attackers} attacker={} seconds={:.1} \
         load_average={load_before:?}..{load_after:?}",
        if throttle { "on" } else { "off" },
        if child {
            format!("process(nice {nice})")
        } else {
            "threads".to_owned()
        },
        elapsed.as_secs_f64()
    );
    println!("  quiet server:          {}", percentiles(quiet));
    println!(
        "  from 127.0.0.2:        {}  not admitted within 1 s: {missed_other}",
        percentiles(other_address)
    );
    println!(
        "  from 127.0.0.1:        {}  not admitted within 1 s: {missed_attacker}",
        percentiles(attacker_address)
    );
    for (address, times) in setup.decided.lock().unwrap().iter() {
        let times = times.clone();
        println!(
            "    decided (read to reply), {address}: {}",
            percentiles(times)
        );
    }
    let (before, on) = split_at_argon2(&logins, &setup.argon2_starts.lock().unwrap());
    println!("    connect to argon2 start:   {}", percentiles(before));
    println!("    argon2 start to admitted:  {}", percentiles(on));
    println!(
        "  attacker: {guesses} guesses ({:.0}/s), {closed} closed without an ERROR (300), \
         throttle engaged after {first_throttled:?}",
        guesses as f64 / elapsed.as_secs_f64(),
    );
    let flood_time = cpu_after.keys().map(String::as_str);
    let busy: Vec<String> = flood_time
        .map(|name| {
            let spent =
                cpu_after[name].saturating_sub(*cpu_before.get(name).unwrap_or(&Duration::ZERO));
            (name, spent)
        })
        .filter(|(_, spent)| !spent.is_zero())
        .map(|(name, spent)| {
            let share = spent.as_secs_f64() / seconds.as_secs_f64() * 100.0;
            format!("{name} {share:.0}%")
        })
        .collect();
    println!(
        "  server threads' CPU (of one core, during the logins): {}",
        busy.join(", ")
    );
    println!(
        "  argon2 runs: {} ({:.1}/s), 300s sent: {}, throttle entries: {}",
        stats.verifications,
        stats.verifications as f64 / elapsed.as_secs_f64(),
        stats.count(StatusCode::TryLater),
        stats.throttle_entries
    );
    for (reason, count) in setup.reasons.lock().unwrap().iter() {
        println!("  {count:>8}  {reason}");
    }
    setup.stop();
}

fn timing(attempts: usize) {
    let setup = Setup::new(settings(false), 0);
    let time = |user: &[u8]| {
        let started = Instant::now();
        let answer = plain_hello(&setup.endpoint, user, b"wrong");
        assert_eq!(answer, Hello::Error("400".into()));
        started.elapsed()
    };
    // Warm-up: the workers start on the first verification.
    time(b"alice");
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for n in 0..attempts {
        known.push(time(b"alice"));
        unknown.push(time(format!("nobody-{n}").as_bytes()));
    }
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let (k, u) = (median(&mut known.clone()), median(&mut unknown.clone()));
    println!(
        "timing attempts={attempts} known_median={:.2}ms unknown_median={:.2}ms \
         unknown/known={:.3}",
        k.as_secs_f64() * 1e3,
        u.as_secs_f64() * 1e3,
        u.as_secs_f64() / k.as_secs_f64()
    );
    println!("  known (wrong password): {}", percentiles(known));
    println!("  unknown username:       {}", percentiles(unknown));
    for (reason, count) in setup.reasons.lock().unwrap().iter() {
        println!("  {count:>8}  {reason}");
    }
    setup.stop();
}

/// The PLAIN policy of the sans-IO benchmark (as benches/decision.rs: one clear-text user).
fn plain_policy() -> (Policy, Vec<Vec<u8>>) {
    let mut policy = Policy::default();
    let table = PasswordTable::new([("admin", "secret")]);
    policy.configure_plain("*", table).unwrap();
    let frames = RequestBuilder::plain("admin", "secret")
        .domain("global")
        .frames();
    (policy, frames)
}

/// One decision as the policy actor takes it: parse, (check,) decide.
#[inline(never)]
fn decide(policy: &Policy, throttle: Option<&Throttle>, frames: &[Vec<u8>], now: &Now) -> bool {
    let request = Request::parse(black_box(frames)).expect("parses");
    if let Some(throttle) = throttle {
        if throttle.check(&request, now.instant()).is_some() {
            return false;
        }
    }
    matches!(policy.decide(&request, now), Decision::Reply(reply) if reply.user_id == "admin")
}

/// ns per decision over `n` decisions.
fn per_decision(policy: &Policy, throttle: Option<&Throttle>, frames: &[Vec<u8>], n: usize) -> f64 {
    let now = Now::at(Instant::now());
    let started = Instant::now();
    for _ in 0..n {
        assert!(black_box(decide(policy, throttle, frames, &now)));
    }
    started.elapsed().as_nanos() as f64 / n as f64
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    sorted[sorted.len() / 2]
}

fn cost(rounds: usize, decisions: usize, handshakes: usize, e2e_rounds: usize) {
    let (policy, frames) = plain_policy();
    let now = Instant::now();
    let empty = Throttle::default();
    let others = others(now);
    let mut this_address = Throttle::new(ThrottleLimits::default());
    this_address.failed_plain("127.0.0.1", b"someone-else", now);
    let tables: [(&str, &Throttle); 3] = [
        ("empty table", &empty),
        ("10,000 other addresses", &others),
        ("this address (another username)", &this_address),
    ];
    println!(
        "cost sans-IO: PLAIN admission, parse + decide vs parse + check + decide \
         ({rounds} x 100 alternating batches of {} decisions)",
        decisions / 100
    );
    let batch = (decisions / 100).max(1);
    per_decision(&policy, None, &frames, decisions / 10);
    for (name, throttle) in tables {
        let (mut without, mut with, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for pair in 0..rounds * 100 {
            let (a, b) = if pair % 2 == 0 {
                let a = per_decision(&policy, None, &frames, batch);
                (a, per_decision(&policy, Some(throttle), &frames, batch))
            } else {
                let b = per_decision(&policy, Some(throttle), &frames, batch);
                (per_decision(&policy, None, &frames, batch), b)
            };
            without.push(a);
            with.push(b);
            ratios.push(b / a);
        }
        let fastest = |v: &[f64]| v.iter().cloned().fold(f64::INFINITY, f64::min);
        println!(
            "  {name:<34} median without={:.1}ns with={:.1}ns, median of the pair ratios={:.3}; \
             fastest batch without={:.1}ns with={:.1}ns ({:.3})",
            median(&without),
            median(&with),
            median(&ratios),
            fastest(&without),
            fastest(&with),
            fastest(&with) / fastest(&without),
        );
    }

    if e2e_rounds == 0 {
        return;
    }
    println!("cost end to end: handshakes/s, default settings vs throttle and caps off");
    let keys = rate::Keys::generate();
    for scenario in [
        rate::Scenario::Plain,
        rate::Scenario::PlainRefused,
        rate::Scenario::CurveRefused,
    ] {
        let handlers = [rate::Handler::Authenticator, rate::Handler::Unthrottled];
        for handler in handlers {
            rate::run(scenario, handler, &keys, 64, handshakes / 5).expect("warm-up");
        }
        let (mut on, mut off, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..e2e_rounds {
            let mut rates = [0.0; 2];
            for i in 0..2 {
                let h = (i + round) % 2;
                let run = rate::run(scenario, handlers[h], &keys, 64, handshakes).expect("run");
                assert_eq!(run.unexpected, 0, "{}", scenario.name());
                rates[h] = run.per_s();
            }
            on.push(rates[0]);
            off.push(rates[1]);
            ratios.push(rates[0] / rates[1]);
        }
        println!(
            "  {:<14} throttle_on={:.0}/s off={:.0}/s median_ratio={:.3} (rounds {:.3}..{:.3})",
            scenario.name(),
            median(&on),
            median(&off),
            median(&ratios),
            ratios.iter().cloned().fold(f64::INFINITY, f64::min),
            ratios.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
        );
    }
}

/// A throttle holding 10,000 IPv4 addresses other than 127.0.0.1.
fn others(now: Instant) -> Throttle {
    let mut others = Throttle::default();
    for n in 0..10_000u32 {
        let [a, b, c, d] = (0x0a00_0000 + n).to_be_bytes();
        others.failed_address(&format!("{a}.{b}.{c}.{d}"), now);
    }
    others
}

/// How a refusal is counted after the reply: not at all, from the request's facts (as the
/// policy actor does since the username travels with them), or by parsing the frames again
/// (as it did before).
#[derive(Clone, Copy, PartialEq)]
enum Counting {
    Off,
    Facts,
    Reparse,
}

/// A wrong password: the refusal as the actor takes it, then what it does after the reply
/// with the throttle: `Throttle::counts`, then `Throttle::record_attempt` with the attempt
/// read when the request arrived, or (`Reparse`) parse again and `Throttle::record`.
#[inline(never)]
fn refuse(
    policy: &Policy,
    throttle: &mut Throttle,
    counting: Counting,
    frames: &[Vec<u8>],
    now: &Now,
) {
    let request = Request::parse(black_box(frames)).expect("parses");
    let Decision::Reply(reply) = policy.decide(&request, now) else {
        panic!("a reply")
    };
    if counting != Counting::Off && Throttle::counts(&reply) {
        if counting == Counting::Reparse {
            let again = Request::parse(frames).expect("parses");
            throttle.record(&again, &reply, now.instant());
        } else {
            throttle.record_attempt(Attempt::of(&request), &reply, now.instant());
        }
    }
    black_box(reply);
}

/// `decide`, `check-decide` (empty table), `check-decide-others` (10,000 other addresses),
/// `check-decide-this` (this address, another username); `refuse`, `refuse-record` and
/// `refuse-record-reparse` (a wrong password: without the throttle's counting, with it as the
/// actor counts now, and with it as the actor counted before, parsing the frames again).
fn instructions(which: &str, n: usize) {
    let (policy, frames) = plain_policy();
    let now = Now::at(Instant::now());
    let mut throttle = match which {
        "check-decide-others" => others(now.instant()),
        _ => Throttle::default(),
    };
    if which == "check-decide-this" {
        throttle.failed_plain("127.0.0.1", b"someone-else", now.instant());
    }
    if which.starts_with("refuse") {
        let wrong = RequestBuilder::plain("admin", "wrong")
            .domain("global")
            .frames();
        let counting = match which {
            "refuse-record" => Counting::Facts,
            "refuse-record-reparse" => Counting::Reparse,
            _ => Counting::Off,
        };
        for _ in 0..n {
            refuse(&policy, &mut throttle, counting, &wrong, &now);
        }
        return;
    }
    let throttle = (which != "decide").then_some(&throttle);
    let mut admitted = 0;
    for _ in 0..n {
        admitted += usize::from(decide(&policy, throttle, &frames, &now));
    }
    assert_eq!(admitted, n);
}
