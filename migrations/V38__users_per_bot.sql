-- Users and admins are per bot (UserRegistered.bot_id, AdminGranted.bot_id):
-- a person who writes to two bots of the deployment is two users, each in
-- their own bot's audiences, with their own language, tags and liveness
-- (blocking one bot does not block the other). Everything before belongs to
-- the default bot, 0.
ALTER TABLE users ADD COLUMN bot_id BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users DROP CONSTRAINT users_pkey, ADD PRIMARY KEY (bot_id, user_id);

-- The audience indexes lead with the bot, since every audience is one bot's.
-- Tags keep their GIN index: the bot condition filters its matches.
DROP INDEX users_live_by_language;
CREATE INDEX users_live_by_language ON users (bot_id, language, user_id) WHERE is_alive;
DROP INDEX users_source;
CREATE INDEX users_source ON users (bot_id, source) WHERE is_alive AND source IS NOT NULL;
DROP INDEX users_registered_at;
CREATE INDEX users_registered_at ON users (bot_id, registered_at) WHERE is_alive;
DROP INDEX users_last_active_at;
CREATE INDEX users_last_active_at ON users (bot_id, last_active_at) WHERE is_alive;

ALTER TABLE admins ADD COLUMN bot_id BIGINT NOT NULL DEFAULT 0;
ALTER TABLE admins DROP CONSTRAINT admins_pkey, ADD PRIMARY KEY (bot_id, user_id);
