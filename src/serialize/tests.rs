//! The JSON form pinned, deserialization of what an admin API takes in, and no secret in
//! what a policy holding every kind of them serializes.

use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use super::*;
use crate::certs::{SkipReason, SkippedFile};
use crate::client::{Greeting, GreetingUnread};
use crate::messages::{DecisionEvent, Reloaded, SourceStats, Stats};
use crate::policy::cheap_hash;
use crate::policy::{
    Change, CurvePolicy, ListKind, Origin, Owner, PasswordTable, Policy, PolicySnapshot, Scope,
};
use crate::zap::RequestBuilder;
use crate::ReloadError;

/// The libzmq documentation's client public key.
const KEY: &str = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";

/// 2024-02-29T00:00:00.000042Z.
fn leap_day() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_709_164_800) + Duration::from_micros(42)
}

fn json(value: &impl Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap()
}

fn stats() -> Stats {
    let mut stats = Stats::default();
    stats.count_reply(EventMechanism::Curve, StatusCode::Denied);
    stats.count_reply(EventMechanism::Curve, StatusCode::Denied);
    stats.count_reply(EventMechanism::Plain, StatusCode::Ok);
    stats.in_flight = 2;
    stats.events_dropped.insert(SubscriptionId(1), 4);
    let source = SourceStats {
        connected: true,
        applied_seq: 17,
        staleness: Some(Duration::from_micros(1_500)),
        last_error: Some("connection refused (host=db port=5432 user=zap dbname=zap)".into()),
        last_error_at: Some(leap_day()),
        reads: 3,
        last_snapshot_reason: Some("first read".into()),
        last_snapshot_at: Some(leap_day()),
        ..SourceStats::default()
    };
    stats.sources.insert("main".into(), source);
    stats
}

fn event() -> DecisionEvent {
    DecisionEvent {
        time: leap_day(),
        domain: "global".into(),
        address: "127.0.0.1".into(),
        mechanism: EventMechanism::Curve,
        user_id: String::new(),
        client_key: Some(CurvePublicKey::from_z85(KEY).unwrap()),
        username: None,
        status: StatusCode::Denied,
        reason: "Unknown key".into(),
        latency: Duration::from_micros(42),
        lived: None,
    }
}

fn snapshot() -> PolicySnapshot {
    let mut policy = Policy::default();
    let parsed = |text: &str| text.parse::<AddressPattern>().unwrap();
    policy
        .allow([parsed("10.0.0.0/8"), parsed("127.0.0.1")])
        .unwrap();
    let domain = Scope::Domain("files".into());
    policy
        .add_addresses(&domain, ListKind::Deny, [parsed("10.1.0.0/16")])
        .unwrap();
    policy.allow_ipc(&domain, [IpcRule::Uid(1000)]).unwrap();
    let table = PasswordTable::new([("admin", "hunter2"), ("bob", "hunter3")]);
    policy.configure_plain("*", table).unwrap();
    policy
        .configure_curve("open", CurvePolicy::AllowAny)
        .unwrap();
    let principals = ["zap/host@EXAMPLE.COM".to_owned()].into();
    let gssapi = GssapiPolicy::Principals(principals);
    policy.configure_gssapi("kerberos", gssapi).unwrap();
    let id = policy.new_owner_id();
    let owner = Owner::Watch {
        id,
        path: PathBuf::from("/etc/zap/keys"),
    };
    let claim = Change::Claim {
        domain: "files".into(),
        mechanism: MechanismKind::Curve,
        owner,
    };
    policy.apply(Origin::HAND, claim).unwrap();
    let key = CurvePublicKey::from_z85(KEY).unwrap();
    let entries = vec![crate::policy::CurveEntry::new(key)];
    let add = Change::AddCurveKeys {
        domain: "files".into(),
        entries,
    };
    policy.apply(Origin::Owner(id), add).unwrap();
    let revoke = Change::RemoveCurveKeys {
        domain: "files".into(),
        keys: vec![key],
    };
    policy.apply(Origin::HAND, revoke).unwrap();
    let mut snapshot = policy.snapshot();
    snapshot.sessions.insert("files".into(), 2);
    snapshot
}

fn reloaded() -> Reloaded {
    Reloaded {
        domain: "files".into(),
        path: PathBuf::from("/etc/zap/keys"),
        entries: 1,
        error: None,
        rejected: vec![ReloadError::NoEntries {
            path: PathBuf::from("/etc/zap/keys/empty.key"),
        }],
        skipped: vec![SkippedFile {
            path: PathBuf::from("/etc/zap/keys/server.key_secret"),
            reason: SkipReason::SecretFile,
        }],
        warning: None,
    }
}

