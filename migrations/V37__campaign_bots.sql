-- The bot that sends each campaign (CampaignCreated.bot_id); 0 is the
-- deployment's default bot, the one of TELEGRAM_BOT_TOKEN, which every
-- campaign before bots were added belongs to.
ALTER TABLE campaigns ADD COLUMN bot_id BIGINT NOT NULL DEFAULT 0;
