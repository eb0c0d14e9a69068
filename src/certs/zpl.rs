//! A parser for the subset of ZPL (ZeroMQ Property Language, CZMQ RFC 4) that certificate
//! files use.
//!
//! Certificates written by CZMQ (`zcert`), pyzmq (`zmq.auth.certs`) and JeroMQ are ZPL: a tree
//! of `name` sections and `name = value` properties, nested by indenting 4 spaces per level.
//! The parser borrows every name and value from the input (ZPL has no escapes), allocates only
//! the node list, and never panics: it is fed untrusted files and is fuzzed.
//!
//! Rules, as CZMQ's `zconfig` applies them (with two tolerances noted):
//! - lines are right-trimmed; blank lines are ignored;
//! - a line whose first non-blank character is `#` is a comment (CZMQ also insists that an
//!   indented comment is indented by a multiple of 4 spaces; we do not);
//! - indentation is a multiple of 4 spaces; a tab in the indentation is an error;
//! - a name uses ASCII letters, digits and `$ - _ @ . & + /`, and does not start or end
//!   with `/`;
//! - a value is quoted with `"` or `'` (no escapes, ends at the next same quote, and only
//!   blanks or a `#` comment may follow) or unquoted up to a `#` (trailing blanks trimmed);
//! - a UTF-8 byte-order mark at the very start is skipped (CZMQ rejects such files).
//!
//! Any invalid line makes the whole document invalid, as in CZMQ.

use std::fmt;

/// Why a text is not valid ZPL, with the 1-based line number so the user can fix the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct ZplError {
    /// The 1-based line number of the first invalid line.
    pub line: usize,
    /// What is wrong with that line.
    pub kind: ZplErrorKind,
}

/// What is wrong with a ZPL line; one variant per rule so callers and tests can tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ZplErrorKind {
    /// A tab in the indentation: ZPL indents with spaces only.
    Tab,
    /// Indentation that is not a multiple of 4 spaces.
    Indentation,
    /// Indented more than one level below the previous section.
    Nesting,
    /// A name starting or ending with `/`.
    SlashAtNameEdge,
    /// A quoted value without its closing quote (the quote character).
    MissingQuote(char),
    /// Something other than blanks or a comment after a quoted value.
    TrailingText,
    /// Neither `name` nor `name = value` (e.g. no name, or a name followed by junk).
    Syntax,
}

impl fmt::Display for ZplErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tab => f.write_str("tab in the indentation (ZPL indents with 4 spaces)"),
            Self::Indentation => f.write_str("indentation is not a multiple of 4 spaces"),
            Self::Nesting => f.write_str("indented more than one level below its section"),
            Self::SlashAtNameEdge => f.write_str("a name may not start or end with '/'"),
            Self::MissingQuote(q) => write!(f, "value has no closing {q}"),
            Self::TrailingText => f.write_str("unexpected text after the quoted value"),
            Self::Syntax => f.write_str("expected `name` or `name = value`"),
        }
    }
}

/// One `name` or `name = value` line of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node<'a> {
    /// The name as written.
    pub name: &'a str,
    /// The value without quotes; empty for a bare `name` line (as in CZMQ).
    pub value: &'a str,
    /// The 1-based line number, for error messages that point into the file.
    pub line: usize,
    /// The index (in [`Document::nodes`]) of the enclosing section, `None` at the top level.
    pub parent: Option<usize>,
}

/// A parsed ZPL document: its nodes in file order, borrowing from the text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Document<'a> {
    nodes: Vec<Node<'a>>,
}

impl<'a> Document<'a> {
    /// Every node in file order; a node's parent always comes before it.
    pub fn nodes(&self) -> &[Node<'a>] {
        &self.nodes
    }

    /// The direct children of `parent` (`None` for the top level), with their indexes.
    pub fn children(&self, parent: Option<usize>) -> impl Iterator<Item = (usize, &Node<'a>)> {
        self.nodes
            .iter()
            .enumerate()
            .filter(move |(_, node)| node.parent == parent)
    }

    /// The first node at a `/`-separated path of names (e.g. `curve/public-key`), like CZMQ's
    /// `zconfig_locate`.
    pub fn locate(&self, path: &str) -> Option<&Node<'a>> {
        let mut parent = None;
        let mut found = None;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            let (index, node) = self.children(parent).find(|(_, n)| n.name == part)?;
            parent = Some(index);
            found = Some(node);
        }
        found
    }
}

