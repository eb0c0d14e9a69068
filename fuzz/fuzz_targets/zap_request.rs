//! Any frames, at any time, into the sans-IO entry point, and the work it asks for handed back
//! later (after an arbitrary delay and policy change): a well-formed reply or a drop, never a
//! panic; a store's domain never admitted at or past its deadline; a remembered verification
//! never older than `VERIFIED_FOR`.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use actix_zap::certs::CertStore;
use actix_zap::keys::CurvePublicKey;
use actix_zap::policy::{
    deadline, Answer, Argon2Limits, Change, CurvePolicy, Decision, GssapiPolicy, HashedPassword,
    HashedTable, Inline, MechanismKind, Now, Origin, Owner, OwnerId, PasswordTable, Policy,
    VerificationCache, VERIFIED_FOR,
};
use actix_zap::provider::{CurveVerdict, Provider};
use actix_zap::zap::{Mechanism, Metadata, Reply, Request, StatusCode};
use futures::executor::block_on;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

/// argon2id of `pw` and of `new` with tiny parameters (m=64 KiB, t=1), so fuzzing stays fast.
const PW: &str =
    "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$u6+ZeadSAoHmLPnrhAtsIWyy7AO6oEfGF6xJ6Ek8JXE";
const NEW: &str =
    "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$wvNMEsxd0DRscP1SoJt0+WANrgLMvbYaUxun8uWvyeY";

/// The store's domain, trusted for one second after `base()`.
const STORE_DOMAIN: &str = "fleet";
const TRUSTED_FOR: Duration = Duration::from_secs(1);

/// The key `[3; 32]` expires at this wall-clock time.
const EXPIRY: Duration = Duration::from_secs(1_000_000);

#[derive(Debug, Arbitrary)]
struct Input {
    /// Milliseconds after `base()` at which the request is decided.
    decided_ms: u32,
    /// Milliseconds later, the work comes back.
    back_ms: u32,
    /// The wall clock at the decision, in seconds since 1970 (keys expire at `EXPIRY`).
    wall_secs: u32,
    /// With a custom user-id mapping (every CURVE admission is then a consultation).
    mapped: bool,
    /// A change made while the work runs.
    change: Option<u8>,
    frames: Frames,
}

/// Raw frames, or a well-formed request built from choices that reach every branch (a
/// fuzzer would take long to find `CURVE` and a 32-byte key by itself).
#[derive(Debug, Arbitrary)]
enum Frames {
    Raw(Vec<Vec<u8>>),
    Request {
        id: Vec<u8>,
        domain: Domain,
        address: Address,
        mechanism: Mech,
    },
}

