//! PLAIN password tables: usernames to passwords, compared in constant time.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use subtle::ConstantTimeEq;

/// One user: username and password in one allocation, so that a lookup in a table of a
/// million users touches one heap block instead of two. Hashed and compared by username.
#[derive(Clone)]
struct User {
    bytes: Box<[u8]>,
    name_len: usize,
}

impl User {
    fn new(name: Vec<u8>, password: Vec<u8>) -> Self {
        let name_len = name.len();
        let mut bytes = name;
        bytes.extend_from_slice(&password);
        User {
            bytes: bytes.into_boxed_slice(),
            name_len,
        }
    }

    fn name(&self) -> &[u8] {
        &self.bytes[..self.name_len]
    }

    fn password(&self) -> &[u8] {
        &self.bytes[self.name_len..]
    }
}

impl Borrow<[u8]> for User {
    fn borrow(&self) -> &[u8] {
        self.name()
    }
}

impl Hash for User {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name().hash(state)
    }
}

impl PartialEq for User {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for User {}

/// One domain's PLAIN users. `Debug` shows usernames only.
#[derive(Clone, Default)]
pub struct PasswordTable {
    users: HashSet<User>,
}

/// Equal when the same users have the same passwords.
impl PartialEq for PasswordTable {
    fn eq(&self, other: &Self) -> bool {
        self.users.len() == other.users.len()
            && self.users.iter().all(|user| {
                other
                    .users
                    .get(user.name())
                    .is_some_and(|theirs| theirs.bytes == user.bytes)
            })
    }
}

impl Eq for PasswordTable {}

impl FromIterator<(Vec<u8>, Vec<u8>)> for PasswordTable {
    /// A later entry for the same username replaces an earlier one.
    fn from_iter<I: IntoIterator<Item = (Vec<u8>, Vec<u8>)>>(entries: I) -> Self {
        let mut users = HashSet::new();
        for (name, password) in entries {
            users.replace(User::new(name, password));
        }
        PasswordTable { users }
    }
}

impl<'a> FromIterator<(&'a str, &'a str)> for PasswordTable {
    /// `[("admin", "secret")].into_iter().collect()`; a later entry for the same username
    /// replaces an earlier one.
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a str)>>(entries: I) -> Self {
        PasswordTable::new(entries)
    }
}

impl FromIterator<(String, String)> for PasswordTable {
    /// Owned pairs, e.g. read from a database; a later entry for the same username replaces
    /// an earlier one.
    fn from_iter<I: IntoIterator<Item = (String, String)>>(entries: I) -> Self {
        PasswordTable::new(entries)
    }
}

/// What a password check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    /// Username known and password right.
    Valid,
    /// No such user.
    UnknownUser,
    /// Known user, wrong password.
    WrongPassword,
}

impl PasswordTable {
    /// Builds a table from (username, password) pairs.
    pub fn new<U, P>(users: impl IntoIterator<Item = (U, P)>) -> Self
    where
        U: Into<Vec<u8>>,
        P: Into<Vec<u8>>,
    {
        users
            .into_iter()
            .map(|(u, p)| (u.into(), p.into()))
            .collect()
    }

    /// Reads CZMQ's password file format: one `name=password` per line, split at the first
    /// `=`; lines starting with `#`, lines without `=` and lines starting with `=` are
    /// skipped. Nothing is trimmed but the line ending, as in CZMQ (`zhashx_load`). An entry
    /// with an empty password is left out: it could never log in (a watch names it in its
    /// report).
    ///
    /// ```
    /// use actix_zap::policy::{PasswordCheck, PasswordTable};
    /// let table = PasswordTable::parse_password_file("# users\nadmin=s3cret\nguest=\n");
    /// assert_eq!(table.check(b"admin", b"s3cret"), PasswordCheck::Valid);
    /// assert_eq!(table.check(b"guest", b""), PasswordCheck::UnknownUser);
    /// ```
    pub fn parse_password_file(text: &str) -> Self {
        Self::parse_password_file_refusing(text).0
    }

    /// [`parse_password_file`](Self::parse_password_file), and the users whose entry was
    /// refused because its password is empty (never admitted: such an entry is left out).
    pub(crate) fn parse_password_file_refusing(text: &str) -> (Self, Vec<String>) {
        let mut refused = Vec::new();
        let users = text
            .lines()
            .map(|line| line.strip_suffix('\r').unwrap_or(line))
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.split_once('='))
            .filter(|(name, _)| !name.is_empty())
            .filter(|(name, password)| {
                let empty = password.is_empty();
                if empty {
                    refused.push((*name).to_owned());
                }
                !empty
            })
            .map(|(name, password)| (name.as_bytes().to_vec(), password.as_bytes().to_vec()))
            .collect();
        (users, refused)
    }

    /// Checks a username and password. The password comparison takes the same time wherever
    /// the first differing byte is.
    pub fn check(&self, username: &[u8], password: &[u8]) -> PasswordCheck {
        match self.users.get(username) {
            None => PasswordCheck::UnknownUser,
            Some(user) if bool::from(user.password().ct_eq(password)) => PasswordCheck::Valid,
            Some(_) => PasswordCheck::WrongPassword,
        }
    }

    /// The stored password of a user (for a session's fingerprint; never logged).
    pub(crate) fn password(&self, username: &[u8]) -> Option<&[u8]> {
        self.users.get(username).map(|user| user.password())
    }

    /// Removes a user; true if it was there.
    pub fn remove(&mut self, username: &[u8]) -> bool {
        self.users.remove(username)
    }

    /// Whether the table has this user.
    pub fn contains(&self, username: &[u8]) -> bool {
        self.users.contains(username)
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// True when the table has no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The usernames, sorted (for inspection; passwords are never exposed).
    pub fn usernames(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .users
            .iter()
            .map(|u| String::from_utf8_lossy(u.name()).into_owned())
            .collect();
        names.sort();
        names
    }
}

