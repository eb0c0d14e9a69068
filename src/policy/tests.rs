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
    let now = Now::read();
    let c = consult();
    assert_eq!((c.domain.as_str(), c.public_key), ("dom", key(CLIENT)));
    assert_ok(&c.resolve_blocking(), CLIENT);

    assert_ok(&consult().finish(Ok(CurveVerdict::admit()), &now), CLIENT);
    let named = CurveVerdict::Admit(Admission {
        user_id: Some("alice".into()),
        metadata: Metadata::from_pairs([("Role", "admin")]).unwrap(),
    });
    let r = consult().finish(Ok(named), &now);
    assert_ok(&r, "alice");
    assert_eq!(
        r.metadata.pairs(),
        vec![("Role".to_string(), b"admin".to_vec())]
    );
    assert_denied(
        &consult().finish(Ok(CurveVerdict::Refuse), &now),
        "Unknown key",
    );
    let status = |outcome| consult().finish(outcome, &now).status;
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
        assert_eq!(consult().finish(outcome, &now).user_id, "");
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

// Time is an input: deadlines, expiries and answers that come back later, without sleeping.

mod time {
    use std::time::{Duration, Instant, SystemTime};

    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    use crate::policy::cheap_hash as cheap;

    fn reply_at(policy: &Policy, frames: &[Vec<u8>], now: &Now) -> Reply {
        match policy.handle_at(frames, now) {
            Decision::Reply(reply) => reply,
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    fn assert_stale(reply: &Reply) {
        assert_eq!(reply.status, StatusCode::InternalError, "{reply:?}");
        assert_eq!(reply.text, "Credential store out of touch");
        assert_eq!(reply.user_id, "");
    }

    /// A policy whose `"*"` admits any CURVE key and `admin`/`secret` over PLAIN, and whose
    /// domain `fleet` is owned (CURVE and PLAIN) by a store holding `CLIENT` and `alice`.
    fn with_store() -> (Policy, OwnerId) {
        let mut policy = Policy::default();
        policy.configure_curve("*", CurvePolicy::AllowAny).unwrap();
        (policy.configure_plain("*", PasswordTable::new([("alice", "pw")]))).unwrap();
        let store = policy.new_owner_id();
        for mechanism in [MechanismKind::Curve, MechanismKind::Plain] {
            let owner = Owner::Store {
                id: store,
                name: "db".into(),
            };
            let claim = Change::Claim {
                domain: "fleet".into(),
                mechanism,
                owner,
            };
            policy.apply(Origin::HAND, claim).unwrap();
        }
        let keys: CertStore = [key(CLIENT)].into_iter().collect();
        let users: HashedTable = [(b"alice".to_vec(), cheap("pw"))].into_iter().collect();
        for change in [
            Change::curve_keys("fleet", keys),
            Change::hashed_users("fleet", users),
        ] {
            policy.apply(Origin::Owner(store), change).unwrap();
        }
        (policy, store)
    }

    fn trust(policy: &mut Policy, store: OwnerId, until: Instant) -> Result<(), PolicyError> {
        policy
            .apply(Origin::Owner(store), Change::Trust { until })
            .map(drop)
    }

    #[test]
    fn a_store_domain_proved_nothing_yet_refuses_everyone_without_falling_back() {
        let (policy, store) = with_store();
        let now = Now::read();
        assert_eq!(policy.store_trust(store), Trust::Unproved);
        assert_stale(&reply_at(&policy, &curve("fleet", CLIENT), &now));
        assert_stale(&reply_at(&policy, &plain("fleet", "alice", "pw"), &now));
        // Other domains fall back to "*" as ever, with no deadline.
        assert_ok(&reply_at(&policy, &curve("other", CLIENT), &now), CLIENT);
        assert_ok(
            &reply_at(&policy, &plain("other", "alice", "pw"), &now),
            "alice",
        );
        assert_eq!(
            policy.trust("other", MechanismKind::Curve),
            Trust::Unlimited
        );
    }

    #[test]
    fn a_store_domain_is_admitted_before_its_deadline_and_refused_at_and_after_it() {
        let (mut policy, store) = with_store();
        let start = Instant::now();
        trust(&mut policy, store, start + 2 * SECOND).unwrap();
        assert_eq!(policy.store_trust(store), Trust::Until(start + 2 * SECOND));
        let before = Now::at(start + 2 * SECOND - Duration::from_nanos(1));
        assert_ok(&reply_at(&policy, &curve("fleet", CLIENT), &before), CLIENT);
        let Decision::Verify(verification) =
            policy.handle_at(&plain("fleet", "alice", "pw"), &before)
        else {
            panic!("a hashed table verifies")
        };
        let matched = verification.verify();
        assert_ok(&verification.finish(Ok(matched), &before), "alice");
        for late in [start + 2 * SECOND, start + 60 * SECOND] {
            let late = Now::at(late);
            assert_stale(&reply_at(&policy, &curve("fleet", CLIENT), &late));
            assert_stale(&reply_at(&policy, &plain("fleet", "alice", "pw"), &late));
            assert_stale(&reply_at(&policy, &curve("fleet", SERVER), &late));
            assert_ok(&reply_at(&policy, &curve("other", SERVER), &late), SERVER);
        }
        // A later proof moves the deadline forward; an earlier one never moves it back.
        trust(&mut policy, store, start + 5 * SECOND).unwrap();
        trust(&mut policy, store, start + SECOND).unwrap();
        assert_eq!(policy.store_trust(store), Trust::Until(start + 5 * SECOND));
        let now = Now::at(start + 3 * SECOND);
        assert_ok(&reply_at(&policy, &curve("fleet", CLIENT), &now), CLIENT);
        // Trust is no epoch change: nothing narrowed.
        let epoch = policy.epoch();
        trust(&mut policy, store, start + 6 * SECOND).unwrap();
        assert_eq!(policy.epoch(), epoch);
    }

    #[test]
    fn only_a_store_in_charge_extends_trust() {
        let (mut policy, store) = with_store();
        let until = Instant::now() + SECOND;
        let by_hand = policy.apply(Origin::HAND, Change::Trust { until });
        assert_eq!(by_hand.unwrap_err(), PolicyError::StoreOnly);
        let watch = policy.new_owner_id();
        let owner = Owner::Watch {
            id: watch,
            path: "/keys".into(),
        };
        let claim = Change::Claim {
            domain: "watched".into(),
            mechanism: MechanismKind::Curve,
            owner,
        };
        policy.apply(Origin::HAND, claim).unwrap();
        assert_eq!(
            trust(&mut policy, watch, until),
            Err(PolicyError::Superseded)
        );
        assert_eq!(
            policy.trust("watched", MechanismKind::Curve),
            Trust::Unlimited
        );
        // Taken over by hand, a domain has no deadline; once the store is in charge of
        // nothing, its proofs are refused.
        for mechanism in [MechanismKind::Curve, MechanismKind::Plain] {
            let change = match mechanism {
                MechanismKind::Curve => Change::ConfigureCurve {
                    domain: "fleet".into(),
                    curve: CurvePolicy::AllowAny,
                },
                _ => Change::ConfigurePlain {
                    domain: "fleet".into(),
                    table: PlainTable::Clear(PasswordTable::new([("bob", "x")])),
                },
            };
            let take_over = Origin::Hand { take_over: true };
            policy.apply(take_over, change).unwrap();
            let late = Now::at(until + 60 * SECOND);
            match mechanism {
                MechanismKind::Curve => {
                    assert_ok(&reply_at(&policy, &curve("fleet", SERVER), &late), SERVER);
                    assert_stale(&reply_at(&policy, &plain("fleet", "alice", "pw"), &late));
                    assert!(trust(&mut policy, store, until).is_ok(), "still owns PLAIN");
                }
                _ => {
                    assert_ok(
                        &reply_at(&policy, &plain("fleet", "bob", "x"), &late),
                        "bob",
                    );
                    assert_eq!(
                        trust(&mut policy, store, until),
                        Err(PolicyError::Superseded)
                    );
                    assert_eq!(policy.store_trust(store), Trust::Unlimited);
                }
            }
        }
    }

    #[test]
    fn a_store_domain_without_its_own_setting_does_not_fall_back_to_any_past_the_deadline() {
        let (mut policy, store) = with_store();
        let start = Instant::now();
        trust(&mut policy, store, start + SECOND).unwrap();
        // The store removes its own setting: "*" decides, but only while the store is trusted.
        let unconfigure = Change::Unconfigure {
            domain: "fleet".into(),
            mechanism: MechanismKind::Curve,
        };
        policy.apply(Origin::Owner(store), unconfigure).unwrap();
        assert_ok(
            &reply_at(&policy, &curve("fleet", SERVER), &Now::at(start)),
            SERVER,
        );
        let late = Now::at(start + SECOND);
        assert_stale(&reply_at(&policy, &curve("fleet", SERVER), &late));
        assert_eq!(
            policy.trust("fleet", MechanismKind::Curve),
            Trust::Until(start + SECOND)
        );
    }

    #[test]
    fn a_key_expires_at_the_wall_clock_time_given_and_only_such_a_key_reads_it() {
        let mut policy = Policy::default();
        // An hour from now, so that the real clock, read below, finds the key valid.
        let expiry = SystemTime::now() + 3600 * SECOND;
        let mut keys = CertStore::new();
        keys.upsert(key(CLIENT), Metadata::empty(), None, Some(expiry));
        keys.insert(key(SERVER), Metadata::empty());
        policy
            .configure_curve("*", CurvePolicy::Keys(Arc::new(keys)))
            .unwrap();
        let instant = Instant::now();
        let before = Now::fixed(instant, expiry - SECOND);
        assert_ok(&reply_at(&policy, &curve("", CLIENT), &before), CLIENT);
        let at = Now::fixed(instant, expiry);
        assert_denied(&reply_at(&policy, &curve("", CLIENT), &at), "Unknown key");
        // A key without an expiry, or a refused one, needs no date: the wall clock is not read.
        let unread = Now::at(instant);
        assert_ok(&reply_at(&policy, &curve("", SERVER), &unread), SERVER);
        assert!(!unread.wall_was_read());
        let unknown = RequestBuilder::curve(CurvePublicKey::from_bytes([9; 32])).frames();
        assert_denied(&reply_at(&policy, &unknown, &unread), "Unknown key");
        assert!(!unread.wall_was_read());
        assert_ok(&reply_at(&policy, &curve("", CLIENT), &unread), CLIENT);
        assert!(unread.wall_was_read(), "an expiring key reads it");
    }

    #[test]
    fn a_key_that_expires_while_its_user_id_mapping_runs_is_not_admitted() {
        let mut policy = Policy::default();
        let expiry = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut keys = CertStore::new();
        keys.upsert(key(CLIENT), Metadata::empty(), None, Some(expiry));
        policy
            .configure_curve("*", CurvePolicy::Keys(Arc::new(keys)))
            .unwrap();
        policy.set_curve_user_id(Some(Arc::new(|_: &CurvePublicKey| Ok("mapped".into()))));
        let instant = Instant::now();
        let decided = Now::fixed(instant, expiry - SECOND);
        let frames = curve("", CLIENT);
        let deadline = instant + 5 * SECOND;
        let answer = || match policy.handle_at(&frames, &decided) {
            Decision::Consult(c) => Answer::Consulted(c, Ok(CurveVerdict::admit())),
            other => panic!("the mapping is consulted: {other:?}"),
        };
        let in_time = decided.later(Duration::from_millis(500));
        let Decision::Reply(reply) = policy.resume(answer(), &frames, &in_time, deadline) else {
            panic!("answered")
        };
        assert_ok(&reply, CLIENT);
        let expired = decided.later(2 * SECOND);
        let Decision::Reply(reply) = policy.resume(answer(), &frames, &expired, deadline) else {
            panic!("answered")
        };
        assert_denied(&reply, "Unknown key");
        // `finish` alone checks it too.
        let Answer::Consulted(consultation, verdict) = answer() else {
            unreachable!()
        };
        assert_denied(&consultation.finish(verdict, &expired), "Unknown key");
    }

    #[test]
    fn an_answer_that_comes_back_after_the_deadline_of_the_store_is_refused_unless_proved_again() {
        let (mut policy, store) = with_store();
        policy.set_curve_user_id(Some(Arc::new(|_: &CurvePublicKey| Ok("mapped".into()))));
        let start = Instant::now();
        trust(&mut policy, store, start + 2 * SECOND).unwrap();
        let frames = curve("fleet", CLIENT);
        let decided = Now::at(start + SECOND);
        let deadline = start + 10 * SECOND;
        let answer = |policy: &Policy| match policy.handle_at(&frames, &decided) {
            Decision::Consult(c) => Answer::Consulted(c, Ok(CurveVerdict::admit())),
            other => panic!("the mapping is consulted: {other:?}"),
        };
        let back = Now::at(start + 3 * SECOND);
        let asked = answer(&policy);
        let Decision::Reply(reply) = policy.resume(asked, &frames, &back, deadline) else {
            panic!("answered")
        };
        assert_stale(&reply);
        // Proved again while the mapping ran: the same answer is good.
        let asked = answer(&policy);
        trust(&mut policy, store, start + 4 * SECOND).unwrap();
        let Decision::Reply(reply) = policy.resume(asked, &frames, &back, deadline) else {
            panic!("answered")
        };
        assert_ok(&reply, CLIENT); // the answer in hand: an admission without a user id
                                   // A password checked while the store went stale is refused as well.
        let frames = plain("fleet", "alice", "pw");
        let Decision::Verify(verification) = policy.handle_at(&frames, &back) else {
            panic!("a hashed table verifies")
        };
        let late = Now::at(start + 4 * SECOND);
        let answer = Answer::Verified(verification, Ok(true));
        let Decision::Reply(reply) = policy.resume(answer, &frames, &late, deadline) else {
            panic!("answered")
        };
        assert_stale(&reply);
    }

    #[test]
    fn after_a_change_an_answer_stands_only_for_the_same_question_and_nothing_is_asked_past_the_deadline(
    ) {
        let mut policy = Policy::default();
        let first = Provider::from_fn(|_: &str, _: &CurvePublicKey| Ok(true.into()));
        (policy.configure_curve("db", CurvePolicy::Provider(first))).unwrap();
        let frames = curve("db", CLIENT);
        let start = Instant::now();
        let decided = Now::at(start);
        let deadline = start + 5 * SECOND;
        let ask = |policy: &Policy| match policy.handle_at(&frames, &decided) {
            Decision::Consult(c) => c,
            other => panic!("the provider is consulted: {other:?}"),
        };
        let admitted = || Ok(CurveVerdict::admit());
        // Another domain changed: the same provider would be asked the same: the answer stands.
        let asked = ask(&policy);
        policy
            .configure_curve("other", CurvePolicy::AllowAny)
            .unwrap();
        assert!(asked.epoch() < policy.epoch());
        let back = Now::at(start + SECOND);
        let answer = Answer::Consulted(asked, admitted());
        match policy.resume(answer, &frames, &back, deadline) {
            Decision::Reply(reply) => assert_ok(&reply, CLIENT),
            other => panic!("{other:?}"),
        }
        // Another provider now: asked again before the deadline, a timeout after it.
        let asked = ask(&policy);
        let second = Provider::from_fn(|_: &str, _: &CurvePublicKey| Ok(false.into()));
        (policy.configure_curve("db", CurvePolicy::Provider(second))).unwrap();
        let answer = Answer::Consulted(asked, admitted());
        let Decision::Consult(again) = policy.resume(answer, &frames, &back, deadline) else {
            panic!("asked again")
        };
        let verdict = futures::executor::block_on(again.ask(Inline));
        assert_denied(&again.finish(verdict, &back), "Unknown key");
        let asked = Answer::Consulted(ask_again(&policy, &frames, &decided), admitted());
        (policy.configure_curve(
            "db",
            CurvePolicy::Provider(Provider::from_fn(|_: &str, _: &CurvePublicKey| {
                Ok(true.into())
            })),
        ))
        .unwrap();
        let past = Now::at(deadline);
        let Decision::Reply(reply) = policy.resume(asked, &frames, &past, deadline) else {
            panic!("nothing asked past the deadline")
        };
        assert_eq!(
            (reply.status, &*reply.text),
            (StatusCode::InternalError, "Provider timed out")
        );
        // Now a key set without the key: refused, whatever the provider said.
        let asked = Answer::Consulted(ask_again(&policy, &frames, &decided), admitted());
        policy.configure_curve("db", curve_keys(&[SERVER])).unwrap();
        let Decision::Reply(reply) = policy.resume(asked, &frames, &back, deadline) else {
            panic!("decided")
        };
        assert_denied(&reply, "Unknown key");
    }

    #[test]
    fn a_failed_verification_stands_while_domain_user_and_hash_are_unchanged() {
        let mut policy = Policy::default();
        (policy.upsert_hashed_users("fleet", [(b"alice".to_vec(), cheap("pw"))])).unwrap();
        let frames = plain("fleet", "alice", "wrong");
        let start = Instant::now();
        let deadline = start + 5 * SECOND;
        let back = Now::at(start + SECOND);
        let verify = |policy: &Policy| match policy.handle_at(&frames, &Now::at(start)) {
            Decision::Verify(v) => v,
            other => panic!("{other:?}"),
        };
        let failed = |asked| Answer::Verified(asked, Ok(false));
        let refused = |decision: Decision| match decision {
            Decision::Reply(reply) => assert_denied(&reply, "Invalid password"),
            other => panic!("the failure stands, nothing is verified again: {other:?}"),
        };
        // Unrelated changes: another domain (many times over), another user, the domain's
        // table replaced by one holding the same PHC string (another allocation).
        let asked = verify(&policy);
        for n in 0..100 {
            let table = PasswordTable::new([("x", format!("y{n}"))]);
            policy.configure_plain("other", table).unwrap();
        }
        refused(policy.resume(failed(asked), &frames, &back, deadline));
        let asked = verify(&policy);
        (policy.upsert_hashed_users("fleet", [(b"bob".to_vec(), cheap("x"))])).unwrap();
        refused(policy.resume(failed(asked), &frames, &back, deadline));
        let asked = verify(&policy);
        let same = HashedPassword::parse(asked.hash.as_str(), &Argon2Limits::default()).unwrap();
        let table: HashedTable = [(b"alice".to_vec(), same)].into_iter().collect();
        policy.configure_hashed_plain("fleet", table).unwrap();
        assert!(!Arc::ptr_eq(&verify(&policy).hash, &asked.hash));
        refused(policy.resume(failed(asked), &frames, &back, deadline));
        // Her hash changed: verified again (the failure was against the old one).
        let asked = verify(&policy);
        (policy.upsert_hashed_users("fleet", [(b"alice".to_vec(), cheap("new"))])).unwrap();
        assert!(matches!(
            policy.resume(failed(asked), &frames, &back, deadline),
            Decision::Verify(_)
        ));
        // An unknown username's dummy verification stands too, and a user removed while
        // verified is refused without a second (dummy) run.
        let unknown = plain("fleet", "mallory", "guess");
        let Decision::Verify(asked) = policy.handle_at(&unknown, &Now::at(start)) else {
            panic!("a dummy verification")
        };
        policy
            .configure_plain("other", PasswordTable::new([("x", "z")]))
            .unwrap();
        let Decision::Reply(reply) = policy.resume(failed(asked), &unknown, &back, deadline) else {
            panic!("stands")
        };
        assert_denied(&reply, "Invalid username");
        let asked = verify(&policy);
        policy.remove_plain_users("fleet", [&b"alice"[..]]).unwrap();
        let Decision::Reply(reply) = policy.resume(failed(asked), &frames, &back, deadline) else {
            panic!("refused without another run")
        };
        assert_denied(&reply, "Invalid username");
    }

    fn ask_again(policy: &Policy, frames: &[Vec<u8>], now: &Now) -> Consultation {
        match policy.handle_at(frames, now) {
            Decision::Consult(c) => c,
            other => panic!("the provider is consulted: {other:?}"),
        }
    }

    #[test]
    fn a_verification_outcome_stands_while_the_hash_is_the_same() {
        let mut policy = Policy::default();
        (policy.upsert_hashed_users("fleet", [(b"alice".to_vec(), cheap("pw"))])).unwrap();
        let frames = plain("fleet", "alice", "pw");
        let start = Instant::now();
        let decided = Now::at(start);
        let deadline = start + 5 * SECOND;
        let verify = |policy: &Policy| match policy.handle_at(&frames, &decided) {
            Decision::Verify(v) => v,
            other => panic!("{other:?}"),
        };
        let back = Now::at(start + SECOND);
        // Another user added: the same hash decides, the outcome in hand stands.
        let asked = verify(&policy);
        (policy.upsert_hashed_users("fleet", [(b"bob".to_vec(), cheap("x"))])).unwrap();
        let answer = Answer::Verified(asked, Ok(true));
        let Decision::Reply(reply) = policy.resume(answer, &frames, &back, deadline) else {
            panic!("answered")
        };
        assert_ok(&reply, "alice");
        // Alice's password changed: checked again (before the deadline), a failure after it.
        let asked = verify(&policy);
        (policy.upsert_hashed_users("fleet", [(b"alice".to_vec(), cheap("new"))])).unwrap();
        let answer = Answer::Verified(asked, Ok(true));
        let Decision::Verify(again) = policy.resume(answer, &frames, &back, deadline) else {
            panic!("checked again")
        };
        assert!(!again.verify());
        let asked = Answer::Verified(again, Ok(true));
        (policy.upsert_hashed_users("fleet", [(b"alice".to_vec(), cheap("pw"))])).unwrap();
        let past = Now::at(deadline);
        let Decision::Reply(reply) = policy.resume(asked, &frames, &past, deadline) else {
            panic!("nothing checked past the deadline")
        };
        assert_eq!(
            (reply.status, &*reply.text),
            (StatusCode::InternalError, "Verification failed")
        );
        // Removed meanwhile: refused.
        let asked = Answer::Verified(verify(&policy), Ok(true));
        policy.remove_plain_users("fleet", [&b"alice"[..]]).unwrap();
        let Decision::Reply(reply) = policy.resume(asked, &frames, &back, deadline) else {
            panic!("decided")
        };
        assert_denied(&reply, "Invalid username");
    }
}
