//! Address rules that take access away keep it away, end to end with real sockets: an
//! emptied allow-list refuses everyone until it is cleared on purpose, `"*"` is no scope
//! for address rules, and peers that are not bare IPs — `ipc://` clients and IPv6
//! link-local clients with a zone — are decided explicitly instead of slipping past a
//! deny-list. Zones are checked over a veth link between network namespaces the tests make
//! and remove: libzmq names the interface, a rule naming it matches, and a rule with the
//! interface's index is refused when configured (it would match nothing).

use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Mutex;

use crate::common::*;

use actix_zap::messages::{
    ClearAddressRules, DecisionEvent, RemoveAddresses, SetAddressRules, SetDomainAddressRules,
};
use actix_zap::policy::{AddressError, AddressRules, AddressSet, IpcRule, PolicyError};
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

/// Why the kernel refuses this process a network namespace, if it does. Tried with
/// `unshare` on a thread of its own, which ends right after (its namespace with it).
fn kernel_refuses_namespaces() -> Option<std::io::Error> {
    std::thread::spawn(|| {
        // SAFETY: unshare touches no memory; it moves only this short-lived thread.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        (rc != 0).then(std::io::Error::last_os_error)
    })
    .join()
    .unwrap()
}

/// A named network namespace (`ip netns add`), deleted on drop, whatever happened.
struct Namespace(String);

impl Namespace {
    /// `azap-<pid>-<n>-<role>`: unique per test, so tests running at once never share one.
    fn add(role: &str) -> Namespace {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("azap-{}-{n}-{role}", std::process::id());
        ip(&["netns", "add", &name]).unwrap();
        Namespace(name)
    }

    fn name(&self) -> &str {
        &self.0
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // Deleting a namespace deletes the interfaces inside it (a veth end, and with it
        // the pair) once nothing runs in it any more.
        if let Err(why) = ip(&["netns", "del", &self.0]) {
            eprintln!("cleanup: {why}");
        }
    }
}

/// Two network namespaces joined by a veth pair, each end with a link-local address:
/// `fe80::1` on `SERVER_IF` in the server's, `fe80::2` on `CLIENT_IF` in the client's.
/// Nothing else is reachable from either; both are removed on drop, whatever happened.
struct LinkLocalPair {
    server: Namespace,
    client: Namespace,
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
    /// `None` (with a message) only when the kernel refuses network namespaces; any other
    /// failure to build the link fails the test.
    fn create() -> Option<LinkLocalPair> {
        if let Some(why) = kernel_refuses_namespaces() {
            println!("SKIPPED: the kernel refuses a network namespace here ({why})");
            return None;
        }
        let server = Namespace::add("srv");
        let client = Namespace::add("cli");
        // The guard exists from here: a panic below still removes both namespaces.
        let pair = LinkLocalPair { server, client };
        let (srv, cli) = (pair.server.name(), pair.client.name());
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
            ip(step).unwrap();
        }
        Some(pair)
    }
}