/// The characters C's `isspace` accepts, which CZMQ uses for trimming.
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0B' | '\x0C' | '\r')
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '$' | '-' | '_' | '@' | '.' | '&' | '+' | '/')
}

/// True when only blanks or a `#` comment remain.
fn at_end_of_line(rest: &str) -> bool {
    let rest = rest.trim_start_matches(is_blank);
    rest.is_empty() || rest.starts_with('#')
}

/// Parses what follows the name on a line: nothing or a comment (a section, empty value),
/// or `=` and a quoted or unquoted value.
fn parse_value(rest: &str) -> Result<&str, ZplErrorKind> {
    let rest = rest.trim_start_matches(is_blank);
    if rest.is_empty() || rest.starts_with('#') {
        return Ok("");
    }
    let Some(value) = rest.strip_prefix('=') else {
        return Err(ZplErrorKind::Syntax);
    };
    let value = value.trim_start_matches(is_blank);
    for quote in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(quote) {
            let Some((quoted, tail)) = inner.split_once(quote) else {
                return Err(ZplErrorKind::MissingQuote(quote));
            };
            if !at_end_of_line(tail) {
                return Err(ZplErrorKind::TrailingText);
            }
            return Ok(quoted);
        }
    }
    let unquoted = value.split_once('#').map_or(value, |(before, _)| before);
    Ok(unquoted.trim_end_matches(is_blank))
}

/// Parses one non-blank, non-comment line into (depth, name, value).
fn parse_line(line: &str) -> Result<(usize, &str, &str), ZplErrorKind> {
    let body = line.trim_start_matches([' ', '\t']);
    let indent = line.strip_suffix(body).unwrap_or_default();
    if indent.contains('\t') {
        return Err(ZplErrorKind::Tab);
    }
    if !indent.len().is_multiple_of(4) {
        return Err(ZplErrorKind::Indentation);
    }
    let name_end = body.find(|c| !is_name_char(c)).unwrap_or(body.len());
    let (name, rest) = body.split_at(name_end);
    if name.is_empty() {
        return Err(ZplErrorKind::Syntax);
    }
    if name.starts_with('/') || name.ends_with('/') {
        return Err(ZplErrorKind::SlashAtNameEdge);
    }
    Ok((indent.len() / 4, name, parse_value(rest)?))
}

