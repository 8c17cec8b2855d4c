-- The course door's OAuth2 provider. Neither table is a read model: the log does not hold
-- codes or tokens (no secret in the log), so no rebuild touches them.

-- Authorization codes issued by the login form, each kept only as the SHA-256 of the code,
-- until it is exchanged (the row is deleted by the one exchange that wins) or expires.
CREATE TABLE oauth_codes (
    code_hash    bytea PRIMARY KEY,
    client_id    text NOT NULL,
    redirect_uri text NOT NULL,
    scope        text NOT NULL,
    user_id      text NOT NULL,
    username     text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX oauth_codes_expiry ON oauth_codes (expires_at);

-- Which client a token issued through a code belongs to (for introspection's `client_id`
-- and `scope`), under the SHA-256 of the token, until the token expires.
CREATE TABLE oauth_grants (
    token_hash bytea PRIMARY KEY,
    client_id  text NOT NULL,
    scope      text NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX oauth_grants_expiry ON oauth_grants (expires_at);
