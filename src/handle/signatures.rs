//! The handle's surface, checked: every type a public method of [`Authenticator`] names in
//! its signature is at the crate root, comes from `std` or a crate the root re-exports, or is
//! linked from that method's documentation, so a reader never meets a type they cannot find.
//! (The [`ThreadAuthenticator`]'s blocking methods link to these.)
//!
//! [`Authenticator`]: super::Authenticator
//! [`ThreadAuthenticator`]: super::ThreadAuthenticator

use std::collections::BTreeSet;

/// Names from `std` and its prelude, from the re-exported `actix` (`Addr`, `Message`,
/// `Handler`) and `zmq` (`Context`) crates, and associated-type names.
const KNOWN: &[&str] = &[
    "Self",
    "Result",
    "Option",
    "Vec",
    "String",
    "Path",
    "AsRef",
    "IntoIterator",
    "Into",
    "Item",
    "Fn",
    "Send",
    "Sync",
    "Addr",
    "Message",
    "Handler",
    "Context",
];

/// The identifiers of `text` that name a type or constant (they start with a capital letter;
/// single letters are generic parameters).
fn type_names(text: &str) -> BTreeSet<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.len() > 1 && word.starts_with(|c: char| c.is_ascii_uppercase()))
        .collect()
}

/// Every name the crate root re-exports (`pub use` statements of lib.rs).
fn root_names(lib: &str) -> BTreeSet<&str> {
    let mut names = BTreeSet::new();
    let mut rest = lib;
    while let Some(start) = rest.find("\npub use ") {
        let statement = &rest[start..];
        let end = statement.find(';').expect("a `pub use` ends");
        names.extend(type_names(&statement[..end]));
        rest = &statement[end..];
    }
    names
}

/// Each public method of `source`: its name, its doc comment and its signature.
fn methods(source: &str) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    let mut doc = String::new();
    let mut lines = source.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if let Some(text) = line.strip_prefix("///") {
            doc.push_str(text);
            doc.push('\n');
            continue;
        }
        if line.starts_with("#[") {
            continue;
        }
        let Some(rest) = line
            .strip_prefix("pub fn ")
            .or_else(|| line.strip_prefix("pub async fn "))
        else {
            doc.clear();
            continue;
        };
        let name = rest.split(['<', '(']).next().unwrap_or_default().to_owned();
        let mut signature = rest.to_owned();
        while !signature.trim_end().ends_with('{') {
            let next = lines.next().expect("a signature ends with `{`");
            signature.push(' ');
            signature.push_str(next);
        }
        found.push((name, std::mem::take(&mut doc), signature));
    }
    found
}

#[test]
fn every_type_in_the_handles_signatures_is_at_the_root_or_linked_from_its_method() {
    let root = root_names(include_str!("../lib.rs"));
    assert!(
        root.contains("Authenticator") && root.contains("ConfigError"),
        "the parser found {root:?}"
    );
    let methods = methods(include_str!("authenticator.rs"));
    assert!(
        methods.len() > 30,
        "the parser found {} methods",
        methods.len()
    );
    let unlinked = unlinked(&root, &methods);
    assert!(
        unlinked.is_empty(),
        "neither at the root nor linked: {unlinked:?}"
    );
}

/// `"method: Type"` for each type in a method's signature that is neither at the crate's
/// root (`root`), nor well known, nor linked from the method's doc.
fn unlinked(root: &BTreeSet<&str>, methods: &[(String, String, String)]) -> Vec<String> {
    let mut unlinked = Vec::new();
    for (name, doc, signature) in methods {
        for ty in type_names(signature) {
            let linked = doc.contains(&format!("`{ty}`]"));
            if !(root.contains(ty) || KNOWN.contains(&ty) || linked) {
                unlinked.push(format!("{name}: {ty}"));
            }
        }
    }
    unlinked
}

#[test]
fn the_parser_sees_a_type_that_is_not_linked() {
    let source = "
        /// Does it.
        pub async fn demo(&self, x: Hidden) -> Result<(), ConfigError> {
        }
    ";
    let methods = methods(source);
    assert_eq!(methods.len(), 1);
    let (name, doc, signature) = &methods[0];
    assert_eq!(name, "demo");
    assert!(type_names(signature).contains("Hidden"));
    assert!(!doc.contains("`Hidden`]"));
    // The check itself names it (ConfigError is at the root, Result well known).
    let root = root_names("\npub use messages::error::ConfigError;");
    assert_eq!(unlinked(&root, &methods), ["demo: Hidden"]);
}
