-- The languages an added bot offers its users (BotLanguagesSet), as codes
-- in the bot's order; empty until set: every language courier speaks.
ALTER TABLE bots ADD COLUMN languages TEXT[] NOT NULL DEFAULT '{}';
