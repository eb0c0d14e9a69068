//! Anti-entropy, sans-IO: the order-independent digest of the store rows a follower applied.
//!
//! The store hashes each row of its served domains to 64 bits (`curve_row_hash`,
//! `plain_row_hash`, written out in line: every column, so any change of a row changes its
//! hash) and can answer the
//! XOR of those hashes and their count ([`DIGEST`]). The follower keeps the same over the raw
//! rows it read — in the snapshot, then each credential the change log named, as the read
//! found it — including rows it refused to decode, and never its own revocations or expiry
//! (those are the policy's, not the store's). Whenever its position is the log's end, both
//! must agree: a difference means rows were changed without a log entry (triggers disabled,
//! `pg_restore --disable-triggers`, a hand edit by the owner), and the follower reads a
//! snapshot.
//!
//! Each credential is remembered by a 64-bit hash of its identity (kind, domain, key or
//! username) under keys random to this process (so no one can choose names that collide), with
//! its row hash, so that a change XORs out the row it replaces: 16 bytes per credential plus
//! the table's overhead.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

/// The hash of the `curve_keys` row `k`, as SQL (NULL for no row): the store's
/// `curve_row_hash(k)` written out, so that PostgreSQL computes it in line (the function, which
/// calls `concat_ws`, is not inlined: three to four times slower over 100,000 rows). An expiry
/// that does not fit a `bigint` of microseconds (infinite, or beyond year 294,000), on which
/// the function fails, is hashed as its epoch's text instead, so that no row fails a read.
/// Equal to the function on every row it can hash (the integration tests check it).
macro_rules! curve_hash {
    () => {
        "CASE WHEN k.public_key IS NULL THEN NULL ELSE ('x' || md5(concat_ws(E'\\x1f', 'curve',
             k.domain, k.public_key, coalesce(k.user_id, E'\\x1e'), k.metadata::text,
             k.enabled::text,
             CASE WHEN k.expires_at IS NULL THEN E'\\x1e'
                  WHEN isfinite(k.expires_at) AND k.expires_at < '100000-01-01+00'
                      THEN (extract(epoch FROM k.expires_at) * 1000000)::bigint::text
                  ELSE extract(epoch FROM k.expires_at)::text END)))::bit(64)::bigint END"
    };
}

/// The hash of the `plain_users` row `u`, as SQL (NULL for no row): the store's
/// `plain_row_hash(u)` written out, as [`curve_hash!`] is.
macro_rules! plain_hash {
    () => {
        "CASE WHEN u.username IS NULL THEN NULL ELSE ('x' || md5(concat_ws(E'\\x1f', 'plain',
             u.domain, u.username, u.password_hash, u.enabled::text)))::bit(64)::bigint END"
    };
}
pub(super) use {curve_hash, plain_hash};

