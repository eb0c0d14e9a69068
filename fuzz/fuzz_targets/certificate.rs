//! The certificate (ZPL) parser: never panics; a certificate it accepts survives a
//! write-and-read round trip in both flavours.
#![no_main]

use actix_zap::certs::{Certificate, Flavour};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Ok(cert) = Certificate::parse(text) else {
        return;
    };
    for flavour in [Flavour::Pyzmq, Flavour::Czmq] {
        if let Ok(public) = cert.to_public_text(flavour) {
            let again = Certificate::parse(&public).expect("our own output parses");
            assert_eq!(again.public_key, cert.public_key);
        }
    }
});
