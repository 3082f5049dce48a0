-- The rate a card last measured, shown again when it is refreshed too soon
-- to measure a new one (a button press right after a round), and when it
-- was last edited, so bot replicas together edit a card at most once per
-- interval (Telegram rate-limits edits too).
ALTER TABLE bot_cards ADD COLUMN rate DOUBLE PRECISION;
ALTER TABLE bot_cards ADD COLUMN edited_at TIMESTAMPTZ;
