//! PLAIN password tables: usernames to passwords, compared in constant time.

use std::collections::HashMap;

use subtle::ConstantTimeEq;

/// One domain's PLAIN users. `Debug` shows usernames only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PasswordTable {
    users: HashMap<Vec<u8>, Vec<u8>>,
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
        PasswordTable {
            users: users
                .into_iter()
                .map(|(u, p)| (u.into(), p.into()))
                .collect(),
        }
    }

    /// Reads CZMQ's password file format: one `name=password` per line, split at the first
    /// `=`; lines starting with `#`, lines without `=` and lines starting with `=` are
    /// skipped. Nothing is trimmed but the line ending, as in CZMQ (`zhashx_load`).
    ///
    /// ```
    /// use actix_zap::policy::{PasswordCheck, PasswordTable};
    /// let table = PasswordTable::parse_password_file("# users\nadmin=s3cret\nguest=\n");
    /// assert_eq!(table.check(b"admin", b"s3cret"), PasswordCheck::Valid);
    /// assert_eq!(table.check(b"guest", b""), PasswordCheck::Valid);
    /// ```
    pub fn parse_password_file(text: &str) -> Self {
        let users = text
            .lines()
            .map(|line| line.strip_suffix('\r').unwrap_or(line))
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.split_once('='))
            .filter(|(name, _)| !name.is_empty())
            .map(|(name, password)| (name.as_bytes().to_vec(), password.as_bytes().to_vec()));
        PasswordTable {
            users: users.collect(),
        }
    }

    /// Checks a username and password. The password comparison takes the same time wherever
    /// the first differing byte is.
    pub fn check(&self, username: &[u8], password: &[u8]) -> PasswordCheck {
        match self.users.get(username) {
            None => PasswordCheck::UnknownUser,
            Some(expected) if bool::from(expected.as_slice().ct_eq(password)) => {
                PasswordCheck::Valid
            }
            Some(_) => PasswordCheck::WrongPassword,
        }
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
            .keys()
            .map(|u| String::from_utf8_lossy(u).into_owned())
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn debug_never_shows_passwords() {
        let table = PasswordTable::new([("admin", "hunter2")]);
        let shown = format!("{table:?}");
        assert!(shown.contains("admin") && !shown.contains("hunter2"));
    }
}
