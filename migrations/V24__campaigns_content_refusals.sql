-- Recipients whose send Telegram refused because of the content itself,
-- since the campaign started or was last resumed, and the last such reason:
-- a few pause the campaign (services/projector/src/content_guard.rs).
ALTER TABLE campaigns ADD COLUMN content_refusals INTEGER NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN content_refusal TEXT;
