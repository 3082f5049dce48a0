-- The bot's own state. Not part of the read model: nothing here comes from
-- the event streams, so a rebuild from the streams leaves these tables
-- alone. Only courier-bot writes them; every replica shares them.

-- Admins granted by an owner with /admins (owners come from OWNER_IDS).
-- The event schema has no admin events, so the grant lives here.
CREATE TABLE bot_admins (
    user_id    BIGINT PRIMARY KEY,
    granted_by BIGINT NOT NULL,
    granted_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Where each admin's /broadcast dialog stands, so it survives a restart
-- and any replica can take the next step. `state` is the bot's serde JSON.
CREATE TABLE bot_dialogues (
    chat_id    BIGINT PRIMARY KEY,
    state      JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Progress cards: messages in admins' chats that the bot keeps editing
-- while their campaign runs. No foreign key to campaigns: a card is
-- registered as soon as the campaign's events are published, before the
-- projector has applied them.
CREATE TABLE bot_cards (
    chat_id      BIGINT NOT NULL,
    message_id   INTEGER NOT NULL,
    campaign_id  UUID NOT NULL,
    -- The text last shown, so an unchanged card is not edited.
    shown        TEXT NOT NULL DEFAULT '',
    -- Recipients done at the last refresh, for the current rate.
    sampled_done INTEGER NOT NULL DEFAULT 0,
    sampled_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Which report was last sent for this card (completed, cancelled, or
    -- paused with a reason), so each is sent once.
    reported     TEXT,
    -- Completed or cancelled, and reported: never edited again.
    finished     BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (chat_id, message_id)
);

CREATE INDEX bot_cards_live ON bot_cards (campaign_id) WHERE NOT finished;
