-- The studio door's one-time codes: password-reset codes and e-mail confirmation keys.
-- Secrets, like the credentials: never in an event, and not a read model (no rebuild
-- touches this table). Only each code's SHA-256 is kept; the code itself is only ever in
-- the mail that carries it. A code works until it expires or is used, once.
CREATE TABLE studio_codes (
    code_hash  bytea PRIMARY KEY,
    purpose    text NOT NULL CHECK (purpose IN ('password_reset', 'email_confirmation')),
    user_id    text NOT NULL,
    email      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX studio_codes_user ON studio_codes (user_id, purpose) WHERE used_at IS NULL;

-- Mail Gantry would send. No mail server is configured: each message waits here, unsent,
-- for a mailer (or an operator) to deliver it and set sent_at. The log only names the
-- recipient and the subject; the body, which may carry a code, is only here.
CREATE TABLE outbox (
    id         bigserial PRIMARY KEY,
    recipient  text NOT NULL,
    subject    text NOT NULL,
    body       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
