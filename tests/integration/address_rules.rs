//! Address rules that take access away keep it away, end to end with real sockets: an
//! emptied allow-list refuses everyone until it is cleared on purpose, `"*"` is no scope
//! for address rules, and peers that are not bare IPs — `ipc://` clients and IPv6
//! link-local clients with a zone — are decided explicitly instead of slipping past a
//! deny-list.

use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::mpsc::{channel, Receiver};
use std::sync::Mutex;

use crate::common::*;
use actix_zap::messages::{
    ClearAddressRules, DecisionEvent, RemoveAddresses, SetAddressRules, SetDomainAddressRules,
};
use actix_zap::policy::{AddressRules, AddressSet, IpcRule, PolicyError};
use actix_zap::{ConfigError, ThreadAuthenticator};

/// Every decision of one authenticator, in order, to read the status text of each attempt.
struct Decisions(Receiver<DecisionEvent>);

impl Decisions {
    fn follow(auth: &ThreadAuthenticator) -> Decisions {
        let (tx, rx) = channel();
        let tx = Mutex::new(tx);
        auth.on_decision(move |event| {
            let _ = tx.lock().unwrap().send(event.clone());
        })
        .unwrap();
        Decisions(rx)
    }

    fn next(&self) -> DecisionEvent {
        self.0.recv_timeout(PATIENCE).expect("a decision event")
    }

    /// The outcome was a refusal with this pyzmq status text.
    fn refused(&self, outcome: Outcome, reason: &str) -> DecisionEvent {
        outcome.assert_refused(400);
        let event = self.next();
        assert_eq!(event.reason, reason);
        event
    }

    /// The outcome was an admission as `anonymous` (NULL).
    fn admitted(&self, outcome: Outcome) -> DecisionEvent {
        outcome.assert_admitted("anonymous");
        let event = self.next();
        assert_eq!(event.status.as_u16(), 200);
        event
    }
}

fn null_attempt(server: &Listening, context: &zmq::Context) -> Outcome {
    server.attempt(context, &Client::Null)
}

fn send<M, T>(auth: &ThreadAuthenticator, message: M) -> Result<T, ConfigError>
where
    M: actix::Message<Result = Result<T, ConfigError>> + Send + 'static,
    T: Send + 'static,
    actix_zap::actors::PolicyActor: actix::Handler<M>,
{
    futures::executor::block_on(auth.handle().send(message))
}

fn policy_error(result: Result<impl std::fmt::Debug, ConfigError>) -> PolicyError {
    match result {
        Err(ConfigError::Policy(error)) => error,
        other => panic!("expected a policy error, got {other:?}"),
    }
}

#[test]
fn an_allow_list_emptied_by_removal_refuses_everyone_until_cleared() {
    let (ctx, auth) = started();
    let decisions = Decisions::follow(&auth);
    let server = Listening::new(&ctx, &Server::Null, Some("global"));
    auth.allow(["127.0.0.1"]).unwrap();
    decisions.admitted(null_attempt(&server, &ctx));

    assert_eq!(auth.remove_addresses(["127.0.0.1"]).unwrap(), 1);
    decisions.refused(null_attempt(&server, &ctx), "Address not allowed");

    auth.clear_addresses().unwrap();
    decisions.admitted(null_attempt(&server, &ctx));
    drop(server);
    auth.stop();
}

#[test]
fn a_domain_allow_list_emptied_by_removal_refuses_its_domain_until_cleared() {
    let (ctx, auth) = started();
    let decisions = Decisions::follow(&auth);
    let guarded = Listening::new(&ctx, &Server::Null, Some("guarded"));
    let other = Listening::new(&ctx, &Server::Null, Some("other"));
    auth.allow_in("guarded", ["127.0.0.1"]).unwrap();
    decisions.admitted(null_attempt(&guarded, &ctx));

    let removed = send(
        &auth,
        RemoveAddresses::new(["127.0.0.1"])
            .unwrap()
            .in_domain("guarded"),
    )
    .unwrap();
    assert_eq!(removed, 1);
    decisions.refused(null_attempt(&guarded, &ctx), "Address not allowed");
    decisions.admitted(null_attempt(&other, &ctx));
    let snapshot = auth.inspect().unwrap();
    assert_eq!(
        snapshot.domain_addresses.get("guarded"),
        Some(&AddressRules::Allow(AddressSet::default()))
    );

    auth.clear_addresses_in("guarded").unwrap();
    decisions.admitted(null_attempt(&guarded, &ctx));
    assert!(auth.inspect().unwrap().domain_addresses.is_empty());
    drop((guarded, other));
    auth.stop();
}

