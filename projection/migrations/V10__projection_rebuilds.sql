-- The last rebuild of each read model: how far it got and how it ended. Not a read model
-- (the log cannot say how a rebuild went), so no rebuild touches it. Whether one is
-- running now is the advisory lock its process holds, not this row: a killed process
-- leaves the row saying 'rebuilding' and releases the lock.
CREATE TABLE projection_rebuild (
    name        text PRIMARY KEY,
    status      text NOT NULL,
    applied     bigint NOT NULL DEFAULT 0,
    target      bigint NOT NULL DEFAULT 0,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    error       text
);
