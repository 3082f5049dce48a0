-- Audiences beyond language (courier_core::audience): what courier knows
-- about a user besides language and liveness, and a campaign's audience as
-- the text form of its filter.
ALTER TABLE users
    ADD COLUMN tags           TEXT[] NOT NULL DEFAULT '{}',
    -- The first /start's deep-link parameter, as it arrived.
    ADD COLUMN source         TEXT,
    ADD COLUMN first_name     TEXT NOT NULL DEFAULT '',
    ADD COLUMN last_name      TEXT NOT NULL DEFAULT '',
    ADD COLUMN username       TEXT NOT NULL DEFAULT '',
    -- Day-grained: the bot records activity at most once a day per user.
    ADD COLUMN last_active_at TIMESTAMPTZ,
    -- /stop: no broadcasts, still a user of the bot.
    ADD COLUMN opted_out      BOOLEAN NOT NULL DEFAULT FALSE;

-- One index per filter part, so a filter is evaluated where the data is.
CREATE INDEX users_tags ON users USING GIN (tags) WHERE is_alive;
CREATE INDEX users_source ON users (source) WHERE is_alive AND source IS NOT NULL;
CREATE INDEX users_registered_at ON users (registered_at) WHERE is_alive;
CREATE INDEX users_last_active_at ON users (last_active_at) WHERE is_alive;

-- `audience` becomes a filter's text form: 'lang:ru', 'all', 'tag:vip active:30d'.
ALTER TABLE campaigns DROP CONSTRAINT campaigns_audience_check;
UPDATE campaigns SET audience = CASE audience
    WHEN 'ru' THEN 'lang:ru' WHEN 'en' THEN 'lang:en' ELSE audience END;
