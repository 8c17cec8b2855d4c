-- Passwords leave the log and the read models. Each argon2id hash lives here under the id
-- of its credential, which the events name. This is not a read model: no projection
-- rebuild touches it. A retired credential keeps its row without its hash, so that the
-- hash of an old event is never adopted again once a newer password replaced it.
CREATE TABLE credentials (
    credential_id uuid PRIMARY KEY,
    user_id       text NOT NULL,
    password_hash text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    retired_at    timestamptz
);
CREATE INDEX credentials_user ON credentials (user_id);

-- The user directory is rebuilt from the log, with its new columns and without hashes; on
-- the way it moves the hash of each version 1 UserCreated into credentials.
DROP TABLE IF EXISTS users;
DELETE FROM projection_checkpoint WHERE name = 'user_directory';
