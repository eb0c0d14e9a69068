//! The store's revocations win over work under way, as the hand's do
//! (`hashed_plain::a_user_removed_while_its_password_is_being_verified_is_refused`,
//! `revocation::a_key_revoked_while_its_provider_is_asked_is_refused`): a handshake held on
//! its argon2 verification or its user-id mapping, behind a gate the test opens only after the
//! follower applied the store's change, is refused. The gate, not timing, proves the work was
//! in flight when the change landed.

use std::sync::Arc;

use super::{Db, Member};
use crate::common::*;
use actix_zap::messages::BeforeVerificationForTests;

#[test]
fn a_user_disabled_by_the_store_while_its_password_is_being_verified_is_refused() {
    let mut db = Db::new("held_user");
    db.add_user("alice", "pw");
    let seq = db.add_user("bob", "pw");
    let member = Member::start(&db, 0, |s| s);
    member.at(seq);
    let gate = Arc::new(Gate::default());
    let hook = Arc::clone(&gate);
    let hook = BeforeVerificationForTests(Arc::new(move || hook.pass()));
    member.auth.send(hook).unwrap();

    // alice, with her right password, is held on the argon2 worker...
    let _alice = member.connect_plain("alice", "pw");
    gate.wait_entered(1);
    // ...while the store disables her and the follower applies it.
    let disable = db.store.disable_user(&mut db.client, "fleet", "alice");
    let disabled = db.runtime.block_on(disable).unwrap();
    member.at(disabled.seq);
    assert!(!gate.is_open(), "still held when the change landed");
    assert_eq!(member.auth.stats().unwrap().in_flight, 1);
    gate.open();
    // The verification succeeds, but the narrower policy answers.
    member.plain_outcome().assert_refused(400);

    // The refusal was the disable's: bob gets in, and so does alice once enabled again.
    member.plain("bob", "pw").assert_admitted("bob");
    let enable = db.store.enable_user(&mut db.client, "fleet", "alice");
    let enabled = db.runtime.block_on(enable).unwrap();
    member
        .at(enabled.seq)
        .plain("alice", "pw")
        .assert_admitted("alice");
    member.stop();
}

#[test]
fn a_key_removed_by_the_store_while_its_user_id_mapping_runs_is_refused() {
    let mut db = Db::new("held_key");
    let (alice, carol) = (Keys::generate(), Keys::generate());
    let seq = db.add_key(&alice, "");
    let member = Member::start(&db, 0, |s| s);
    member.at(seq);
    // Keys without a stored user id are named by user code, asked on the provider pool.
    let gate = Arc::new(Gate::default());
    let hook = Arc::clone(&gate);
    member
        .auth
        .set_curve_user_id(move |_| {
            hook.pass();
            "mapped".to_owned()
        })
        .unwrap();

    let _alice = member.connect_curve(&alice);
    gate.wait_entered(1);
    let remove = db.store.remove_key(&mut db.client, "fleet", &alice.public);
    let removed = db.runtime.block_on(remove).unwrap();
    member.at(removed.seq);
    assert!(!gate.is_open(), "still held when the change landed");
    assert_eq!(member.auth.stats().unwrap().in_flight, 1);
    gate.open();
    // The mapping names the key, but the key is gone: refused.
    member.curve_outcome().assert_refused(400);

    // The refusal was the removal's: a key the store adds is admitted, named by the mapping.
    let added = db.add_key(&carol, "");
    member.at(added).curve(&carol).assert_admitted("mapped");
    member.stop();
}
