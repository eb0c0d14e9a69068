//! Property tests (in CI; the fuzz targets in `fuzz/` go deeper): any input gives a valid
//! reply or a typed error, never a panic, and every encoding round-trips.

use std::net::Ipv4Addr;
use std::sync::Arc;

use actix_zap::certs::{CertStore, Certificate, Flavour};
use actix_zap::keys::CurvePublicKey;
use actix_zap::policy::{AddressPattern, AddressSet, CurvePolicy, Decision, PasswordTable, Policy};
use actix_zap::zap::{
    decode_metadata, Mechanism, Metadata, Reply, Request, RequestBuilder, StatusCode,
};
use proptest::prelude::*;

fn policy() -> Policy {
    let mut policy = Policy::default();
    policy.allow(["127.0.0.0/8".parse().unwrap()]).unwrap();
    policy
        .configure_plain("*", PasswordTable::new([("admin", "secret")]))
        .unwrap();
    let keys: CertStore = [CurvePublicKey::from_bytes([7; 32])].into_iter().collect();
    policy
        .configure_curve("*", CurvePolicy::Keys(Arc::new(keys)))
        .unwrap();
    policy
}

fn mechanism() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"NULL".to_vec()),
        Just(b"PLAIN".to_vec()),
        Just(b"CURVE".to_vec()),
        Just(b"GSSAPI".to_vec()),
        prop::collection::vec(any::<u8>(), 0..8),
    ]
}

/// Frames that look like requests often enough to reach every branch.
fn request_frames() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let frame = prop::collection::vec(any::<u8>(), 0..40);
    (
        prop_oneof![Just(b"1.0".to_vec()), frame.clone()],
        frame.clone(),
        prop_oneof![Just(b"".to_vec()), Just(b"global".to_vec()), frame.clone()],
        prop_oneof![
            Just(b"127.0.0.1".to_vec()),
            Just(b"10.0.0.1".to_vec()),
            frame.clone()
        ],
        frame.clone(),
        mechanism(),
        prop::collection::vec(frame, 0..4),
        0usize..14,
    )
        .prop_map(|(v, id, d, a, i, m, creds, cut)| {
            let mut frames = RequestBuilder::mechanism(m)
                .credentials(creds)
                .version(v)
                .request_id(id)
                .domain(d)
                .address(a)
                .identity(i)
                .frames();
            frames.truncate(cut);
            frames
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_frames_get_a_valid_reply(frames in request_frames()) {
        match policy().handle(&frames) {
            Decision::Consult(_) => prop_assert!(false, "no provider is configured"),
            Decision::Verify(_) => prop_assert!(false, "no hashed password is configured"),
            Decision::Reply(reply) => {
                // Fewer than 2 frames have no id to echo; the ZAP socket drops them.
                let id = frames.get(1).map_or(&[][..], Vec::as_slice);
                prop_assert_eq!(&reply.request_id[..], id);
                if reply.status != StatusCode::Ok {
                    prop_assert!(reply.user_id.is_empty() && reply.metadata.is_empty());
                }
                prop_assert_eq!(Reply::parse(&reply.frames()), Some(reply));
            }
        }
    }

    #[test]
    fn built_requests_parse_back_to_what_was_built(
        id in prop::collection::vec(any::<u8>(), 0..16),
        domain in "\\PC{0,24}",
        address in "\\PC{0,40}",
        identity in prop::collection::vec(any::<u8>(), 0..16),
        credential in prop::collection::vec(any::<u8>(), 0..32),
        password in prop::collection::vec(any::<u8>(), 0..32),
        key in any::<[u8; 32]>(),
        which in 0usize..4,
    ) {
        let key = CurvePublicKey::from_bytes(key);
        let (builder, mechanism) = match which {
            0 => (RequestBuilder::null(), Mechanism::Null),
            1 => (
                RequestBuilder::plain(&credential, &password),
                Mechanism::Plain { username: &credential, password: &password },
            ),
            2 => (RequestBuilder::curve(key), Mechanism::Curve { public_key: key }),
            _ => (RequestBuilder::gssapi(&credential), Mechanism::Gssapi { principal: &credential }),
        };
        let frames = builder
            .request_id(&id)
            .domain(&domain)
            .address(&address)
            .identity(&identity)
            .frames();
        let expected = Request {
            request_id: &id,
            domain: domain.as_str().into(),
            address: address.as_str().into(),
            identity: &identity,
            mechanism,
        };
        prop_assert_eq!(Request::parse(&frames), Ok(expected));
    }

    #[test]
    fn arbitrary_frames_never_panic_the_parser(frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..10)) {
        let _ = Request::parse(&frames);
        let _ = policy().handle(&frames);
    }

    #[test]
    fn metadata_round_trips(
        pairs in prop::collection::btree_map("[A-Za-z0-9._+-]{1,16}", prop::collection::vec(any::<u8>(), 0..64), 0..6)
    ) {
        let pairs: Vec<(String, Vec<u8>)> = pairs
            .into_iter()
            .filter(|(n, _)| !["socket-type", "identity"].contains(&n.to_ascii_lowercase().as_str()))
            .collect();
        let mut seen = std::collections::HashSet::new();
        let unique: Vec<_> = pairs.into_iter().filter(|(n, _)| seen.insert(n.to_ascii_lowercase())).collect();
        let meta = Metadata::from_pairs(unique.iter().map(|(n, v)| (n.as_str(), v.as_slice()))).unwrap();
        prop_assert_eq!(meta.pairs(), unique.clone());
        let decoded = decode_metadata(meta.as_bytes()).unwrap();
        prop_assert_eq!(decoded.len(), unique.len());
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_metadata_decoder(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_metadata(&bytes);
    }

    #[test]
    fn z85_keys_round_trip(bytes in any::<[u8; 32]>()) {
        let key = CurvePublicKey::from_bytes(bytes);
        prop_assert_eq!(CurvePublicKey::from_z85(&key.to_z85()), Ok(key));
    }

    #[test]
    fn certificates_round_trip_in_both_flavours(
        key in any::<[u8; 32]>(),
        meta in prop::collection::btree_map("[a-z][a-z0-9_-]{0,10}", "[ -~]{0,20}", 0..4),
    ) {
        let cert = Certificate {
            public_key: CurvePublicKey::from_bytes(key),
            secret_key: None,
            metadata: meta.into_iter().collect(),
        };
        for flavour in [Flavour::Pyzmq, Flavour::Czmq] {
            let Ok(text) = cert.to_public_text(flavour) else { continue };
            let again = Certificate::parse(&text).unwrap();
            prop_assert_eq!(again.public_key, cert.public_key);
            if flavour == Flavour::Czmq {
                prop_assert_eq!(&again.metadata, &cert.metadata);
            }
        }
    }

    #[test]
    fn an_address_matches_exactly_the_ranges_that_contain_it(ip in any::<u32>(), net in any::<u32>(), prefix in 0u8..=32) {
        let mut set = AddressSet::default();
        let pattern: AddressPattern = format!("{}/{prefix}", Ipv4Addr::from(net)).parse().unwrap();
        set.insert(pattern);
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        let inside = ip & mask == net & mask;
        prop_assert_eq!(set.matches(Ipv4Addr::from(ip).into()), inside);
        let mapped: std::net::IpAddr = Ipv4Addr::from(ip).to_ipv6_mapped().into();
        prop_assert_eq!(set.matches(mapped), inside);
    }
}
