//! Any frames into the sans-IO entry point: a well-formed reply or a drop, never a panic.
#![no_main]

use std::sync::{Arc, OnceLock};

use actix_zap::certs::CertStore;
use actix_zap::keys::CurvePublicKey;
use actix_zap::policy::{CurvePolicy, Decision, GssapiPolicy, PasswordTable, Policy};
use actix_zap::provider::{CurveVerdict, Provider};
use actix_zap::zap::{Reply, StatusCode};
use libfuzzer_sys::fuzz_target;

fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let mut policy = Policy::default();
        policy.deny(["10.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()]).unwrap();
        policy.configure_plain("*", PasswordTable::new([("admin", "secret")])).unwrap();
        let keys: CertStore = [CurvePublicKey::from_bytes([1; 32])].into_iter().collect();
        policy.configure_curve("*", CurvePolicy::Keys(Arc::new(keys))).unwrap();
        policy.configure_curve("any", CurvePolicy::AllowAny).unwrap();
        let provider = Provider::from_fn(|domain: &str, key: &CurvePublicKey| match key.as_bytes()[0] {
            0 => Err("provider error".into()),
            1 => panic!("provider panic"),
            2 => Ok(CurveVerdict::TryLater),
            _ => Ok((domain.len() % 2 == 0).into()),
        });
        policy.configure_curve("db", CurvePolicy::Provider(provider)).unwrap();
        policy.configure_gssapi("*", GssapiPolicy::AnyPrincipal).unwrap();
        policy
    })
}

fn check(reply: &Reply, frames: &[Vec<u8>]) {
    // Fewer than 2 frames have no id to echo (the ZAP socket drops them before the policy).
    let id = frames.get(1).map_or(&[][..], Vec::as_slice);
    assert_eq!(reply.request_id, id);
    if reply.status != StatusCode::Ok {
        assert!(reply.user_id.is_empty() && reply.metadata.is_empty());
    }
    let encoded = reply.frames();
    assert_eq!(Reply::parse(&encoded).as_ref(), Some(reply));
}

fuzz_target!(|frames: Vec<Vec<u8>>| {
    std::panic::set_hook(Box::new(|_| {})); // provider panics are expected and caught
    match policy().handle(&frames) {
        Decision::Reply(reply) => check(&reply, &frames),
        Decision::Consult(consultation) => check(&consultation.resolve_blocking(), &frames),
        Decision::Verify(verification) => check(&verification.resolve_blocking(), &frames),
    }
});