impl std::fmt::Debug for PasswordTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordTable")
            .field("usernames", &self.usernames())
            .field("passwords", &"<redacted>")
            .finish()
    }
}

/// A domain's one PLAIN table: clear-text passwords (pyzmq's and CZMQ's password files) or
/// argon2id hashes (a credential store's). One enum, so a domain can never have both.
#[derive(Debug, Clone)]
pub enum PlainTable {
    /// Clear-text passwords, compared in constant time.
    Clear(PasswordTable),
    /// argon2id hashes, verified off the event loop.
    Hashed(Arc<super::HashedTable>),
}

impl PlainTable {
    /// Number of users.
    pub fn len(&self) -> usize {
        match self {
            PlainTable::Clear(table) => table.len(),
            PlainTable::Hashed(table) => table.len(),
        }
    }

    /// True when the table admits nobody.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The usernames, sorted (passwords and hashes are never exposed).
    pub fn usernames(&self) -> Vec<String> {
        match self {
            PlainTable::Clear(table) => table.usernames(),
            PlainTable::Hashed(table) => table.usernames(),
        }
    }

    /// Whether the table has this user.
    pub fn contains(&self, username: &[u8]) -> bool {
        match self {
            PlainTable::Clear(table) => table.contains(username),
            PlainTable::Hashed(table) => table.get(username).is_some(),
        }
    }

    /// Removes a user (copy-on-write for a shared hashed table); true if it was there.
    pub(crate) fn remove(&mut self, username: &[u8]) -> bool {
        match self {
            PlainTable::Clear(table) => table.remove(username),
            PlainTable::Hashed(table) => {
                table.get(username).is_some() && Arc::make_mut(table).remove(username)
            }
        }
    }
}

impl From<PasswordTable> for PlainTable {
    fn from(table: PasswordTable) -> Self {
        PlainTable::Clear(table)
    }
}

impl From<super::HashedTable> for PlainTable {
    fn from(table: super::HashedTable) -> Self {
        PlainTable::Hashed(Arc::new(table))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_collect_from_str_and_string_pairs() {
        let borrowed: PasswordTable = [("admin", "secret"), ("ops", "x")].into_iter().collect();
        let owned: PasswordTable = [("admin".to_owned(), "secret".to_owned())]
            .into_iter()
            .chain([("ops".to_owned(), "x".to_owned())])
            .collect();
        assert_eq!(borrowed, owned);
        assert_eq!(borrowed.check(b"admin", b"secret"), PasswordCheck::Valid);
    }

    #[test]
    fn a_password_file_entry_with_an_empty_password_is_left_out_and_named() {
        let (table, refused) =
            PasswordTable::parse_password_file_refusing("admin=secret\nempty=\n#c=\nb=x=y\n");
        assert_eq!(table.len(), 2);
        assert!(!table.contains(b"empty"));
        assert_eq!(table.check(b"b", b"x=y"), PasswordCheck::Valid);
        assert_eq!(refused, ["empty"]);
    }

    #[test]
    fn checks_users_and_passwords() {
        let table = PasswordTable::new([("admin", "secret")]);
        assert_eq!(table.check(b"admin", b"secret"), PasswordCheck::Valid);
        assert_eq!(
            table.check(b"admin", b"secre"),
            PasswordCheck::WrongPassword
        );
        assert_eq!(
            table.check(b"admin", b"secreT"),
            PasswordCheck::WrongPassword
        );
        assert_eq!(table.check(b"root", b"secret"), PasswordCheck::UnknownUser);
    }

    #[test]
    fn password_files_follow_czmq() {
        let text = "# comment\nadmin=pa=ss\n=nobody\nno-equals\n spaced = x \r\n";
        let table = PasswordTable::parse_password_file(text);
        assert_eq!(table.usernames(), [" spaced ", "admin"]);
        assert_eq!(table.check(b"admin", b"pa=ss"), PasswordCheck::Valid);
        assert_eq!(table.check(b" spaced ", b" x "), PasswordCheck::Valid);
        assert!(PasswordTable::parse_password_file("# only comments\n").is_empty());
    }

    #[test]
    fn later_entries_replace_earlier_ones_and_equality_sees_passwords() {
        let table = PasswordTable::new([("a", "1"), ("a", "2")]);
        assert_eq!(table.len(), 1);
        assert_eq!(table.check(b"a", b"2"), PasswordCheck::Valid);
        assert_eq!(table, PasswordTable::new([("a", "2")]));
        assert_ne!(table, PasswordTable::new([("a", "1")]));
        // A username that is a prefix of another user's name-and-password is still distinct.
        let tricky = PasswordTable::new([("ab", "c"), ("a", "bc")]);
        assert_eq!(tricky.check(b"a", b"bc"), PasswordCheck::Valid);
        assert_eq!(tricky.check(b"ab", b"c"), PasswordCheck::Valid);
        assert_eq!(tricky.check(b"a", b"c"), PasswordCheck::WrongPassword);
    }

    #[test]
    fn debug_never_shows_passwords() {
        let table = PasswordTable::new([("admin", "hunter2")]);
        let shown = format!("{table:?}");
        assert!(shown.contains("admin") && !shown.contains("hunter2"));
    }
}
