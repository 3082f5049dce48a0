-- The read model: everything here is derived from the JetStream streams
-- and can be rebuilt by replaying them (`courierctl rebuild`). Times come
-- from the events, never from now(), so a replay produces identical rows.

CREATE TABLE users (
    user_id       BIGINT PRIMARY KEY,
    chat_id       BIGINT NOT NULL,
    language      TEXT NOT NULL CHECK (language IN ('ru', 'en')),
    is_alive      BOOLEAN NOT NULL DEFAULT TRUE,
    registered_at TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

-- The loader's and the preview's query: live users of one language.
CREATE INDEX users_live_by_language ON users (language, user_id) WHERE is_alive;

CREATE TABLE campaigns (
    campaign_id          UUID PRIMARY KEY,
    created_by           BIGINT NOT NULL,
    audience             TEXT NOT NULL CHECK (audience IN ('ru', 'en', 'all')),
    content_kind         TEXT NOT NULL,
    -- courier.v1.Content, protobuf-encoded: exactly what senders send.
    content              BYTEA NOT NULL,
    disable_notification BOOLEAN NOT NULL,
    protect_content      BOOLEAN NOT NULL,
    paid_broadcast       BOOLEAN NOT NULL,
    status               TEXT NOT NULL
        CHECK (status IN ('pending', 'sending', 'paused', 'completed', 'cancelled')),
    -- Why courier paused the campaign itself (e.g. broken content).
    status_reason        TEXT,
    -- Fixed when the campaign starts: live users of the audience then.
    audience_size        INTEGER,
    delivered            INTEGER NOT NULL DEFAULT 0,
    not_alive            INTEGER NOT NULL DEFAULT 0,
    failed               INTEGER NOT NULL DEFAULT 0,
    cancelled            INTEGER NOT NULL DEFAULT 0,
    created_at           TIMESTAMPTZ NOT NULL,
    started_at           TIMESTAMPTZ,
    finished_at          TIMESTAMPTZ,
    -- Stream sequence of the last event applied to this campaign; commands
    -- publish with it as Nats-Expected-Last-Subject-Sequence.
    last_event_seq       BIGINT NOT NULL
);

CREATE INDEX campaigns_recent ON campaigns (created_at DESC);

-- One row per recipient, created when the campaign starts.
CREATE TABLE deliveries (
    campaign_id UUID NOT NULL REFERENCES campaigns (campaign_id),
    user_id     BIGINT NOT NULL,
    chat_id     BIGINT NOT NULL,
    status      TEXT NOT NULL
        CHECK (status IN ('pending', 'delivered', 'not_alive', 'failed', 'cancelled')),
    message_id  BIGINT,
    reason      TEXT,
    attempts    INTEGER,
    finished_at TIMESTAMPTZ,
    PRIMARY KEY (campaign_id, user_id)
);

-- The last stream sequence applied from each stream, advanced in the same
-- transaction as the change it records.
CREATE TABLE projector_checkpoints (
    stream   TEXT PRIMARY KEY,
    last_seq BIGINT NOT NULL
);

-- Messages the projector could not apply (undecodable, unknown version),
-- kept for an operator instead of crash-looping on them.
CREATE TABLE parked_messages (
    stream    TEXT NOT NULL,
    seq       BIGINT NOT NULL,
    subject   TEXT NOT NULL,
    payload   BYTEA NOT NULL,
    error     TEXT NOT NULL,
    parked_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, seq)
);

-- The loader's own progress (not part of the read model): the last
-- recipient enqueued per campaign, so a restarted loader resumes there.
CREATE TABLE loader_cursors (
    campaign_id  UUID PRIMARY KEY,
    last_user_id BIGINT NOT NULL,
    finished     BOOLEAN NOT NULL DEFAULT FALSE
);