#[test]
fn an_empty_allow_list_set_as_a_whole_refuses_everyone() {
    let (ctx, auth) = started();
    let decisions = Decisions::follow(&auth);
    let server = Listening::new(&ctx, &Server::Null, Some("global"));
    send(
        &auth,
        SetAddressRules(AddressRules::Allow(AddressSet::default())),
    )
    .unwrap();
    decisions.refused(null_attempt(&server, &ctx), "Address not allowed");
    send(&auth, SetAddressRules(AddressRules::Open)).unwrap();
    decisions.admitted(null_attempt(&server, &ctx));

    let rules = AddressRules::Allow(AddressSet::default());
    let domain = "global".to_owned();
    send(&auth, SetDomainAddressRules { domain, rules }).unwrap();
    decisions.refused(null_attempt(&server, &ctx), "Address not allowed");
    send(&auth, ClearAddressRules::in_domain("global")).unwrap();
    decisions.admitted(null_attempt(&server, &ctx));
    drop(server);
    auth.stop();
}

#[test]
fn a_deny_while_an_emptied_allow_list_is_in_force_is_refused_and_changes_nothing() {
    let (ctx, auth) = started();
    let decisions = Decisions::follow(&auth);
    let server = Listening::new(&ctx, &Server::Null, Some("global"));
    auth.allow(["127.0.0.1"]).unwrap();
    auth.remove_addresses(["127.0.0.1"]).unwrap();
    auth.allow_in("d", ["10.0.0.1"]).unwrap();
    auth.remove_addresses_in("d", ["10.0.0.1"]).unwrap();
    let before = auth.inspect().unwrap();

    let error = policy_error(auth.deny(["10.9.9.9"]));
    assert_eq!(error, PolicyError::AllowAndDeny { existing: "allow" });
    assert!(error.to_string().contains("an allow-list"), "{error}");
    let error = policy_error(auth.deny_in("d", ["10.9.9.9"]));
    assert_eq!(error, PolicyError::AllowAndDeny { existing: "allow" });

    assert_eq!(auth.inspect().unwrap(), before);
    decisions.refused(null_attempt(&server, &ctx), "Address not allowed");
    drop(server);
    auth.stop();
}

#[test]
fn address_rules_for_the_any_domain_are_a_typed_error_and_change_nothing() {
    let (ctx, auth) = started();
    let decisions = Decisions::follow(&auth);
    let server = Listening::new(&ctx, &Server::Null, Some("anything"));
    let before = auth.inspect().unwrap();
    let any = PolicyError::AnyDomainAddressRules;

    assert_eq!(policy_error(auth.allow_in("*", ["127.0.0.1"])), any);
    assert_eq!(policy_error(auth.deny_in("*", ["127.0.0.1"])), any);
    assert_eq!(
        policy_error(auth.remove_addresses_in("*", ["127.0.0.1"])),
        any
    );
    assert_eq!(policy_error(auth.clear_addresses_in("*")), any);
    assert_eq!(policy_error(auth.allow_ipc_in("*", [IpcRule::Any])), any);
    let rules = AddressRules::Allow(AddressSet::default());
    let domain = "*".to_owned();
    assert_eq!(
        policy_error(send(&auth, SetDomainAddressRules { domain, rules })),
        any
    );
    assert!(any.to_string().contains("global rules already cover"));

    assert_eq!(auth.inspect().unwrap(), before);
    decisions.admitted(null_attempt(&server, &ctx));
    // The intended effect, done the right way: a global deny covers every domain.
    auth.deny(["127.0.0.1"]).unwrap();
    decisions.refused(null_attempt(&server, &ctx), "Address denied");
    drop(server);
    auth.stop();
}

/// A NULL-with-domain server bound on an `ipc://` endpoint in a fresh directory.
fn ipc_server(ctx: &zmq::Context, dir: &tempfile::TempDir) -> Listening {
    let socket = server_socket(ctx, &Server::Null, Some("local"));
    let monitor = Monitor::attach(ctx, &socket);
    let endpoint = format!("ipc://{}/zap-test.sock", dir.path().display());
    socket.bind(&endpoint).unwrap();
    Listening {
        socket,
        monitor,
        endpoint,
    }
}