/// What the store answers, for the domains `$1`: the XOR and the count of the row hashes of
/// the enabled CURVE keys, then the same for the enabled PLAIN users (columns 0 to 3).
pub(super) const DIGEST: &str = concat!(
    "SELECT c.x, c.n, p.x, p.n
    FROM (SELECT coalesce(bit_xor(",
    curve_hash!(),
    "), 0) AS x, count(*) AS n
          FROM {schema}.curve_keys k WHERE k.domain = ANY($1) AND k.enabled) c,
         (SELECT coalesce(bit_xor(",
    plain_hash!(),
    "), 0) AS x, count(*) AS n
          FROM {schema}.plain_users u WHERE u.domain = ANY($1) AND u.enabled) p"
);

/// Which table a credential lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Kind {
    Curve,
    Plain,
}

/// The digest: XOR and count of the row hashes (as the store answers [`DIGEST`], both tables
/// folded together).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Sum {
    pub(super) xor: i64,
    pub(super) count: i64,
}

impl Sum {
    /// The store's answer to [`DIGEST`]: CURVE XOR and count, PLAIN XOR and count.
    pub(super) fn of_tables(curve: (i64, i64), plain: (i64, i64)) -> Sum {
        Sum {
            xor: curve.0 ^ plain.0,
            count: curve.1 + plain.1,
        }
    }
}

/// A credential's identity, hashed (see the module's documentation).
pub(super) type Ident = u64;

/// The row hashes a follower applied, by identity, and their digest.
#[derive(Debug, Clone, Default)]
pub(super) struct Digest {
    keys: std::collections::hash_map::RandomState,
    rows: HashMap<Ident, i64, BuildHasherDefault<Spread>>,
    sum: Sum,
}

impl Digest {
    /// An empty digest that names credentials as `other` does (so identities hashed for one
    /// can be applied to the other).
    pub(super) fn like(other: &Digest) -> Digest {
        Digest {
            keys: other.keys.clone(),
            ..Digest::default()
        }
    }

    /// The identity of a credential.
    pub(super) fn ident(&self, kind: Kind, domain: &str, name: &str) -> Ident {
        self.keys.hash_one((kind, domain, name))
    }

    /// The credential `ident` is now the row hashed `hash` (`None`: no row, or a disabled
    /// one — neither is in the store's digest).
    pub(super) fn set(&mut self, ident: Ident, hash: Option<i64>) {
        if let Some(old) = self.rows.remove(&ident) {
            self.sum.xor ^= old;
            self.sum.count -= 1;
        }
        if let Some(new) = hash {
            self.rows.insert(ident, new);
            self.sum.xor ^= new;
            self.sum.count += 1;
        }
    }

    /// The digest of the rows applied.
    pub(super) fn sum(&self) -> Sum {
        self.sum
    }

    /// Room for `additional` more credentials.
    pub(super) fn reserve(&mut self, additional: usize) {
        self.rows.reserve(additional);
    }

    /// Gives back the room it no longer needs.
    pub(super) fn shrink_to_fit(&mut self) {
        self.rows.shrink_to_fit();
    }
}

/// The table's hasher for identities that are already hashes (under random keys): it keeps
/// them as they are.
#[derive(Debug, Default)]
pub(super) struct Spread(u64);

impl Hasher for Spread {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_follows_rows_added_changed_and_removed_in_any_order() {
        let mut a = Digest::default();
        let mut b = Digest::like(&a);
        let (x, y) = (
            a.ident(Kind::Curve, "d", "key"),
            a.ident(Kind::Plain, "d", "key"),
        );
        assert_ne!(
            x, y,
            "a key and a user of the same name are two credentials"
        );
        a.set(x, Some(1));
        a.set(y, Some(2));
        a.set(x, Some(4)); // updated: the old hash goes
        b.set(y, Some(2));
        b.set(x, Some(4));
        assert_eq!(a.sum(), b.sum());
        assert_eq!(a.sum(), Sum { xor: 6, count: 2 });
        a.set(y, None);
        a.set(y, None); // gone twice changes nothing
        assert_eq!(a.sum(), Sum { xor: 4, count: 1 });
        a.set(x, None);
        assert_eq!(a.sum(), Sum::default());
        assert_eq!(
            Sum::of_tables((4, 1), (2, 1)),
            Sum { xor: 6, count: 2 },
            "as the store answers"
        );
    }

    #[test]
    fn identities_differ_by_every_part_and_between_processes_keys() {
        let a = Digest::default();
        let b = Digest::default();
        let one = a.ident(Kind::Curve, "d", "k");
        assert_eq!(one, Digest::like(&a).ident(Kind::Curve, "d", "k"));
        assert_ne!(one, a.ident(Kind::Curve, "e", "k"));
        assert_ne!(one, a.ident(Kind::Curve, "d", "j"));
        assert_ne!(
            a.ident(Kind::Curve, "dk", ""),
            a.ident(Kind::Curve, "d", "k")
        );
        assert_ne!(one, b.ident(Kind::Curve, "d", "k"), "random keys");
    }
}
