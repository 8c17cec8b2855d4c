-- How far the projector has applied the event log, per projection.
CREATE TABLE projection_checkpoint (
    name       text PRIMARY KEY,
    last_seq   bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Courses of the GPU course platform, one row per live course.
CREATE TABLE course (
    id           uuid PRIMARY KEY,
    owner        text NOT NULL,
    name         text NOT NULL,
    introduction text NOT NULL,
    image        text NOT NULL,
    level        text NOT NULL,
    gpu          integer NOT NULL,
    datasets     text[] NOT NULL,
    created_at   timestamptz NOT NULL,
    last_seq     bigint NOT NULL
);
CREATE INDEX course_owner ON course (owner, created_at);
CREATE INDEX course_level ON course (level, created_at);
CREATE INDEX course_created ON course (created_at);

-- Users who can log in, with their argon2id hash.
CREATE TABLE users (
    username      text PRIMARY KEY,
    password_hash text NOT NULL,
    admin         boolean NOT NULL,
    email         text NOT NULL,
    created_at    timestamptz NOT NULL,
    last_seq      bigint NOT NULL
);

-- The key that signs access tokens, shared by every `serve` of the instance.
CREATE TABLE token_signing_key (
    id  integer PRIMARY KEY CHECK (id = 1),
    key bytea NOT NULL
);
