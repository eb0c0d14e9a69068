-- actix-zap credential store, version 2: only the store writes its change log, and a follower
-- can check every position it holds. Additive: followers of version 1 keep working.
--
-- Three roles: the store's owner (runs migrate, owns every object here), writers (zapctl db
-- grant-writer: SELECT, INSERT, UPDATE, DELETE on curve_keys and plain_users, nothing on the
-- log) and followers (zapctl db grant-follower: SELECT). The log is written only by the
-- owner's SECURITY DEFINER trigger functions below.

-- Who the store is: made once, here; a follower reads it at every catch-up, and a store
-- dropped and migrated again is another store.
ALTER TABLE {schema}.settings ADD COLUMN store_id uuid NOT NULL DEFAULT gen_random_uuid();

-- A random tag per log row: a follower checks that the row it applied last is still there
-- with the same tag (or below the pruning mark). A log renumbered or restored reuses numbers,
-- never tags.
ALTER TABLE {schema}.changes ADD COLUMN tag bigint NOT NULL
    DEFAULT (('x' || md5(gen_random_uuid()::text))::bit(64)::bigint);

-- The sequence becomes an identity the store gives out, continuing after every number the
-- old sequence issued (including rows pruned since).
DO $do$
DECLARE
    next bigint;
BEGIN
    SELECT greatest(
        (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END
           FROM {schema}.changes_seq_seq),
        (SELECT max(seq) FROM {schema}.changes),
        (SELECT max(pruned_through) FROM {schema}.settings),
        0) + 1 INTO next;
    ALTER TABLE {schema}.changes ALTER COLUMN seq DROP DEFAULT;
    DROP SEQUENCE {schema}.changes_seq_seq;
    EXECUTE format('ALTER TABLE {schema}.changes ALTER COLUMN seq ADD GENERATED ALWAYS AS '
                   'IDENTITY (SEQUENCE NAME {schema}.changes_seq_seq START WITH %s)', next);
END
$do$;

