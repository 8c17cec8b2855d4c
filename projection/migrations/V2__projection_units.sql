-- Each read model has its own checkpoint row (name = the projection's name). A projection
-- that meets an event this build does not know stops there and says why.
ALTER TABLE projection_checkpoint
    ADD COLUMN halted_at_seq bigint,
    ADD COLUMN halted_reason text;

-- The one shared checkpoint of earlier builds becomes the checkpoint of each read model it
-- maintained, so an upgraded instance does not replay what it already holds.
INSERT INTO projection_checkpoint (name, last_seq, updated_at)
SELECT unit.name, c.last_seq, c.updated_at
FROM projection_checkpoint AS c, (VALUES ('course_catalogue'), ('user_directory')) AS unit(name)
WHERE c.name = 'read_models'
ON CONFLICT (name) DO NOTHING;
DELETE FROM projection_checkpoint WHERE name = 'read_models';

-- Events a projection or a worker could not apply, with the reason: kept for an admin to
-- look at and retry, never skipped in silence.
CREATE TABLE parked_events (
    consumer     text NOT NULL,
    seq          bigint NOT NULL,
    aggregate    text,
    aggregate_id text,
    event_type   text,
    error        text NOT NULL,
    parked_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, seq)
);