#[derive(Debug, Arbitrary)]
enum Domain {
    Store,
    AllowAny,
    Provider,
    Empty,
    Other(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
enum Address {
    Loopback,
    Denied,
    V6Loopback,
    Raw(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
enum Mech {
    Null,
    Plain {
        user: User,
        password: Password,
    },
    /// A key `[byte; 32]` (0 to 4 are the interesting ones), or any 32 bytes.
    Curve(u8),
    CurveRaw([u8; 32]),
    Gssapi(Vec<u8>),
    Unknown(Vec<u8>, Vec<Vec<u8>>),
}

#[derive(Debug, Arbitrary)]
enum User {
    Alice,
    Admin,
    Other(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
enum Password {
    Pw,
    New,
    Secret,
    Other(Vec<u8>),
}

impl Frames {
    fn build(self) -> Vec<Vec<u8>> {
        let (id, domain, address, mechanism) = match self {
            Frames::Raw(frames) => return frames,
            Frames::Request {
                id,
                domain,
                address,
                mechanism,
            } => (id, domain, address, mechanism),
        };
        let domain = match domain {
            Domain::Store => STORE_DOMAIN.as_bytes().to_vec(),
            Domain::AllowAny => b"any".to_vec(),
            Domain::Provider => b"db".to_vec(),
            Domain::Empty => Vec::new(),
            Domain::Other(domain) => domain,
        };
        let address = match address {
            Address::Loopback => b"127.0.0.1".to_vec(),
            Address::Denied => b"10.1.2.3".to_vec(),
            Address::V6Loopback => b"::1".to_vec(),
            Address::Raw(address) => address,
        };
        let (name, credentials): (&[u8], Vec<Vec<u8>>) = match mechanism {
            Mech::Null => (b"NULL", vec![]),
            Mech::Plain { user, password } => {
                let user = match user {
                    User::Alice => b"alice".to_vec(),
                    User::Admin => b"admin".to_vec(),
                    User::Other(user) => user,
                };
                let password = match password {
                    Password::Pw => b"pw".to_vec(),
                    Password::New => b"new".to_vec(),
                    Password::Secret => b"secret".to_vec(),
                    Password::Other(password) => password,
                };
                (b"PLAIN", vec![user, password])
            }
            Mech::Curve(byte) => (b"CURVE", vec![vec![byte % 8; 32]]),
            Mech::CurveRaw(key) => (b"CURVE", vec![key.to_vec()]),
            Mech::Gssapi(principal) => (b"GSSAPI", vec![principal]),
            Mech::Unknown(name, credentials) => {
                let mut frames = vec![b"1.0".to_vec(), id, domain, address, vec![], name];
                frames.extend(credentials);
                return frames;
            }
        };
        let mut frames = vec![b"1.0".to_vec(), id, domain, address, vec![], name.to_vec()];
        frames.extend(credentials);
        frames
    }
}

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn hash(phc: &str) -> HashedPassword {
    HashedPassword::parse(phc, &Argon2Limits::default()).unwrap()
}

/// Deny rules, PLAIN, CURVE keys (one expiring), allow-any, GSSAPI, a provider that errors,
/// panics and asks to retry, and a store's domain with a key and a hashed user, trusted until
/// one second after `base()`.
fn policy(mapped: bool) -> &'static (Policy, OwnerId) {
    static PLAIN: OnceLock<(Policy, OwnerId)> = OnceLock::new();
    static MAPPED: OnceLock<(Policy, OwnerId)> = OnceLock::new();
    let build = || {
        let mut policy = Policy::default();
        policy
            .deny(["10.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()])
            .unwrap();
        policy
            .configure_plain("*", PasswordTable::new([("admin", "secret")]))
            .unwrap();
        let mut keys: CertStore = [CurvePublicKey::from_bytes([1; 32])].into_iter().collect();
        let expires = SystemTime::UNIX_EPOCH + EXPIRY;
        keys.upsert(
            CurvePublicKey::from_bytes([3; 32]),
            Metadata::empty(),
            None,
            Some(expires),
        );
        policy
            .configure_curve("*", CurvePolicy::Keys(Arc::new(keys)))
            .unwrap();
        policy
            .configure_curve("any", CurvePolicy::AllowAny)
            .unwrap();
        let provider =
            Provider::from_fn(
                |domain: &str, key: &CurvePublicKey| match key.as_bytes()[0] {
                    0 => Err("provider error".into()),
                    1 => panic!("provider panic"),
                    2 => Ok(CurveVerdict::TryLater),
                    _ => Ok((domain.len() % 2 == 0).into()),
                },
            );
        policy
            .configure_curve("db", CurvePolicy::Provider(provider))
            .unwrap();
        policy
            .configure_gssapi("*", GssapiPolicy::AnyPrincipal)
            .unwrap();
        if mapped {
            policy.set_curve_user_id(Some(Arc::new(|key: &CurvePublicKey| {
                match key.as_bytes()[1] {
                    0 => Err("mapping error".into()),
                    _ => Ok(key.to_z85()),
                }
            })));
        }
        let store = policy.new_owner_id();
        for mechanism in [MechanismKind::Curve, MechanismKind::Plain] {
            let owner = Owner::Store {
                id: store,
                name: "db".into(),
            };
            let claim = Change::Claim {
                domain: STORE_DOMAIN.into(),
                mechanism,
                owner,
            };
            policy.apply(Origin::HAND, claim).unwrap();
        }
        let keys: CertStore = [CurvePublicKey::from_bytes([4; 32])].into_iter().collect();
        let users: HashedTable = [(b"alice".to_vec(), hash(PW))].into_iter().collect();
        for change in [
            Change::curve_keys(STORE_DOMAIN, keys),
            Change::hashed_users(STORE_DOMAIN, users),
            Change::Trust {
                until: base() + TRUSTED_FOR,
            },
        ] {
            policy.apply(Origin::Owner(store), change).unwrap();
        }
        (policy, store)
    };
    if mapped {
        MAPPED.get_or_init(build)
    } else {
        PLAIN.get_or_init(build)
    }
}

/// The policy after a change made while the work ran (or as it was).
fn changed(policy: &Policy, store: OwnerId, change: Option<u8>) -> Policy {
    let mut policy = policy.clone();
    let key = |byte| CurvePublicKey::from_bytes([byte; 32]);
    let change = match change.map(|c| c % 6) {
        None => return policy,
        Some(0) => Change::RemoveCurveKeys {
            domain: "*".into(),
            keys: vec![key(1), key(3)],
        },
        Some(1) => Change::ConfigureCurve {
            domain: "db".into(),
            curve: CurvePolicy::Provider(Provider::from_fn(|_: &str, _: &CurvePublicKey| {
                Ok(true.into())
            })),
        },
        Some(2) => Change::AddPlainUsers {
            domain: STORE_DOMAIN.into(),
            users: vec![(b"alice".to_vec(), hash(NEW))],
        },
        Some(3) => Change::Trust {
            until: base() + 3 * TRUSTED_FOR,
        },
        Some(4) => Change::SetCurveUserId(None),
        _ => Change::RemovePlainUsers {
            domain: STORE_DOMAIN.into(),
            users: vec![b"alice".to_vec()],
        },
    };
    let origin = match change {
        Change::Trust { .. } | Change::AddPlainUsers { .. } => Origin::Owner(store),
        _ => Origin::HAND,
    };
    policy.apply(origin, change).unwrap();
    policy
}

fn check(policy: &Policy, reply: &Reply, frames: &[Vec<u8>], at: &Now) {
    // Fewer than 2 frames have no id to echo (the ZAP socket drops them before the policy).
    let id = frames.get(1).map_or(&[][..], Vec::as_slice);
    assert_eq!(reply.request_id, id);
    if reply.status != StatusCode::Ok {
        assert!(reply.user_id.is_empty() && reply.metadata.is_empty());
    }
    let encoded = reply.frames();
    assert_eq!(Reply::parse(&encoded).as_ref(), Some(reply));
    // A store's domain is never admitted at or past its deadline.
    let Ok(request) = Request::parse(frames) else {
        return;
    };
    let mechanism = match request.mechanism {
        Mechanism::Plain { .. } => MechanismKind::Plain,
        Mechanism::Curve { .. } => MechanismKind::Curve,
        _ => return,
    };
    if reply.status == StatusCode::Ok && &*request.domain == STORE_DOMAIN {
        let trust = policy.trust(STORE_DOMAIN, mechanism);
        assert!(
            trust.holds_at(at.instant()),
            "admitted past the deadline: {trust:?}"
        );
    }
}

/// Carries a decision out at `at` (work answered at once), checking the reply.
fn carry_out(policy: &Policy, decision: Decision, frames: &[Vec<u8>], at: &Now) {
    let reply = match decision {
        Decision::Reply(reply) => reply,
        Decision::Consult(consultation) => {
            let verdict = block_on(consultation.ask(Inline));
            consultation.finish(verdict, at)
        }
        Decision::Verify(verification) => {
            let matched = verification.verify();
            verification.finish(Ok(matched), at)
        }
    };
    check(policy, &reply, frames, at);
}

fuzz_target!(|input: Input| {
    std::panic::set_hook(Box::new(|_| {})); // provider panics are expected and caught
    let (policy, store) = policy(input.mapped);
    let frames = &input.frames.build();
    let decided_at = base() + Duration::from_millis(input.decided_ms.into());
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(input.wall_secs.into());
    let now = Now::fixed(decided_at, wall);
    let back = now.later(Duration::from_millis(input.back_ms.into()));
    let request_deadline = deadline(now.instant(), Duration::from_secs(5));
    let answer = match policy.handle_at(frames, &now) {
        Decision::Reply(reply) => return check(policy, &reply, frames, &now),
        Decision::Consult(consultation) => {
            let verdict = block_on(consultation.ask(Inline));
            Answer::Consulted(consultation, verdict)
        }
        Decision::Verify(verification) => {
            let mut cache = VerificationCache::new([7; 32]);
            let matched = verification.verify();
            if matched {
                cache.remember(&verification, now.instant());
                let fresh = back.instant().saturating_duration_since(now.instant()) < VERIFIED_FOR;
                assert_eq!(cache.remembers(&verification, back.instant()), fresh);
            }
            Answer::Verified(verification, Ok(matched))
        }
    };
    let policy = changed(policy, *store, input.change);
    let decision = policy.resume(answer, frames, &back, request_deadline);
    carry_out(&policy, decision, frames, &back);
});
