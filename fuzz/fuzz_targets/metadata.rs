//! The ZMTP metadata codec: decoding never panics, and what decodes re-encodes identically.
#![no_main]

use actix_zap::zap::{decode_metadata, Metadata};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(pairs) = decode_metadata(bytes) else {
        return;
    };
    let owned: Vec<(String, Vec<u8>)> = pairs
        .iter()
        .map(|(n, v)| (String::from_utf8_lossy(n).into_owned(), v.to_vec()))
        .collect();
    // Names that pass validation must encode back to the very same bytes.
    if let Ok(meta) = Metadata::from_pairs(owned.iter().map(|(n, v)| (n.as_str(), v.as_slice()))) {
        if pairs.iter().all(|(n, _)| std::str::from_utf8(n).is_ok()) {
            assert_eq!(meta.as_bytes(), bytes);
        }
    }
});
