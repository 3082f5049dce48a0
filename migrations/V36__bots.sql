-- The bots this deployment serves (courierctl bots add), from BotAdded and
-- BotRemoved. No token: tokens are sealed in the NATS bots bucket.
CREATE TABLE bots (
    bot_id BIGINT PRIMARY KEY,
    username TEXT NOT NULL,
    first_name TEXT NOT NULL,
    -- Tells one token from the next without revealing either.
    token_fingerprint TEXT NOT NULL,
    added_at TIMESTAMPTZ NOT NULL,
    -- When its token last changed (the add itself, or a rotation).
    token_changed_at TIMESTAMPTZ NOT NULL,
    -- Set by BotRemoved; a later BotAdded brings it back.
    removed_at TIMESTAMPTZ
);