/// Every reported type, as one document.
#[derive(Serialize)]
struct Everything {
    stats: Stats,
    event: DecisionEvent,
    inspect: PolicySnapshot,
    reload: Reloaded,
    handshakes: [HandshakeReport; 2],
}

impl Everything {
    fn new() -> Self {
        Everything {
            stats: stats(),
            event: event(),
            inspect: snapshot(),
            reload: reloaded(),
            handshakes: reports(),
        }
    }
}

fn reports() -> [HandshakeReport; 2] {
    let refused = HandshakeReport {
        outcome: HandshakeOutcome::Refused { status: 400 },
        elapsed: Duration::from_micros(3_250),
        events: vec![
            (Duration::from_micros(1_000), 1, 7),
            (Duration::from_micros(3_250), 16384, 400),
        ],
        client_mechanism: Mechanism::Curve,
        server_greeting: Ok(Greeting {
            version: (3, 1),
            mechanism: Mechanism::Curve,
            as_server: false,
        }),
    };
    let mismatch = HandshakeReport {
        outcome: HandshakeOutcome::MechanismMismatch {
            client: Mechanism::Plain,
            server: Mechanism::Curve,
        },
        elapsed: Duration::from_millis(2),
        events: vec![],
        client_mechanism: Mechanism::Plain,
        server_greeting: Err(GreetingUnread::Disabled),
    };
    [refused, mismatch]
}

