//! The one JSON object `zapctl probe --json` prints, written by hand: a fixed shape of four
//! fields does not need serde and serde_json in every build of the library.

/// `s` as a JSON string literal (RFC 8259: quote, backslash and control characters escaped).
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `{"outcome": …, "status": N|null, "detail": …, "elapsed_ms": N}`.
pub fn probe_result(outcome: &str, status: Option<u16>, detail: &str, elapsed_ms: u128) -> String {
    let status = status.map_or_else(|| "null".to_owned(), |s| s.to_string());
    format!(
        "{{\"outcome\": {}, \"status\": {status}, \"detail\": {}, \"elapsed_ms\": {elapsed_ms}}}",
        string(outcome),
        string(detail)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        assert_eq!(string("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\u0001é\"");
    }

    #[test]
    fn a_probe_result_has_the_documented_shape() {
        assert_eq!(
            probe_result("refused", Some(400), "x", 12),
            r#"{"outcome": "refused", "status": 400, "detail": "x", "elapsed_ms": 12}"#
        );
        assert!(probe_result("stalled", None, "", 0).contains("\"status\": null"));
    }
}
