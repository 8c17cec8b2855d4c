-- The keys that sign access tokens join the secret store, each under its key id, so a key
-- can be rotated while tokens signed by the one before stay valid. The key every instance
-- had so far keeps the id 'legacy', which tokens without a key id are checked against.
CREATE TABLE token_keys (
    kid        text PRIMARY KEY,
    key        bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO token_keys (kid, key, created_at)
    SELECT 'legacy', key, '-infinity'::timestamptz FROM token_signing_key;
DROP TABLE token_signing_key;

-- The user directory gains each user's number and the access table that every serving
-- process keeps in memory; both are rebuilt from the log.
DROP TABLE IF EXISTS users;
DELETE FROM projection_checkpoint WHERE name = 'user_directory';
