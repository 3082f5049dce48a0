-- An added bot's owners (BotOwnersSet): they broadcast through it and grant
-- its admins, as OWNER_IDS do for the default bot.
ALTER TABLE bots ADD COLUMN owner_ids BIGINT[] NOT NULL DEFAULT '{}';

-- The bot service serves every bot: its own state (dialogues, progress
-- cards) is per bot, since an admin may compose in two bots at once and
-- message ids are per bot and chat. Everything before is the default bot's.
ALTER TABLE bot_dialogues ADD COLUMN bot_id BIGINT NOT NULL DEFAULT 0;
ALTER TABLE bot_dialogues DROP CONSTRAINT bot_dialogues_pkey, ADD PRIMARY KEY (bot_id, chat_id);
ALTER TABLE bot_cards ADD COLUMN bot_id BIGINT NOT NULL DEFAULT 0;
ALTER TABLE bot_cards DROP CONSTRAINT bot_cards_pkey, ADD PRIMARY KEY (bot_id, chat_id, message_id);
