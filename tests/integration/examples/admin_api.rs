//! `examples/admin_api` driven over HTTP in a child process, as an operator would: keys
//! trusted and revoked, an address denied and let back, bad input refused, and the exact
//! counts of the decisions read back from `GET /stats` (JSON) and `GET /metrics`
//! (Prometheus), and the refused key found in its log.
//!
//! Every client is a CURVE DEALER that does not reconnect (`ZMQ_RECONNECT_IVL` -1) and
//! connects through a [`HandshakeCheck`] without its greeting probe: each makes exactly one
//! handshake, so the counts are exact.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use actix_zap::client::{HandshakeCheck, HandshakeOutcome};

/// The example, running; killed when dropped (a failing test leaves no process behind).
struct AdminApi {
    child: Child,
    /// `host:port` of the HTTP API.
    http: String,
    /// The CURVE server's endpoint and public key.
    endpoint: String,
    server_key: [u8; 32],
    /// Its stderr (the log), in a directory removed with the test.
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for AdminApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl AdminApi {
    fn start() -> AdminApi {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("admin_api.log");
        let mut child = Command::new(super::examples_dir().join("admin_api"))
            .args(["--http", "127.0.0.1:0", "--zmq", "tcp://127.0.0.1:*"])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("admin_api starts");
        // Its first two lines say where it listens; read on a thread, so that a child that
        // hangs before printing fails the test instead of hanging it.
        let stdout = child.stdout.take().unwrap();
        let (lines, received) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    return;
                }
            }
        });
        let mut api = AdminApi {
            child,
            http: String::new(),
            endpoint: String::new(),
            server_key: [0; 32],
            log,
            _dir: dir,
        };
        while api.http.is_empty() || api.endpoint.is_empty() {
            let line = received
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("admin_api printed no addresses:\n{}", api.log()));
            if let Some(http) = line.strip_prefix("admin API on http://") {
                api.http = http.to_owned();
            } else if let Some(rest) = line.strip_prefix("CURVE server on ") {
                api.endpoint = rest.split(' ').next().unwrap().to_owned();
                let key = rest.rsplit(' ').next().unwrap();
                api.server_key = z85_key(key);
            }
        }
        api
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One HTTP/1.1 request (`Connection: close`): the status and the body.
    fn http(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(&self.http).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.http,
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
        assert!(
            !head.to_ascii_lowercase().contains("chunked"),
            "a sized body expected:\n{head}"
        );
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok());
        (status.expect("a status line"), body.to_owned())
    }

    /// A request that must answer 200; its body.
    fn ok(&self, method: &str, path: &str, body: &str) -> String {
        let (status, answer) = self.http(method, path, body);
        assert_eq!(status, 200, "{method} {path}: {answer}\n{}", self.log());
        answer
    }

    /// A DEALER with `client`'s keys, after its one handshake: how it ended.
    fn connect(&self, context: &zmq::Context, client: &zmq::CurveKeyPair) -> Client {
        let mut socket = context.socket(zmq::DEALER).unwrap();
        socket.set_linger(0).unwrap();
        socket.set_reconnect_ivl(-1).unwrap();
        socket.set_rcvtimeo(10_000).unwrap();
        socket.set_curve_serverkey(&self.server_key).unwrap();
        socket.set_curve_publickey(&client.public_key).unwrap();
        socket.set_curve_secretkey(&client.secret_key).unwrap();
        let report = HandshakeCheck::new(self.endpoint.as_str())
            .read_greeting(false)
            .deadline(Duration::from_secs(10))
            .run(context, &mut socket)
            .unwrap();
        Client {
            outcome: report.outcome,
            socket,
        }
    }
}

struct Client {
    outcome: HandshakeOutcome,
    socket: zmq::Socket,
}

fn z85_key(text: &str) -> [u8; 32] {
    zmq::z85_decode(text).unwrap().try_into().unwrap()
}

fn z85(key: &[u8; 32]) -> String {
    zmq::z85_encode(key).unwrap()
}