#[test]
fn keys_and_address_patterns_deserialize_from_their_text_and_bad_text_is_an_error() {
    let key: CurvePublicKey = serde_json::from_str(&format!("{KEY:?}")).unwrap();
    assert_eq!(key.to_z85(), KEY);
    let short = serde_json::from_str::<CurvePublicKey>(r#""abc""#).unwrap_err();
    assert!(short.to_string().contains("40 characters"), "{short}");
    let patterns: Vec<AddressPattern> =
        serde_json::from_str(r#"["10.0.0.0/8", "fe80::%eth0/64"]"#).unwrap();
    assert_eq!(
        serde_json::to_string(&patterns).unwrap(),
        r#"["10.0.0.0/8","fe80::%eth0/64"]"#
    );
    let zone = serde_json::from_str::<AddressPattern>(r#""fe80::%3/64""#).unwrap_err();
    assert!(zone.to_string().contains("fe80::%3/64"), "{zone}");
    assert!(serde_json::from_str::<AddressPattern>("7").is_err());
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A policy holding every kind of secret — clear and hashed passwords (so PHC strings),
/// CURVE key pairs, a verification cache's tag, session marks, a store's connection
/// string — decides real requests; its inspection, the stats and every decision event are
/// serialized, and none of the secrets is in the JSON (while what may be shown is).
#[test]
fn nothing_secret_is_serialized_from_a_policy_that_holds_every_kind_of_secret() {
    use crate::actors::observe::{Observers, RequestFacts};
    use crate::certs::{CertStore, Certificate};
    use crate::messages::Subscriber;
    use crate::policy::{Decision, Now, VerificationCache};
    use crate::sessions::{EndReason, EndedSession};
    use crate::zap::mark::{keyed_tag, MarkMechanism, SessionMark};
    use crate::zap::Request;
    use std::sync::{Arc, Mutex};

    let (clear, hashed, guess) = ("clear-Kq7vW", "hashed-Zr4pX", "guess-Qw3mN");
    let hash = cheap_hash(hashed);
    let phc = hash.as_str().to_owned();
    let (server, client) = (
        Certificate::generate().unwrap(),
        Certificate::generate().unwrap(),
    );
    let mut policy = Policy::default();
    policy
        .configure_plain("clear", PasswordTable::new([("alice", clear)]))
        .unwrap();
    policy
        .upsert_hashed_users("hashed", [(b"bob".to_vec(), hash)])
        .unwrap();
    let store: CertStore = [client.public_key].into_iter().collect();
    policy
        .configure_curve("curve", CurvePolicy::Keys(Arc::new(store)))
        .unwrap();
    let connection = "host=127.0.0.1 port=5432 user=zap password=conn-Pw9xT dbname=zap";
    let store_owner = Owner::Store {
        id: policy.new_owner_id(),
        name: "fleet".into(),
    };
    let claim = Change::Claim {
        domain: "fleet".into(),
        mechanism: MechanismKind::Curve,
        owner: store_owner,
    };
    policy.apply(Origin::HAND, claim).unwrap();

    let mut observers = Observers::new(16);
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    observers.subscribe(Subscriber::Callback(Arc::new(move |e: &DecisionEvent| {
        sink.lock().unwrap().push(e.clone())
    })));
    let mut cache = VerificationCache::new([9; 32]);
    let now = Now::read();
    let mark = SessionMark {
        serial: 1,
        domain: "clear".into(),
        mechanism: MarkMechanism::Plain,
        name: b"alice".to_vec(),
        address: "127.0.0.1".into(),
        admitted_at: SystemTime::now(),
        generation: 0,
        flags: 0,
        fingerprint: keyed_tag("test", [clear.as_bytes()]),
    };
    let token = mark.encode();
    let requests = [
        RequestBuilder::plain("alice", clear)
            .domain("clear")
            .frames(),
        RequestBuilder::plain("alice", guess)
            .domain("clear")
            .frames(),
        RequestBuilder::plain("bob", hashed)
            .domain("hashed")
            .frames(),
        RequestBuilder::curve(client.public_key)
            .domain("curve")
            .frames(),
    ];
    let mut tag = None;
    for request in &requests {
        let mut reply = match policy.handle(request) {
            Decision::Reply(reply) => reply,
            Decision::Verify(verification) => {
                assert!(verification.verify());
                cache.remember(&verification, now.instant());
                tag = cache.tag(&phc, hashed.as_bytes());
                verification.finish(Ok(true), &now)
            }
            Decision::Consult(_) => unreachable!("no provider is configured"),
        };
        if reply.status == StatusCode::Ok {
            reply.metadata = reply.metadata.with_mark(&token);
        }
        let facts = RequestFacts::of(Request::parse(request).unwrap());
        observers.record(&facts, &reply, Duration::ZERO);
    }
    observers.session_ended(&EndedSession {
        mark: mark.clone(),
        reason: EndReason::Unjudged,
        shut_down: true,
    });
    let mut stats = observers.stats();
    #[cfg(feature = "postgres")]
    let database = crate::postgres::Database::new(connection)
        .unwrap()
        .to_string();
    #[cfg(not(feature = "postgres"))]
    let database = "host=127.0.0.1 port=5432 user=zap dbname=zap".to_owned();
    let source = SourceStats {
        last_error: Some(format!("connection refused ({database})")),
        ..SourceStats::default()
    };
    stats.sources.insert("fleet".into(), source);
    let events = events.lock().unwrap().clone();
    let text = serde_json::to_string(&(policy.snapshot(), stats, &events)).unwrap();

    let field = |name: &str| {
        let prefix = format!("{name}=");
        let found = token
            .split(';')
            .find_map(|f| f.strip_prefix(prefix.as_str()));
        found.unwrap().to_owned()
    };
    let tag = tag.expect("the hashed password was verified");
    let mut secrets = vec![
        clear.to_owned(),
        hashed.to_owned(),
        guess.to_owned(),
        phc.clone(),
        phc.rsplit('$').next().unwrap().to_owned(),
        token.clone(),
        field("mac"),
        field("f"),
        hex(&tag),
        z85::encode(tag),
        connection.to_owned(),
        "conn-Pw9xT".to_owned(),
    ];
    for keys in [&server, &client] {
        let secret = keys.secret_key.as_ref().unwrap();
        secrets.extend([secret.to_z85(), hex(secret.as_bytes())]);
    }
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "{secret:?} serialized: {text}"
        );
    }
    // What may be shown is there: the test looks where a leak would be.
    assert_eq!(events.len(), 5);
    for shown in [
        client.public_key.to_z85(),
        "alice".into(),
        "bob".into(),
        database,
    ] {
        assert!(text.contains(shown.as_str()), "{shown:?} missing: {text}");
    }
}

/// The form, pinned: a change here is a change of every consumer's JSON.
#[test]
fn every_reported_type_has_the_pinned_json_form() {
    assert_eq!(json(&Everything::new()), EXPECTED);
}

const EXPECTED: &str = r##"{
  "stats": {
    "replies": [
      {
        "mechanism": "PLAIN",
        "status": 200,
        "count": 1
      },
      {
        "mechanism": "CURVE",
        "status": 400,
        "count": 2
      }
    ],
    "dropped": 0,
    "in_flight": 2,
    "superseded": 0,
    "held_back": 0,
    "stalls": 0,
    "sources": {
      "main": {
        "connected": true,
        "applied_seq": 17,
        "staleness_ms": 1.5,
        "failed_closed": false,
        "last_error": "connection refused (host=db port=5432 user=zap dbname=zap)",
        "last_error_at": "2024-02-29T00:00:00.000042Z",
        "rejected_rows": 0,
        "last_rejected_row": null,
        "reads": 3,
        "snapshots_forced": 0,
        "last_snapshot_reason": "first read",
        "last_snapshot_at": "2024-02-29T00:00:00.000042Z",
        "digest_checks": 0,
        "reconnects": 0,
        "taken_over": []
      }
    },
    "events_dropped": [
      {
        "subscription": 1,
        "dropped": 4
      }
    ],
    "verifications": 0,
    "throttle_entries": 0,
    "sessions_ended": 0,
    "sessions_bound": 0,
    "address_queued": 0
  },
  "event": {
    "time": "2024-02-29T00:00:00.000042Z",
    "domain": "global",
    "address": "127.0.0.1",
    "mechanism": "CURVE",
    "user_id": "",
    "client_key": "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID",
    "username": null,
    "status": 400,
    "reason": "Unknown key",
    "latency_ms": 0.042,
    "lived_ms": null
  },
  "inspect": {
    "addresses": {
      "mode": "allow",
      "patterns": [
        "10.0.0.0/8",
        "127.0.0.1"
      ]
    },
    "domain_addresses": {
      "files": {
        "mode": "deny",
        "patterns": [
          "10.1.0.0/16"
        ]
      }
    },
    "ipc": null,
    "domain_ipc": {
      "files": [
        "ipc:uid=1000"
      ]
    },
    "plain": {
      "*": [
        "admin",
        "bob"
      ]
    },
    "curve": {
      "files": {
        "mode": "keys",
        "keys": []
      },
      "open": {
        "mode": "allow_any"
      }
    },
    "gssapi": {
      "kerberos": {
        "mode": "principals",
        "principals": [
          "zap/host@EXAMPLE.COM"
        ]
      }
    },
    "custom_curve_user_id": false,
    "owners": [
      {
        "domain": "files",
        "mechanism": "CURVE",
        "owner": {
          "kind": "watch",
          "id": 1,
          "path": "/etc/zap/keys"
        }
      }
    ],
    "revocations": [
      {
        "domain": "files",
        "mechanism": "CURVE",
        "names": [
          "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
        ]
      }
    ],
    "taken_over": [],
    "sessions": {
      "files": 2
    }
  },
  "reload": {
    "domain": "files",
    "path": "/etc/zap/keys",
    "entries": 1,
    "error": null,
    "rejected": [
      "/etc/zap/keys/empty.key has no entries"
    ],
    "skipped": [
      {
        "path": "/etc/zap/keys/server.key_secret",
        "reason": "secret_file"
      }
    ],
    "warning": null
  },
  "handshakes": [
    {
      "outcome": {
        "name": "refused",
        "status": 400,
        "description": "refused by the server's authenticator (ZAP 400): check the username and password (PLAIN) or ask the operator to trust this client's public key (CURVE); a denied client address looks the same, and the client cannot tell which it was: the server's decision log says"
      },
      "elapsed_ms": 3.25,
      "events": [
        {
          "at_ms": 1.0,
          "event": 1,
          "value": 7
        },
        {
          "at_ms": 3.25,
          "event": 16384,
          "value": 400
        }
      ],
      "client_mechanism": "CURVE",
      "server_greeting": {
        "version": [
          3,
          1
        ],
        "mechanism": "CURVE",
        "as_server": false
      },
      "greeting_unread": null
    },
    {
      "outcome": {
        "name": "mechanism-mismatch",
        "client": "PLAIN",
        "server": "CURVE",
        "description": "mechanism mismatch (ZMTP_MECHANISM_MISMATCH): this client uses PLAIN, the server CURVE (its greeting says so); give the client the server's public key and a key pair of its own (CURVE: ZMQ_CURVE_SERVERKEY, ZMQ_CURVE_PUBLICKEY, ZMQ_CURVE_SECRETKEY), or make the server use PLAIN"
      },
      "elapsed_ms": 2.0,
      "events": [],
      "client_mechanism": "PLAIN",
      "server_greeting": null,
      "greeting_unread": "not read: turned off"
    }
  ]
}"##;