#[test]
fn ipc_clients_are_refused_by_ip_lists_and_admitted_by_their_own_rules() {
    let (ctx, auth) = started();
    let decisions = Decisions::follow(&auth);
    let dir = tempfile::tempdir().unwrap();
    let server = ipc_server(&ctx, &dir);
    // SAFETY: geteuid and getegid cannot fail and touch no memory.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };

    // No address rules: IPC peers are admitted, and libzmq 4.3 names them
    // localhost:UID:GID:PID (the kernel's SO_PEERCRED for the client, here this process).
    let event = decisions.admitted(null_attempt(&server, &ctx));
    let expected = format!("localhost:{uid}:{gid}:{}", std::process::id());
    assert_eq!(event.address, expected);

    // A deny-list of every IP does not let them through any more (the defect: it did).
    auth.deny(["0.0.0.0/0", "::/0"]).unwrap();
    decisions.refused(null_attempt(&server, &ctx), "Address not allowed");

    // Their own rules decide them.
    auth.allow_ipc([IpcRule::Uid(uid)]).unwrap();
    decisions.admitted(null_attempt(&server, &ctx));
    assert_eq!(auth.remove_ipc([IpcRule::Uid(uid)]).unwrap(), 1);
    decisions.refused(null_attempt(&server, &ctx), "Address not allowed");
    auth.allow_ipc([IpcRule::Uid(uid.wrapping_add(1))]).unwrap();
    decisions.refused(null_attempt(&server, &ctx), "Address not allowed");
    auth.allow_ipc([IpcRule::Gid(gid)]).unwrap();
    decisions.admitted(null_attempt(&server, &ctx));
    let snapshot = auth.inspect().unwrap();
    let rules: Vec<IpcRule> = snapshot.ipc.unwrap().rules().copied().collect();
    assert_eq!(
        rules,
        [IpcRule::Uid(uid.wrapping_add(1)), IpcRule::Gid(gid)]
    );

    // Per domain, on top of the global rules.
    auth.allow_ipc_in("local", [IpcRule::Uid(uid.wrapping_add(1))])
        .unwrap();
    decisions.refused(null_attempt(&server, &ctx), "Address not allowed");
    auth.clear_ipc_in("local").unwrap();
    decisions.admitted(null_attempt(&server, &ctx));

    // An allow-list of IPs refuses IPC peers too, unless an IPC rule admits them.
    auth.clear_addresses().unwrap();
    auth.allow(["127.0.0.1"]).unwrap();
    decisions.refused(null_attempt(&server, &ctx), "Address not allowed");
    auth.allow_ipc([IpcRule::Any]).unwrap();
    decisions.admitted(null_attempt(&server, &ctx));
    auth.clear_ipc().unwrap();
    decisions.refused(null_attempt(&server, &ctx), "Address not allowed");
    drop(server);
    auth.stop();
}

/// Two network namespaces joined by a veth pair, each end with a link-local address;
/// removed on drop, whatever happened.
struct LinkLocalPair {
    namespaces: Vec<String>,
}

const SERVER_IF: &str = "azapsrv0";
const CLIENT_IF: &str = "azapcli0";

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

impl LinkLocalPair {
    /// `None` (with a message) when the kernel or the tools refuse network namespaces.
    fn create() -> Option<LinkLocalPair> {
        let tag = format!("azap-{}", std::process::id());
        let mut pair = LinkLocalPair {
            namespaces: Vec::new(),
        };
        for side in ["srv", "cli"] {
            let name = format!("{tag}-{side}");
            if let Err(why) = ip(&["netns", "add", &name]) {
                if pair.namespaces.is_empty() {
                    println!("SKIPPED: network namespaces are not available here ({why})");
                    return None;
                }
                panic!("{why}");
            }
            pair.namespaces.push(name);
        }
        let (srv, cli) = (pair.server(), pair.client());
        let steps: [&[&str]; 9] = [
            &[
                "link", "add", SERVER_IF, "netns", srv, "type", "veth", "peer", "name", CLIENT_IF,
                "netns", cli,
            ],
            // Only the addresses below: no kernel-generated link-local address to compete.
            &["-n", srv, "link", "set", SERVER_IF, "addrgenmode", "none"],
            &["-n", cli, "link", "set", CLIENT_IF, "addrgenmode", "none"],
            &[
                "-n",
                srv,
                "-6",
                "addr",
                "add",
                "fe80::1/64",
                "dev",
                SERVER_IF,
                "nodad",
            ],
            &[
                "-n",
                cli,
                "-6",
                "addr",
                "add",
                "fe80::2/64",
                "dev",
                CLIENT_IF,
                "nodad",
            ],
            &["-n", srv, "link", "set", "lo", "up"],
            &["-n", cli, "link", "set", "lo", "up"],
            &["-n", srv, "link", "set", SERVER_IF, "up"],
            &["-n", cli, "link", "set", CLIENT_IF, "up"],
        ];
        for step in steps {
            // The guard exists: a panic here still removes both namespaces.
            ip(step).unwrap();
        }
        Some(pair)
    }

