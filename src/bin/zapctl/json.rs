//! The one JSON object `zapctl probe --json` prints, written by hand: a fixed shape of six
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

/// What one probe found, as `--json` prints it.
pub struct ProbeResult<'a> {
    pub outcome: &'a str,
    pub status: Option<u16>,
    pub detail: &'a str,
    pub elapsed_ms: u128,
    pub client_mechanism: &'a str,
    /// `None` when the server's greeting was not read.
    pub server_mechanism: Option<&'a str>,
}

/// `{"outcome": …, "status": N|null, "detail": …, "elapsed_ms": N, "client_mechanism": …,
/// "server_mechanism": …|null}`.
pub fn probe_result(result: &ProbeResult<'_>) -> String {
    let status = result
        .status
        .map_or_else(|| "null".to_owned(), |s| s.to_string());
    let server = result
        .server_mechanism
        .map_or_else(|| "null".to_owned(), string);
    format!(
        "{{\"outcome\": {}, \"status\": {status}, \"detail\": {}, \"elapsed_ms\": {}, \
         \"client_mechanism\": {}, \"server_mechanism\": {server}}}",
        string(result.outcome),
        string(result.detail),
        result.elapsed_ms,
        string(result.client_mechanism),
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
        let refused = ProbeResult {
            outcome: "refused",
            status: Some(400),
            detail: "x",
            elapsed_ms: 12,
            client_mechanism: "PLAIN",
            server_mechanism: Some("PLAIN"),
        };
        assert_eq!(
            probe_result(&refused),
            r#"{"outcome": "refused", "status": 400, "detail": "x", "elapsed_ms": 12, "client_mechanism": "PLAIN", "server_mechanism": "PLAIN"}"#
        );
        let unread = ProbeResult {
            outcome: "stalled",
            status: None,
            server_mechanism: None,
            ..refused
        };
        let line = probe_result(&unread);
        assert!(line.contains("\"status\": null"), "{line}");
        assert!(line.ends_with("\"server_mechanism\": null}"), "{line}");
    }
}