/// Every byte but letters and digits as `%XX` (Z85 has `/`, `?`, `#`, `%`, `.`...).
fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The value of the Prometheus sample `name{…}` whose labels include every one of `labels`.
fn sample(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .find(|line| labels.iter().all(|label| line.contains(label)))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

/// `Stats::replies`' count for (mechanism, status) in the JSON of `GET /stats`.
fn replies(stats: &serde_json::Value, mechanism: &str, status: u64) -> u64 {
    stats["replies"]
        .as_array()
        .expect("replies is an array")
        .iter()
        .find(|r| r["mechanism"] == mechanism && r["status"] == status)
        .map_or(0, |r| r["count"].as_u64().unwrap())
}

/// Waits (at most 10 s for each event) for the monitor at `watch` to tell a disconnection.
fn disconnected(context: &zmq::Context, watch: &str) -> bool {
    let events = context.socket(zmq::PAIR).unwrap();
    events.set_rcvtimeo(10_000).unwrap();
    events.connect(watch).unwrap();
    loop {
        let Ok(frames) = events.recv_multipart(0) else {
            return false;
        };
        let event = u16::from_le_bytes([frames[0][0], frames[0][1]]);
        if event == zmq::SocketEvent::DISCONNECTED as u16 {
            return true;
        }
    }
}

#[test]
fn admin_api_trusts_revokes_denies_and_counts_over_http() {
    let api = AdminApi::start();
    let context = zmq::Context::new();
    let alice = zmq::CurveKeyPair::new().unwrap();
    let stranger = zmq::CurveKeyPair::new().unwrap();
    let alice_key = z85(&alice.public_key);

    // Bad input answers 400 and changes nothing.
    for (method, path, body) in [
        ("POST", "/keys".to_owned(), r#"{"key": "not a key"}"#),
        ("DELETE", "/keys/not-a-key".to_owned(), ""),
        ("POST", "/deny/not-an-address".to_owned(), ""),
    ] {
        let (status, answer) = api.http(method, &path, body);
        assert_eq!(status, 400, "{method} {path}: {answer}");
    }

    // Trusted: admitted, and its messages answered.
    let body = format!(r#"{{"key": "{alice_key}", "user_id": "alice"}}"#);
    assert!(api.ok("POST", "/keys", &body).contains(&alice_key));
    let alice_1 = api.connect(&context, &alice);
    assert_eq!(alice_1.outcome, HandshakeOutcome::Admitted);
    alice_1.socket.send("ping", 0).unwrap();
    assert_eq!(
        alice_1.socket.recv_string(0).unwrap().unwrap(),
        "Hello, ping"
    );

    // A stranger: refused, and its key is in the log, where an operator finds it to trust it.
    let refused = api.connect(&context, &stranger);
    assert_eq!(refused.outcome, HandshakeOutcome::Refused { status: 400 });
    drop(refused);

    // Revoked: before DELETE answers, the key is refused and its open connection is ended.
    let watch = "inproc://admin-api-alice-1";
    alice_1
        .socket
        .monitor(watch, zmq::SocketEvent::DISCONNECTED as i32)
        .unwrap();
    let path = format!("/keys/{}", percent_encoded(&alice_key));
    let answer = api.ok("DELETE", &path, "");
    assert!(answer.contains(r#""installed":1"#), "{answer}");
    assert!(
        disconnected(&context, watch),
        "alice's connection stayed up after her key was revoked"
    );
    let alice_2 = api.connect(&context, &alice);
    assert_eq!(alice_2.outcome, HandshakeOutcome::Refused { status: 400 });
    drop((alice_1, alice_2));

    // Trusted again, but her address is denied; then let back.
    api.ok("POST", "/keys", &body);
    api.ok("POST", "/deny/127.0.0.1", "");
    let alice_3 = api.connect(&context, &alice);
    assert_eq!(alice_3.outcome, HandshakeOutcome::Refused { status: 400 });
    drop(alice_3);
    let answer = api.ok("DELETE", "/deny/127.0.0.1", "");
    assert!(answer.contains(r#""removed":1"#), "{answer}");
    let alice_4 = api.connect(&context, &alice);
    assert_eq!(alice_4.outcome, HandshakeOutcome::Admitted);
    alice_4.socket.send("again", 0).unwrap();
    assert_eq!(
        alice_4.socket.recv_string(0).unwrap().unwrap(),
        "Hello, again"
    );

    // Exactly what happened: 2 admitted, 3 refused, 1 session ended.
    let stats: serde_json::Value = serde_json::from_str(&api.ok("GET", "/stats", "")).unwrap();
    assert_eq!(replies(&stats, "CURVE", 200), 2, "{stats}");
    assert_eq!(replies(&stats, "CURVE", 400), 3, "{stats}");
    assert_eq!(stats["sessions_ended"], 1, "{stats}");
    let metrics = api.ok("GET", "/metrics", "");
    let decisions = |status: &str| {
        let status = format!(r#"status="{status}""#);
        let labels = [r#"domain="service""#, r#"mechanism="CURVE""#, &status];
        sample(&metrics, "actix_zap_decisions_total", &labels)
    };
    assert_eq!(decisions("200"), Some(2.0), "{metrics}");
    assert_eq!(decisions("400"), Some(3.0), "{metrics}");
    let ended = sample(
        &metrics,
        "actix_zap_sessions_ended_total",
        &[r#"domain="service""#],
    );
    assert_eq!(ended, Some(1.0), "{metrics}");
    assert!(
        metrics.contains("actix_zap_decision_duration_seconds"),
        "{metrics}"
    );

    let log = api.log();
    let refusal = format!("client_key={}", z85(&stranger.public_key));
    assert!(log.contains(&refusal), "{refusal} not in the log:\n{log}");
}
