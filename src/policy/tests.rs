//! Every branch of pyzmq's procedure (reference C3) and of this project's decisions (E),
//! driven through the sans-IO entry point with raw frames.

use std::collections::HashSet;
use std::sync::Arc;

use super::*;
use crate::provider::{Admission, CurveVerdict};
use crate::zap::{Metadata, Reply, RequestBuilder, StatusCode};

const CLIENT: &str = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";
const SERVER: &str = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";

fn key(z85: &str) -> CurvePublicKey {
    CurvePublicKey::from_z85(z85).unwrap()
}

fn null(domain: &str, address: &str) -> Vec<Vec<u8>> {
    RequestBuilder::null()
        .domain(domain)
        .address(address)
        .frames()
}

fn plain(domain: &str, user: &str, password: &str) -> Vec<Vec<u8>> {
    RequestBuilder::plain(user, password)
        .domain(domain)
        .frames()
}

fn curve(domain: &str, z85: &str) -> Vec<Vec<u8>> {
    RequestBuilder::curve(key(z85)).domain(domain).frames()
}

fn reply(policy: &Policy, frames: &[Vec<u8>]) -> Reply {
    match policy.handle(frames) {
        Decision::Reply(reply) => reply,
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn assert_ok(reply: &Reply, user_id: &str) {
    assert_eq!(reply.status, StatusCode::Ok, "{reply:?}");
    assert_eq!(reply.text, "OK");
    assert_eq!(reply.user_id, user_id);
}

fn assert_denied(reply: &Reply, text: &str) {
    assert_eq!(reply.status, StatusCode::Denied, "{reply:?}");
    assert_eq!(reply.text, text);
    assert_eq!(reply.user_id, "", "E6: no user id on a refusal");
    assert!(reply.metadata.is_empty());
}

fn patterns(list: &[&str]) -> Vec<AddressPattern> {
    list.iter().map(|p| p.parse().unwrap()).collect()
}

fn curve_keys(keys: &[&str]) -> CurvePolicy {
    CurvePolicy::Keys(Arc::new(keys.iter().map(|k| key(k)).collect()))
}

// C3 step 1 and E11: malformed requests.

#[test]
fn fewer_than_two_frames_get_400_with_an_empty_id_and_no_panic() {
    // The ZAP socket drops these (no id to echo); the sans-IO policy still answers.
    let policy = Policy::default();
    let one = [b"1.0".to_vec()];
    let r = reply(&policy, &one);
    assert_denied(&r, "Not enough frames");
    assert!(r.request_id.is_empty());
    let none: [Vec<u8>; 0] = [];
    assert_denied(&reply(&policy, &none), "Not enough frames");
}

#[test]
fn two_to_five_frames_get_400_not_enough_frames_echoing_the_id() {
    let policy = Policy::default();
    let frames = [b"1.0".to_vec(), b"req-42".to_vec(), b"dom".to_vec()];
    let r = reply(&policy, &frames);
    assert_denied(&r, "Not enough frames");
    assert_eq!(r.request_id, b"req-42");
}

#[test]
fn wrong_version_gets_400_invalid_version() {
    let frames = RequestBuilder::null().domain("d").version("2.0").frames();
    assert_denied(&reply(&Policy::default(), &frames), "Invalid version");
}

#[test]
fn wrong_credential_counts_get_400_invalid_credentials() {
    let policy = Policy::default();
    for request in [
        RequestBuilder::mechanism("PLAIN").credentials(["only-user"]),
        RequestBuilder::mechanism("CURVE"),
        RequestBuilder::mechanism("CURVE").credentials(["not 32 bytes"]),
        RequestBuilder::mechanism("GSSAPI"),
    ] {
        let frames = request.domain("d").frames();
        assert_denied(&reply(&policy, &frames), "Invalid credentials");
    }
}

// C3 step 4: address rules.

#[test]
fn null_is_admitted_as_anonymous_without_rules() {
    assert_ok(
        &reply(&Policy::default(), &null("global", "10.1.1.1")),
        "anonymous",
    );
}

#[test]
fn allow_list_admits_listed_and_refuses_others() {
    let mut policy = Policy::default();
    policy.allow(patterns(&["127.0.0.1"])).unwrap();
    assert_ok(&reply(&policy, &null("global", "127.0.0.1")), "anonymous");
    assert_denied(
        &reply(&policy, &null("global", "127.0.0.2")),
        "Address not allowed",
    );
}

#[test]
fn deny_list_refuses_listed_and_admits_others() {
    let mut policy = Policy::default();
    policy.deny(patterns(&["127.0.0.1"])).unwrap();
    assert_denied(
        &reply(&policy, &null("global", "127.0.0.1")),
        "Address denied",
    );
    assert_ok(&reply(&policy, &null("global", "127.0.0.2")), "anonymous");
}

#[test]
fn allow_and_deny_together_is_a_typed_error_and_changes_nothing() {
    let mut policy = Policy::default();
    policy.deny(patterns(&["127.0.0.1"])).unwrap();
    assert_eq!(
        policy.allow(patterns(&["127.0.0.2"])),
        Err(PolicyError::AllowAndDeny { existing: "deny" })
    );
    assert!(matches!(policy.address_rules(), AddressRules::Deny(s) if s.len() == 1));

    let mut policy = Policy::default();
    policy.allow(patterns(&["127.0.0.1"])).unwrap();
    assert_eq!(
        policy.deny(patterns(&["127.0.0.2"])),
        Err(PolicyError::AllowAndDeny { existing: "allow" })
    );
}

#[test]
fn removing_the_last_allowed_address_refuses_everyone_until_cleared() {
    let mut policy = Policy::default();
    policy.allow(patterns(&["127.0.0.1"])).unwrap();
    assert_eq!(
        policy.remove_addresses(&Scope::Global, &patterns(&["127.0.0.1", "1.1.1.1"])),
        Ok(1)
    );
    assert_eq!(
        policy.address_rules(),
        &AddressRules::Allow(Default::default())
    );
    assert_denied(
        &reply(&policy, &null("global", "127.0.0.1")),
        "Address not allowed",
    );
    // Still an allow-list: a deny-list cannot be mixed in, and nothing changes.
    assert_eq!(
        policy.deny(patterns(&["127.0.0.2"])),
        Err(PolicyError::AllowAndDeny { existing: "allow" })
    );
    assert_denied(
        &reply(&policy, &null("global", "127.0.0.3")),
        "Address not allowed",
    );
    policy.clear_address_rules(&Scope::Global).unwrap();
    assert_ok(&reply(&policy, &null("global", "127.0.0.1")), "anonymous");
    policy.deny(patterns(&["127.0.0.1"])).unwrap();
}

#[test]
fn removing_the_last_denied_address_denies_no_ip_but_keeps_refusing_ipc_peers() {
    let mut policy = Policy::default();
    policy.deny(patterns(&["127.0.0.1"])).unwrap();
    assert_eq!(
        policy.remove_addresses(&Scope::Global, &patterns(&["127.0.0.1"])),
        Ok(1)
    );
    assert_eq!(
        policy.address_rules(),
        &AddressRules::Deny(Default::default())
    );
    assert_ok(&reply(&policy, &null("global", "127.0.0.1")), "anonymous");
    // The list is still in force: a peer that is no IP peer is refused, as before removal.
    assert_denied(
        &reply(&policy, &null("global", "localhost:0:0:42")),
        "Address not allowed",
    );
    policy.clear_address_rules(&Scope::Global).unwrap();
    assert_ok(
        &reply(&policy, &null("global", "localhost:0:0:42")),
        "anonymous",
    );
}

#[test]
fn an_empty_allow_list_set_as_a_whole_refuses_everyone() {
    let mut policy = Policy::default();
    let domain = Scope::Domain("d".into());
    for scope in [&Scope::Global, &domain] {
        policy
            .set_address_rules(scope, AddressRules::Allow(Default::default()))
            .unwrap();
    }
    assert_denied(
        &reply(&policy, &null("d", "127.0.0.1")),
        "Address not allowed",
    );
    policy.clear_address_rules(&Scope::Global).unwrap();
    assert_denied(
        &reply(&policy, &null("d", "127.0.0.1")),
        "Address not allowed",
    );
    assert_ok(&reply(&policy, &null("other", "127.0.0.1")), "anonymous");
    policy
        .set_address_rules(&domain, AddressRules::Open)
        .unwrap();
    assert!(policy.domain_address_rules().is_empty());
    assert_ok(&reply(&policy, &null("d", "127.0.0.1")), "anonymous");
}

#[test]
fn address_rules_for_the_any_domain_are_a_typed_error_and_change_nothing() {
    let mut policy = Policy::default();
    let any = Scope::Domain("*".into());
    let list = patterns(&["127.0.0.1"]);
    let error = Err(PolicyError::AnyDomainAddressRules);
    assert_eq!(
        policy.add_addresses(&any, ListKind::Allow, list.clone()),
        error
    );
    assert_eq!(
        policy.add_addresses(&any, ListKind::Deny, list.clone()),
        error
    );
    assert_eq!(
        policy.remove_addresses(&any, &list),
        Err(PolicyError::AnyDomainAddressRules)
    );
    assert_eq!(policy.set_address_rules(&any, AddressRules::Open), error);
    assert_eq!(policy.clear_address_rules(&any), error);
    assert_eq!(policy.allow_ipc(&any, [IpcRule::Any]), error);
    assert_eq!(
        policy.remove_ipc(&any, &[IpcRule::Any]),
        Err(PolicyError::AnyDomainAddressRules)
    );
    assert_eq!(policy.clear_ipc_rules(&any), error);
    assert!(policy.domain_address_rules().is_empty());
    assert_eq!(policy.address_rules(), &AddressRules::Open);
    assert!(PolicyError::AnyDomainAddressRules
        .to_string()
        .contains("global rules already cover every domain"));
}

#[test]
fn ipc_peers_pass_without_rules_and_need_an_ipc_rule_once_a_list_is_in_force() {
    let ipc = "localhost:1000:1000:77";
    let mut policy = Policy::default();
    assert_ok(&reply(&policy, &null("d", ipc)), "anonymous");
    policy.deny(patterns(&["0.0.0.0/0", "::/0"])).unwrap();
    assert_denied(&reply(&policy, &null("d", ipc)), "Address not allowed");
    policy
        .allow_ipc(&Scope::Global, [IpcRule::Uid(1000)])
        .unwrap();
    assert_ok(&reply(&policy, &null("d", ipc)), "anonymous");
    assert_denied(
        &reply(&policy, &null("d", "localhost:0:0:1")),
        "Address not allowed",
    );
    // A domain's own IPC rules narrow further.
    let d = Scope::Domain("d".into());
    policy.allow_ipc(&d, [IpcRule::Gid(5)]).unwrap();
    assert_denied(&reply(&policy, &null("d", ipc)), "Address not allowed");
    assert_ok(&reply(&policy, &null("e", ipc)), "anonymous");
    // Emptied, the domain's IPC list still refuses; cleared, it is gone.
    assert_eq!(policy.remove_ipc(&d, &[IpcRule::Gid(5)]), Ok(1));
    assert!(policy.domain_address_rules().contains_key("d"));
    assert_denied(
        &reply(&policy, &null("d", "localhost:5:5:1")),
        "Address not allowed",
    );
    policy.clear_ipc_rules(&d).unwrap();
    assert!(policy.domain_address_rules().is_empty());
    assert_ok(&reply(&policy, &null("d", ipc)), "anonymous");
}

#[test]
fn domain_rules_apply_to_their_domain_on_top_of_global_rules() {
    let mut policy = Policy::default();
    let internal = Scope::Domain("internal".into());
    policy
        .add_addresses(&internal, ListKind::Allow, patterns(&["10.0.0.0/8"]))
        .unwrap();
    assert_ok(&reply(&policy, &null("internal", "10.1.2.3")), "anonymous");
    assert_denied(
        &reply(&policy, &null("internal", "192.168.0.1")),
        "Address not allowed",
    );
    // Other domains are not affected by internal's rules...
    assert_ok(&reply(&policy, &null("public", "192.168.0.1")), "anonymous");
    // ...but every domain is by the global ones.
    policy.deny(patterns(&["10.9.0.0/16"])).unwrap();
    assert_denied(
        &reply(&policy, &null("internal", "10.9.1.1")),
        "Address denied",
    );
    // A domain may deny while the global scope allows, and the other way round.
    let public = Scope::Domain("public".into());
    policy
        .add_addresses(&public, ListKind::Deny, patterns(&["192.168.0.0/16"]))
        .unwrap();
    assert_denied(
        &reply(&policy, &null("public", "192.168.0.1")),
        "Address denied",
    );
    // Removing the last entry of a domain's deny-list denies no IP there any more...
    assert_eq!(
        policy.remove_addresses(&public, &patterns(&["192.168.0.0/16"])),
        Ok(1)
    );
    assert_ok(&reply(&policy, &null("public", "192.168.0.1")), "anonymous");
    // ...while an emptied allow-list stays and refuses everyone in that domain.
    assert_eq!(
        policy.remove_addresses(&internal, &patterns(&["10.0.0.0/8"])),
        Ok(1)
    );
    assert_denied(
        &reply(&policy, &null("internal", "10.1.2.3")),
        "Address not allowed",
    );
    policy.clear_address_rules(&internal).unwrap();
    policy.clear_address_rules(&public).unwrap();
    assert!(policy.domain_address_rules().is_empty());
    assert_ok(&reply(&policy, &null("internal", "10.1.2.3")), "anonymous");
    let long = Scope::Domain("x".repeat(256));
    assert!(policy
        .add_addresses(&long, ListKind::Allow, patterns(&["1.1.1.1"]))
        .is_err());
}

#[test]
fn an_allowed_address_must_still_authenticate_plain_and_curve() {
    let mut policy = Policy::default();
    policy.allow(patterns(&["127.0.0.1"])).unwrap();
    policy
        .configure_plain("*", PasswordTable::new([("admin", "secret")]))
        .unwrap();
    assert_denied(
        &reply(&policy, &plain("", "admin", "wrong")),
        "Invalid password",
    );
    assert_denied(&reply(&policy, &curve("", CLIENT)), "Unknown domain");
}

#[test]
fn a_denied_address_is_refused_before_credentials_are_checked() {
    let mut policy = Policy::default();
    policy.deny(patterns(&["127.0.0.1"])).unwrap();
    policy
        .configure_plain("*", PasswordTable::new([("admin", "secret")]))
        .unwrap();
    assert_denied(
        &reply(&policy, &plain("", "admin", "secret")),
        "Address denied",
    );
}

// C3 PLAIN branch and E3.

#[test]
fn plain_texts_follow_pyzmq() {
    let mut policy = Policy::default();
    assert_denied(
        &reply(&policy, &plain("", "admin", "secret")),
        "No passwords defined",
    );
    policy
        .configure_plain("global", PasswordTable::new([("admin", "secret")]))
        .unwrap();
    assert_ok(
        &reply(&policy, &plain("global", "admin", "secret")),
        "admin",
    );
    assert_denied(
        &reply(&policy, &plain("other", "admin", "secret")),
        "Invalid domain",
    );
    assert_denied(
        &reply(&policy, &plain("global", "root", "secret")),
        "Invalid username",
    );
    assert_denied(
        &reply(&policy, &plain("global", "admin", "secreT")),
        "Invalid password",
    );
}

#[test]
fn star_is_the_plain_fallback_for_every_domain_without_its_own_table() {
    let mut policy = Policy::default();
    policy
        .configure_plain("*", PasswordTable::new([("any", "1")]))
        .unwrap();
    policy
        .configure_plain("special", PasswordTable::new([("own", "2")]))
        .unwrap();
    assert_ok(&reply(&policy, &plain("", "any", "1")), "any");
    assert_ok(&reply(&policy, &plain("global", "any", "1")), "any");
    assert_ok(&reply(&policy, &plain("special", "own", "2")), "own");
    // A domain with its own table does not fall back.
    assert_denied(
        &reply(&policy, &plain("special", "any", "1")),
        "Invalid username",
    );
}

#[test]
fn empty_password_table_and_long_domain_are_typed_errors() {
    let mut policy = Policy::default();
    let empty = PasswordTable::new(Vec::<(String, String)>::new());
    assert_eq!(
        policy.configure_plain("d", empty),
        Err(PolicyError::EmptyPasswordTable("d".into()))
    );
    let long = "x".repeat(256);
    let table = PasswordTable::new([("a", "b")]);
    assert_eq!(
        policy.configure_plain(&long, table),
        Err(PolicyError::DomainTooLong(256))
    );
    assert_eq!(
        policy.configure_curve(&long, CurvePolicy::AllowAny),
        Err(PolicyError::DomainTooLong(256))
    );
}

// C3 CURVE branch, E3 and E4.

#[test]
fn curve_with_keys_admits_known_and_refuses_unknown() {
    let mut policy = Policy::default();
    policy.configure_curve("*", curve_keys(&[CLIENT])).unwrap();
    assert_ok(&reply(&policy, &curve("", CLIENT)), CLIENT);
    assert_denied(&reply(&policy, &curve("", SERVER)), "Unknown key");
}

#[test]
fn curve_without_configuration_is_unknown_domain() {
    assert_denied(
        &reply(&Policy::default(), &curve("", CLIENT)),
        "Unknown domain",
    );
    let mut policy = Policy::default();
    policy.configure_curve("a", CurvePolicy::AllowAny).unwrap();
    assert_denied(&reply(&policy, &curve("b", CLIENT)), "Unknown domain");
}

#[test]
fn allow_any_is_per_domain_and_does_not_leak() {
    let mut policy = Policy::default();
    policy
        .configure_curve("open", CurvePolicy::AllowAny)
        .unwrap();
    policy
        .configure_curve("closed", curve_keys(&[SERVER]))
        .unwrap();
    assert_ok(&reply(&policy, &curve("open", CLIENT)), CLIENT);
    assert_denied(&reply(&policy, &curve("closed", CLIENT)), "Unknown key");
}

#[test]
fn a_provider_in_one_domain_leaves_other_domains_key_sets_in_force() {
    let mut policy = Policy::default();
    let provider = Provider::from_fn(|_: &str, _: &CurvePublicKey| Ok(true.into()));
    policy
        .configure_curve("db", CurvePolicy::Provider(provider))
        .unwrap();
    policy
        .configure_curve("files", curve_keys(&[CLIENT]))
        .unwrap();
    assert_ok(&reply(&policy, &curve("files", CLIENT)), CLIENT);
    assert_denied(&reply(&policy, &curve("files", SERVER)), "Unknown key");
    assert!(matches!(
        policy.handle(&curve("db", SERVER)),
        Decision::Consult(_)
    ));
}

#[test]
fn reconfiguring_a_domain_replaces_only_that_domain() {
    let mut policy = Policy::default();
    policy.configure_curve("a", CurvePolicy::AllowAny).unwrap();
    policy.configure_curve("b", CurvePolicy::AllowAny).unwrap();
    policy.configure_curve("a", curve_keys(&[SERVER])).unwrap();
    assert_denied(&reply(&policy, &curve("a", CLIENT)), "Unknown key");
    assert_ok(&reply(&policy, &curve("b", CLIENT)), CLIENT);
    assert_eq!(policy.unconfigure("b", MechanismKind::Curve), Ok(true));
    assert_denied(&reply(&policy, &curve("b", CLIENT)), "Unknown domain");
}

#[test]
fn certificate_metadata_goes_into_the_reply() {
    let meta = Metadata::from_pairs([("Hello", "World")]).unwrap();
    let mut store = CertStore::default();
    store.insert(key(CLIENT), meta.clone());
    let mut policy = Policy::default();
    policy
        .configure_curve("*", CurvePolicy::Keys(Arc::new(store)))
        .unwrap();
    let r = reply(&policy, &curve("", CLIENT));
    assert_ok(&r, CLIENT);
    assert_eq!(r.metadata, meta);
}

fn consult(policy: &Policy, frames: &[Vec<u8>]) -> Consultation {
    match policy.handle(frames) {
        Decision::Consult(c) => c,
        other => panic!("expected a consultation, got {other:?}"),
    }
}

#[test]
fn a_custom_user_id_mapping_is_consulted_and_its_failures_give_500() {
    let mut policy = Policy::default();
    policy.configure_curve("*", CurvePolicy::AllowAny).unwrap();
    policy.set_curve_user_id(Some(Arc::new(
        |_: &CurvePublicKey| Ok("custom".to_string()),
    )));
    let c = consult(&policy, &curve("", CLIENT));
    assert!(c.provider.is_none() && c.user_id_mapper.is_some());
    assert_ok(&c.resolve_blocking(), "custom");
    // Refusals never reach the mapping.
    policy.configure_curve("*", curve_keys(&[SERVER])).unwrap();
    assert_denied(&reply(&policy, &curve("", CLIENT)), "Unknown key");

    policy.configure_curve("*", CurvePolicy::AllowAny).unwrap();
    policy.set_curve_user_id(Some(Arc::new(|_: &CurvePublicKey| panic!("mapper bug"))));
    let r = consult(&policy, &curve("", CLIENT)).resolve_blocking();
    assert_eq!(
        (r.status, r.user_id.as_str()),
        (StatusCode::InternalError, "")
    );
    policy.set_curve_user_id(Some(Arc::new(|_: &CurvePublicKey| {
        Err("no such user".into())
    })));
    let r = consult(&policy, &curve("", CLIENT)).resolve_blocking();
    assert_eq!(r.status, StatusCode::InternalError);

    policy.set_curve_user_id(None);
    assert_ok(&reply(&policy, &curve("", CLIENT)), CLIENT);
}

#[test]
fn a_provider_admission_without_user_id_goes_through_the_mapping() {
    let mut policy = Policy::default();
    let provider = Provider::from_fn(|_: &str, _: &CurvePublicKey| Ok(true.into()));
    policy
        .configure_curve("*", CurvePolicy::Provider(provider))
        .unwrap();
    policy.set_curve_user_id(Some(Arc::new(|k: &CurvePublicKey| {
        Ok(format!("u-{}", &k.to_z85()[..4]))
    })));
    assert_ok(
        &consult(&policy, &curve("", CLIENT)).resolve_blocking(),
        "u-Yne@",
    );
}

#[test]
fn provider_answers_map_to_status_codes() {
    let mut policy = Policy::default();
    let provider = Provider::from_fn(|_: &str, _: &CurvePublicKey| Ok(true.into()));
    policy
        .configure_curve("*", CurvePolicy::Provider(provider))
        .unwrap();
    let consult = || consult(&policy, &curve("dom", CLIENT));
    let c = consult();
    assert_eq!((c.domain.as_str(), c.public_key), ("dom", key(CLIENT)));
    assert_ok(&c.resolve_blocking(), CLIENT);

    assert_ok(&consult().finish(Ok(CurveVerdict::admit())), CLIENT);
    let named = CurveVerdict::Admit(Admission {
        user_id: Some("alice".into()),
        metadata: Metadata::from_pairs([("Role", "admin")]).unwrap(),
    });
    let r = consult().finish(Ok(named));
    assert_ok(&r, "alice");
    assert_eq!(
        r.metadata.pairs(),
        vec![("Role".to_string(), b"admin".to_vec())]
    );
    assert_denied(&consult().finish(Ok(CurveVerdict::Refuse)), "Unknown key");
    let status = |outcome| consult().finish(outcome).status;
    assert_eq!(status(Ok(CurveVerdict::TryLater)), StatusCode::TryLater);
    assert_eq!(
        status(Err(ProviderFailure::Overloaded)),
        StatusCode::TryLater
    );
    assert_eq!(
        status(Err(ProviderFailure::Error("db down".into()))),
        StatusCode::InternalError
    );
    assert_eq!(
        status(Err(ProviderFailure::Panicked)),
        StatusCode::InternalError
    );
    assert_eq!(
        status(Err(ProviderFailure::TimedOut)),
        StatusCode::InternalError
    );
    for outcome in [Err(ProviderFailure::TimedOut), Ok(CurveVerdict::TryLater)] {
        assert_eq!(consult().finish(outcome).user_id, "");
    }
}

// GSSAPI and unknown mechanisms.

#[test]
fn gssapi_needs_configuration_and_checks_principals() {
    let gss = |domain: &str, p: &str| RequestBuilder::gssapi(p).domain(domain).frames();
    let mut policy = Policy::default();
    assert_denied(&reply(&policy, &gss("", "alice@R")), "Unknown domain");
    policy
        .configure_gssapi("*", GssapiPolicy::AnyPrincipal)
        .unwrap();
    assert_ok(&reply(&policy, &gss("", "alice@R")), "alice@R");
    let only_bob: HashSet<String> = ["bob@R".to_string()].into();
    policy
        .configure_gssapi("k", GssapiPolicy::Principals(only_bob))
        .unwrap();
    assert_ok(&reply(&policy, &gss("k", "bob@R")), "bob@R");
    assert_denied(&reply(&policy, &gss("k", "alice@R")), "Unknown principal");
    let bad = RequestBuilder::gssapi(b"\xff\xfe").frames();
    assert_denied(&reply(&policy, &bad), "Invalid credentials");
}

#[test]
fn unknown_mechanisms_are_refused_even_from_allowed_addresses() {
    let mut policy = Policy::default();
    policy.allow(patterns(&["127.0.0.1"])).unwrap();
    let frames = RequestBuilder::mechanism("MAGIC")
        .credentials(["x"])
        .domain("d")
        .frames();
    assert_denied(&reply(&policy, &frames), "Unsupported mechanism");
}

#[test]
fn request_ids_are_echoed_verbatim() {
    let frames = RequestBuilder::null()
        .domain("d")
        .request_id(b"\x00\xffid")
        .frames();
    assert_eq!(reply(&Policy::default(), &frames).request_id, b"\x00\xffid");
}