    fn server(&self) -> &str {
        &self.namespaces[0]
    }

    fn client(&self) -> &str {
        &self.namespaces[1]
    }
}

impl Drop for LinkLocalPair {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end inside it, and with it the pair.
        for name in &self.namespaces {
            if let Err(why) = ip(&["netns", "del", name]) {
                eprintln!("cleanup: {why}");
            }
        }
    }
}

/// Moves the calling thread (only) into a named network namespace.
fn enter_namespace(name: &str) {
    let file = std::fs::File::open(format!("/var/run/netns/{name}")).unwrap();
    // SAFETY: setns only reads the descriptor, which stays open for the call.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

/// A context whose I/O thread (where libzmq opens connecting sockets) lives in `namespace`:
/// libzmq starts it with the context's first socket, on the thread that creates it.
fn context_in(namespace: &str) -> zmq::Context {
    let namespace = namespace.to_owned();
    std::thread::spawn(move || {
        enter_namespace(&namespace);
        let context = zmq::Context::new();
        drop(context.socket(zmq::PUSH).unwrap());
        context
    })
    .join()
    .unwrap()
}

/// In a child process: its threads move between network namespaces, and no thread another
/// test shares (a pool started on one of them) may end up in one.
#[test]
fn link_local_peers_with_a_zone_match_deny_and_zoned_rules() {
    child::isolated(
        "address_rules::link_local_peers_with_a_zone_match_deny_and_zoned_rules",
        &[],
        link_local_scenario,
    );
}

fn link_local_scenario() {
    let Some(pair) = LinkLocalPair::create() else {
        return;
    };
    let client_context = context_in(pair.client());
    let server_ns = pair.server().to_owned();
    // The server side (its context's I/O thread resolves the peer's zone to a name in its
    // namespace) runs on a thread inside the server namespace.
    let scenario = std::thread::spawn(move || {
        enter_namespace(&server_ns);
        zone_scenario(&client_context);
    })
    .join();
    drop(pair);
    if let Err(panic) = scenario {
        std::panic::resume_unwind(panic);
    }
}

fn zone_scenario(client_context: &zmq::Context) {
    let (ctx, auth) = started();
    let decisions = Decisions::follow(&auth);
    let socket = server_socket(&ctx, &Server::Null, Some("link"));
    socket.set_ipv6(true).unwrap();
    let monitor = Monitor::attach(&ctx, &socket);
    socket
        .bind(&format!("tcp://[fe80::1%{SERVER_IF}]:0"))
        .unwrap();
    let bound = socket.get_last_endpoint().unwrap().unwrap();
    let port = bound.rsplit(':').next().unwrap().to_owned();
    let server = Listening {
        socket,
        monitor,
        endpoint: format!("tcp://[fe80::1%{CLIENT_IF}]:{port}"),
    };
    let attempt = || {
        let client = client_socket(client_context, &Client::Null);
        client.set_ipv6(true).unwrap();
        client.connect(&server.endpoint).unwrap();
        send_after_connect(&client, "hello");
        let outcome = server.outcome();
        drop(client);
        outcome
    };

    // libzmq names the peer with the zone of the interface it came in on.
    let event = decisions.admitted(attempt());
    assert_eq!(event.address, format!("fe80::2%{SERVER_IF}"));

    // A rule without a zone matches every zone (the defect: the zoned form did not parse,
    // so this deny-list let the peer in).
    auth.deny(["fe80::/10"]).unwrap();
    decisions.refused(attempt(), "Address denied");

    // A zoned rule matches its own interface only.
    auth.clear_addresses().unwrap();
    auth.deny([format!("fe80::%{SERVER_IF}/64")]).unwrap();
    decisions.refused(attempt(), "Address denied");
    auth.clear_addresses().unwrap();
    auth.deny(["fe80::%elsewhere0/64"]).unwrap();
    decisions.admitted(attempt());

    auth.clear_addresses().unwrap();
    auth.allow([format!("fe80::2%{SERVER_IF}")]).unwrap();
    decisions.admitted(attempt());
    auth.clear_addresses().unwrap();
    auth.allow(["fe80::2%elsewhere0"]).unwrap();
    decisions.refused(attempt(), "Address not allowed");

    drop(server);
    auth.stop();
}
