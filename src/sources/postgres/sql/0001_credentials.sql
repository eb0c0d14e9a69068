-- actix-zap credential store, version 1. `{schema}` is replaced by the store's schema.
-- CURVE keys and PLAIN users per ZAP domain, and a change log written by triggers.

CREATE TABLE {schema}.settings (
    -- One row: the NOTIFY channel the triggers signal (channels are per database).
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    channel text NOT NULL,
    -- Change-log rows up to this sequence number may have been deleted: a follower that
    -- applied less than this reads a snapshot again instead of the log.
    pruned_through bigint NOT NULL DEFAULT 0
);

CREATE TABLE {schema}.curve_keys (
    domain text NOT NULL CHECK (octet_length(domain) <= 255),
    -- Z85 text of the 32-byte public key (40 characters); checked by every follower too.
    public_key text NOT NULL CHECK (length(public_key) = 40),
    -- The User-Id the server application sees; NULL: the key's Z85 text.
    user_id text,
    -- ZMTP metadata sent in the 200 reply: a JSON object of string values.
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
    enabled boolean NOT NULL DEFAULT true,
    -- Refused from this instant on (checked when each handshake is decided).
    expires_at timestamptz,
    PRIMARY KEY (domain, public_key)
);

CREATE TABLE {schema}.plain_users (
    domain text NOT NULL CHECK (octet_length(domain) <= 255),
    username text NOT NULL CHECK (username <> ''),
    -- An argon2id PHC string ($argon2id$v=19$m=...,t=...,p=...$salt$hash); never a password.
    password_hash text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    enabled boolean NOT NULL DEFAULT true,
    PRIMARY KEY (domain, username)
);

-- One row per changed credential; `ident` is the public key or the username. An update that
-- changes a primary key logs the old and the new identity.
CREATE TABLE {schema}.changes (
    seq bigserial PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('curve', 'plain')),
    domain text NOT NULL,
    ident text NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION {schema}.log_change() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    kind text := TG_ARGV[0];
    ident_column text := TG_ARGV[1];
    old_ident text;
    new_ident text;
    seq bigint;
BEGIN
    -- Writers of the credential tables take turns until they commit, so sequence numbers
    -- become visible in order: a reader that saw change N has seen every change before N.
    PERFORM pg_advisory_xact_lock(hashtext(TG_TABLE_SCHEMA || '.actix_zap_changes'));
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
    -- The payload is the sequence number only (NOTIFY payloads are capped at 8000 bytes).
    PERFORM pg_notify((SELECT channel FROM {schema}.settings), seq::text);
    RETURN NULL;
END
$fn$;

CREATE TRIGGER curve_keys_changed AFTER INSERT OR UPDATE OR DELETE ON {schema}.curve_keys
    FOR EACH ROW EXECUTE FUNCTION {schema}.log_change('curve', 'public_key');
CREATE TRIGGER plain_users_changed AFTER INSERT OR UPDATE OR DELETE ON {schema}.plain_users
    FOR EACH ROW EXECUTE FUNCTION {schema}.log_change('plain', 'username');
