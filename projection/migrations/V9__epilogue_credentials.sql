-- The credentials of Slurm clusters' epilogues: each lets one named cluster record jobs and
-- set their amounts at the accounting door. Not a read model: the credential is a secret,
-- never in the log, kept only as its SHA-256, so no rebuild touches this table.
CREATE TABLE epilogue_credentials (
    token_hash bytea PRIMARY KEY,
    cluster    text NOT NULL,
    issued_by  text NOT NULL,
    issued_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX epilogue_credentials_cluster ON epilogue_credentials (cluster);