/// Parses a whole ZPL text; the first invalid line is reported with its line number.
///
/// ```
/// use actix_zap::certs::zpl;
/// let doc = zpl::parse("curve\n    public-key = \"abc\"\n").unwrap();
/// assert_eq!(doc.locate("curve/public-key").unwrap().value, "abc");
/// assert_eq!(zpl::parse("curve\n\tpublic-key = x\n").unwrap_err().line, 2);
/// ```
pub fn parse(text: &str) -> Result<Document<'_>, ZplError> {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut nodes: Vec<Node<'_>> = Vec::new();
    // `open[d]` is the latest node at depth `d` on the current branch (CZMQ's
    // `zconfig_at_depth`): a node at depth `d` is a child of `open[d - 1]`.
    let mut open: Vec<usize> = Vec::new();
    for (index, raw) in text.split('\n').enumerate() {
        let line_number = index + 1;
        let line = raw.trim_end_matches(is_blank);
        let body = line.trim_start_matches([' ', '\t']);
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let error = |kind| ZplError {
            line: line_number,
            kind,
        };
        let (depth, name, value) = parse_line(line).map_err(error)?;
        let parent = match depth.checked_sub(1) {
            None => None,
            Some(up) => Some(*open.get(up).ok_or_else(|| error(ZplErrorKind::Nesting))?),
        };
        open.truncate(depth);
        open.push(nodes.len());
        nodes.push(Node {
            name,
            value,
            line: line_number,
            parent,
        });
    }
    Ok(Document { nodes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> (usize, ZplErrorKind) {
        let err = parse(text).unwrap_err();
        (err.line, err.kind)
    }

    #[test]
    fn czmq_certificate_layout_parses() {
        let text = "#   ****  Generated on 2024-01-02 03:04:05 by CZMQ  ****\n\
                    #   ZeroMQ CURVE Public Certificate\n\
                    \n\
                    metadata\n    name = \"Pieter Hintjens\"\n    email = 'ph@imatix.com'\n\
                    curve\n    public-key = \"abc\"\n";
        let doc = parse(text).unwrap();
        assert_eq!(doc.nodes().len(), 5);
        assert_eq!(
            doc.locate("/metadata/name").unwrap().value,
            "Pieter Hintjens"
        );
        assert_eq!(doc.locate("metadata/email").unwrap().value, "ph@imatix.com");
        let key = doc.locate("curve/public-key").unwrap();
        assert_eq!((key.value, key.line), ("abc", 8));
        assert_eq!(doc.locate("metadata").unwrap().value, "");
        assert!(doc.locate("curve/secret-key").is_none());
        let names: Vec<&str> = doc.children(None).map(|(_, n)| n.name).collect();
        assert_eq!(names, ["metadata", "curve"]);
    }

    #[test]
    fn values_quoted_unquoted_and_commented() {
        let doc = parse(
            "a = plain value   # comment\nb=\"x # y\"  # c\nc = 'it\"s'\nd =\ne\nf # c\n\
             g = \"\"\nh = x\r\n  # indented comment\n\t# tabbed comment\n",
        )
        .unwrap();
        let value = |p| doc.locate(p).unwrap().value;
        assert_eq!(value("a"), "plain value");
        assert_eq!(value("b"), "x # y");
        assert_eq!(value("c"), "it\"s");
        assert_eq!(value("d"), "");
        assert_eq!(value("e"), "");
        assert_eq!(value("f"), "");
        assert_eq!(value("g"), "");
        assert_eq!(value("h"), "x");
    }

    #[test]
    fn nesting_follows_the_latest_section() {
        let doc = parse("a\n    b\n        c = 1\n    d = 2\ne\n    f = 3\n").unwrap();
        assert_eq!(doc.locate("a/b/c").unwrap().value, "1");
        assert_eq!(doc.locate("a/d").unwrap().value, "2");
        assert_eq!(doc.locate("e/f").unwrap().value, "3");
        assert!(doc.locate("a/f").is_none());
    }

    #[test]
    fn invalid_lines_are_reported_with_their_number() {
        assert_eq!(kind("curve\n\tpublic-key = x\n"), (2, ZplErrorKind::Tab));
        assert_eq!(
            kind("curve\n    \tpublic-key = x\n"),
            (2, ZplErrorKind::Tab)
        );
        assert_eq!(kind("a\n  b = 1\n"), (2, ZplErrorKind::Indentation));
        assert_eq!(kind("a\n\n        b = 1\n"), (3, ZplErrorKind::Nesting));
        assert_eq!(kind("    b = 1\n"), (1, ZplErrorKind::Nesting));
        assert_eq!(kind("/a = 1\n"), (1, ZplErrorKind::SlashAtNameEdge));
        assert_eq!(kind("a/ = 1\n"), (1, ZplErrorKind::SlashAtNameEdge));
        assert_eq!(kind("a = \"x\n"), (1, ZplErrorKind::MissingQuote('"')));
        assert_eq!(kind("x\na = 'x\n"), (2, ZplErrorKind::MissingQuote('\'')));
        assert_eq!(kind("a = \"x\" y\n"), (1, ZplErrorKind::TrailingText));
        assert_eq!(kind("a b\n"), (1, ZplErrorKind::Syntax));
        assert_eq!(kind("= b\n"), (1, ZplErrorKind::Syntax));
        assert_eq!(kind("é = 1\n"), (1, ZplErrorKind::Syntax));
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        let inputs = [
            "",
            "\n",
            "\u{FEFF}",
            "\u{FEFF}a = 1",
            "=",
            "\"",
            "a=\"",
            "a='",
            "a = é#é",
            "a\u{0}",
            "    ",
            "\t",
            "a =\t'x'\t#",
            "a\n    b\n            c",
            "€ = 1",
            "a = '€",
        ];
        for input in inputs {
            let _ = parse(input);
        }
        assert_eq!(parse("\u{FEFF}a = 1").unwrap().nodes()[0].name, "a");
    }

    #[test]
    fn error_display_names_the_line() {
        let err = parse("ok\n\tbad\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2: tab in the indentation (ZPL indents with 4 spaces)"
        );
    }
}
