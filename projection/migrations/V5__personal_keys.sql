-- The keys that seal personal data (email, phone, real name, LDAP uid) in the log, one live
-- key per user at a time. Like credentials, this is not a read model: the log cannot
-- rebuild it and no rebuild touches it. Forgetting a user destroys their keys (the key goes,
-- the row stays, so that values sealed with it are known to be erased); data written after
-- that gets a fresh key.
CREATE TABLE personal_keys (
    key_id       uuid PRIMARY KEY,
    user_id      text NOT NULL,
    key          bytea,
    created_at   timestamptz NOT NULL,
    destroyed_at timestamptz,
    CHECK ((key IS NULL) = (destroyed_at IS NOT NULL))
);
CREATE UNIQUE INDEX personal_keys_live ON personal_keys (user_id) WHERE destroyed_at IS NULL;