-- The log is append-only and numbered by the store alone: an explicit number is refused even
-- with OVERRIDING SYSTEM VALUE (the identity just given out must be the row's), and so is any
-- update. Rows are only ever added by the functions below.
CREATE FUNCTION {schema}.guard_changes() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'the change log of {schema} is append-only';
    END IF;
    IF NEW.seq IS DISTINCT FROM currval('{schema}.changes_seq_seq') THEN
        RAISE EXCEPTION 'sequence numbers of the change log of {schema} are the store''s to give';
    END IF;
    NEW.tag := ('x' || md5(gen_random_uuid()::text))::bit(64)::bigint;
    NEW.changed_at := now();
    RETURN NEW;
END
$fn$;
CREATE TRIGGER changes_guard BEFORE INSERT OR UPDATE ON {schema}.changes
    FOR EACH ROW EXECUTE FUNCTION {schema}.guard_changes();

-- Every changed credential is logged by the owner's function, whoever writes: writers need no
-- right on the log. Writers take turns until they commit under a lock of the log table that
-- only the store's own roles can take (not an advisory lock any role could hold), so sequence
-- numbers become visible in order. The transaction's last change is left in the setting
-- `{schema}.last_change`, for the writer to learn its position without reading the log.
CREATE OR REPLACE FUNCTION {schema}.log_change() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    kind text := TG_ARGV[0];
    ident_column text := TG_ARGV[1];
    old_ident text;
    new_ident text;
    seq bigint;
BEGIN
    LOCK TABLE {schema}.changes IN EXCLUSIVE MODE;
    IF TG_OP <> 'INSERT' THEN
        old_ident := to_jsonb(OLD) ->> ident_column;
        INSERT INTO {schema}.changes (kind, domain, ident)
            VALUES (kind, OLD.domain, old_ident) RETURNING changes.seq INTO seq;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        new_ident := to_jsonb(NEW) ->> ident_column;
        IF TG_OP = 'INSERT' OR new_ident <> old_ident OR NEW.domain <> OLD.domain THEN
            INSERT INTO {schema}.changes (kind, domain, ident)
                VALUES (kind, NEW.domain, new_ident) RETURNING changes.seq INTO seq;
        END IF;
    END IF;
    IF seq IS NOT NULL THEN
        PERFORM set_config('{schema}.last_change', seq::text, true);
        -- The payload is the sequence number only (NOTIFY payloads are capped at 8000 bytes).
        PERFORM pg_notify((SELECT channel FROM {schema}.settings), seq::text);
    END IF;
    RETURN NULL;
END
$fn$;

-- A TRUNCATE of the credentials (row triggers do not fire), or of the log itself, is logged,
-- and the pruning mark becomes that new number: every follower reads a snapshot. (After
-- `TRUNCATE changes RESTART IDENTITY` the new number is small, and a follower's position
-- lies beyond the log: a snapshot too.)
CREATE FUNCTION {schema}.log_truncate() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    seq bigint;
BEGIN
    LOCK TABLE {schema}.changes IN EXCLUSIVE MODE;
    INSERT INTO {schema}.changes (kind, domain, ident)
        VALUES (TG_ARGV[0], '', '') RETURNING changes.seq INTO seq;
    UPDATE {schema}.settings SET pruned_through = seq;
    PERFORM set_config('{schema}.last_change', seq::text, true);
    PERFORM pg_notify((SELECT channel FROM {schema}.settings), seq::text);
    RETURN NULL;
END
$fn$;
CREATE TRIGGER curve_keys_truncated AFTER TRUNCATE ON {schema}.curve_keys
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.log_truncate('curve');
CREATE TRIGGER plain_users_truncated AFTER TRUNCATE ON {schema}.plain_users
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.log_truncate('plain');
CREATE TRIGGER changes_truncated AFTER TRUNCATE ON {schema}.changes
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.log_truncate('curve');

-- Log rows deleted by any means raise the pruning mark to the newest deleted: a follower that
-- had not applied them reads a snapshot.
CREATE FUNCTION {schema}.log_prune() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    UPDATE {schema}.settings
        SET pruned_through = greatest(pruned_through, (SELECT max(seq) FROM pruned));
    RETURN NULL;
END
$fn$;
CREATE TRIGGER changes_pruned AFTER DELETE ON {schema}.changes
    REFERENCING OLD TABLE AS pruned
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.log_prune();

-- Deletes log rows older than `keep` and raises the mark, in one transaction (zapctl db
-- prune); answers how many rows it deleted.
CREATE FUNCTION {schema}.prune(keep interval) RETURNS bigint LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    removed bigint;
BEGIN
    LOCK TABLE {schema}.changes IN EXCLUSIVE MODE;
    DELETE FROM {schema}.changes WHERE changed_at < now() - keep;
    GET DIAGNOSTICS removed = ROW_COUNT;
    RETURN removed;
END
$fn$;

-- Nobody but the owner calls these directly (functions are executable by PUBLIC by default).
REVOKE ALL ON FUNCTION {schema}.guard_changes(), {schema}.log_change(), {schema}.log_truncate(),
    {schema}.log_prune(), {schema}.prune(interval) FROM PUBLIC;

-- Triggers fire whatever the session's replication role: logical replication's apply and
-- `SET session_replication_role = replica` run them too.
ALTER TABLE {schema}.curve_keys ENABLE ALWAYS TRIGGER curve_keys_changed;
ALTER TABLE {schema}.plain_users ENABLE ALWAYS TRIGGER plain_users_changed;
ALTER TABLE {schema}.curve_keys ENABLE ALWAYS TRIGGER curve_keys_truncated;
ALTER TABLE {schema}.plain_users ENABLE ALWAYS TRIGGER plain_users_truncated;
ALTER TABLE {schema}.changes ENABLE ALWAYS TRIGGER changes_guard;
ALTER TABLE {schema}.changes ENABLE ALWAYS TRIGGER changes_truncated;
ALTER TABLE {schema}.changes ENABLE ALWAYS TRIGGER changes_pruned;

-- What a row is, as a 64-bit hash the store and its followers agree on: the followers keep
-- the order-independent digest (XOR) of the hashes of the rows they applied and compare it
-- with the store's (anti-entropy, for writes that bypass even these triggers).
CREATE FUNCTION {schema}.curve_row_hash(k {schema}.curve_keys) RETURNS bigint
    LANGUAGE sql IMMUTABLE AS $fn$
    SELECT ('x' || md5(concat_ws(E'\x1f', 'curve', k.domain, k.public_key,
        coalesce(k.user_id, E'\x1e'), k.metadata::text, k.enabled::text,
        coalesce((extract(epoch FROM k.expires_at) * 1000000)::bigint::text, E'\x1e'))))
        ::bit(64)::bigint
$fn$;
CREATE FUNCTION {schema}.plain_row_hash(u {schema}.plain_users) RETURNS bigint
    LANGUAGE sql IMMUTABLE AS $fn$
    SELECT ('x' || md5(concat_ws(E'\x1f', 'plain', u.domain, u.username, u.password_hash,
        u.enabled::text)))::bit(64)::bigint
$fn$;

-- Tightened checks, NOT VALID so that a store already holding a bad row still migrates (a
-- follower refuses such a row by itself): metadata values are strings.
ALTER TABLE {schema}.curve_keys ADD CONSTRAINT curve_keys_metadata_strings
    CHECK (NOT jsonb_path_exists(metadata, '$.* ? (@.type() != "string")')) NOT VALID;