/// Moves the calling thread (only) into a named network namespace. Threads it starts
/// afterwards (libzmq's I/O threads among them) start there too.
fn enter_namespace(name: &str) {
    let file = std::fs::File::open(format!("/var/run/netns/{name}")).unwrap();
    // SAFETY: setns only reads the descriptor, which stays open for the call.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

/// A context whose I/O thread (where libzmq opens connecting sockets, and names the
/// interface of accepted peers) lives in `namespace`: libzmq starts it with the context's
/// first socket, on the thread that creates it.
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

/// The index of an interface in the calling thread's network namespace.
fn interface_index(name: &str) -> u32 {
    let c_name = std::ffi::CString::new(name).unwrap();
    // SAFETY: the name is a NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    assert_ne!(index, 0, "{name}: {}", std::io::Error::last_os_error());
    index
}

/// Runs `scenario` on a thread of its own that first enters `namespace`, then removes the
/// namespaces (`guards`), and only then reports the scenario's panic, if any.
fn on_link_then_clean_up<T>(namespace: &str, guards: T, scenario: impl FnOnce() + Send + 'static) {
    let namespace = namespace.to_owned();
    let result = std::thread::spawn(move || {
        enter_namespace(&namespace);
        scenario();
    })
    .join();
    drop(guards);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// A NULL server of domain "link" bound on `fe80::1%SERVER_IF`, which the calling thread
/// must see (be in the server namespace), and reached from `client` (a context in the
/// client namespace) at `fe80::1%CLIENT_IF`: the only route there is the veth link.
struct LinkLocalServer {
    server: Listening,
    client: zmq::Context,
}

impl LinkLocalServer {
    fn bind(ctx: &zmq::Context, client: zmq::Context) -> LinkLocalServer {
        let socket = server_socket(ctx, &Server::Null, Some("link"));
        socket.set_ipv6(true).unwrap();
        let monitor = Monitor::attach(ctx, &socket);
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
        LinkLocalServer { server, client }
    }

    fn attempt(&self) -> Outcome {
        // libzmq may report a refused connection twice on the server's monitor: the refusal
        // (HANDSHAKE_FAILED_AUTH 400), then a handshake failure without detail (EPIPE) when
        // its next write finds the client gone. That trailing event belongs to the previous
        // attempt and decides nothing, so it is passed over (bounded: each wait is `PATIENCE`,
        // and at most a few are pending).
        const NO_DETAIL: u16 = zmq::SocketEvent::HANDSHAKE_FAILED_NO_DETAIL as u16;
        let client = client_socket(&self.client, &Client::Null);
        client.set_ipv6(true).unwrap();
        // One connection per attempt: a refused client would otherwise reconnect.
        client.set_reconnect_ivl(-1).unwrap();
        client.connect(&self.server.endpoint).unwrap();
        send_after_connect(&client, "hello");
        for _ in 0..8 {
            match self.server.outcome() {
                Outcome::Failed(NO_DETAIL, 32) => continue,
                outcome => {
                    drop(client);
                    return outcome;
                }
            }
        }
        panic!("only handshake failures without detail, never a decision");
    }
}

fn address_error(result: Result<(), ConfigError>) -> AddressError {
    match result {
        Err(ConfigError::Address(error)) => error,
        other => panic!("expected an address error, got {other:?}"),
    }
}

/// In a child process: its threads move between network namespaces, and no thread another
/// test shares (a pool started on one of them) may end up in one.
#[test]
fn link_local_peers_are_judged_by_interface_name_and_a_numeric_zone_is_refused() {
    child::isolated(
        "address_rules::link_local_peers_are_judged_by_interface_name_and_a_numeric_zone_is_refused",
        &[],
        named_zone_scenario,
    );
}

fn named_zone_scenario() {
    let Some(pair) = LinkLocalPair::create() else {
        return;
    };
    let client = context_in(pair.client.name());
    let server_ns = pair.server.name().to_owned();
    // Everything on the server side — the context, and with it libzmq's I/O thread, which
    // names the peer's interface, the authenticator, the server socket — is made on a
    // thread inside the server namespace.
    on_link_then_clean_up(&server_ns, pair, move || zone_scenario(client));
}

fn zone_scenario(client: zmq::Context) {
    let (ctx, auth) = started();
    let decisions = Decisions::follow(&auth);
    let server = LinkLocalServer::bind(&ctx, client);
    let attempt = || server.attempt();

    // No rule: admitted, and libzmq names the peer with the name of the interface it came
    // in on, not its index.
    let event = decisions.admitted(attempt());
    assert_eq!(event.address, format!("fe80::2%{SERVER_IF}"));

    // The index, in the form this namespace knows it: refused at configure time, since no
    // peer is ever reported that way (such a deny entry would deny nothing).
    let index = interface_index(SERVER_IF).to_string();
    let before = auth.inspect().unwrap();
    for text in [format!("fe80::%{index}/64"), format!("fe80::2%{index}")] {
        for result in [
            auth.deny([&text]),
            auth.allow([&text]),
            auth.deny_in("link", [&text]),
        ] {
            let error = address_error(result);
            assert_eq!(
                error,
                AddressError::NumericZone {
                    text: text.clone(),
                    zone: index.clone()
                }
            );
            let message = error.to_string();
            assert!(message.contains("interface name"), "{message}");
            assert!(message.contains("network namespace"), "{message}");
        }
    }
    assert_eq!(auth.inspect().unwrap(), before);
    decisions.admitted(attempt());

    // A rule without a zone matches every zone (the defect once: the zoned form did not
    // parse, so this deny-list let the peer in).
    auth.deny(["fe80::/10"]).unwrap();
    decisions.refused(attempt(), "Address denied");

    // A rule with the interface's name matches the peers of that interface, and only them,
    // in both forms: the range and the single address.
    for denied in [
        format!("fe80::%{SERVER_IF}/64"),
        format!("fe80::2%{SERVER_IF}"),
    ] {
        auth.clear_addresses().unwrap();
        auth.deny([denied]).unwrap();
        decisions.refused(attempt(), "Address denied");
    }
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

/// In a child process, as above.
#[test]
fn a_peer_whose_interface_libzmq_cannot_name_is_refused_by_zoned_rules_of_either_kind() {
    child::isolated(
        "address_rules::a_peer_whose_interface_libzmq_cannot_name_is_refused_by_zoned_rules_of_either_kind",
        &[],
        index_zone_scenario,
    );
}

fn index_zone_scenario() {
    let Some(pair) = LinkLocalPair::create() else {
        return;
    };
    // A third namespace with nothing but loopback, for the server context's I/O thread:
    // there, the interface index of an accepted peer names nothing, so libzmq reports the
    // index (what it does whenever it cannot name the interface).
    let elsewhere = Namespace::add("io");
    let client = context_in(pair.client.name());
    let (server_ns, io_ns) = (pair.server.name().to_owned(), elsewhere.name().to_owned());
    on_link_then_clean_up(&io_ns, (pair, elsewhere), move || {
        let ctx = zmq::Context::new();
        // The first socket starts the I/O thread, here in the bare namespace.
        drop(ctx.socket(zmq::PUSH).unwrap());
        let auth = ThreadAuthenticator::start(&ctx).unwrap();
        // The server socket is bound from the server namespace, where the link is.
        enter_namespace(&server_ns);
        unnamed_zone_scenario(&ctx, auth, client);
    });
}

fn unnamed_zone_scenario(ctx: &zmq::Context, auth: ThreadAuthenticator, client: zmq::Context) {
    let decisions = Decisions::follow(&auth);
    let server = LinkLocalServer::bind(ctx, client);
    let attempt = || server.attempt();

    let index = interface_index(SERVER_IF);
    let event = decisions.admitted(attempt());
    assert_eq!(event.address, format!("fe80::2%{index}"));

    // The peer may be on any interface: a zoned deny entry whose range holds it refuses it,
    // a zoned allow entry does not admit it; entries without a zone match it as usual.
    for denied in [
        format!("fe80::%{SERVER_IF}/64"),
        "fe80::2%elsewhere0".to_owned(),
    ] {
        auth.clear_addresses().unwrap();
        auth.deny([denied]).unwrap();
        decisions.refused(attempt(), "Address denied");
    }
    auth.clear_addresses().unwrap();
    auth.deny(["fe80::3%elsewhere0"]).unwrap();
    decisions.admitted(attempt());

    auth.clear_addresses().unwrap();
    auth.allow([format!("fe80::%{SERVER_IF}/64")]).unwrap();
    decisions.refused(attempt(), "Address not allowed");
    auth.clear_addresses().unwrap();
    auth.allow(["fe80::/10"]).unwrap();
    decisions.admitted(attempt());

    drop(server);
    auth.stop();
}
