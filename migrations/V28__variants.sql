-- Variants by language (CampaignCreated.variants): the languages a
-- campaign has its own message for, and which one each recipient gets,
-- fixed at the start with the audience ('' = the default content).
ALTER TABLE campaigns ADD COLUMN variants TEXT[] NOT NULL DEFAULT '{}';
ALTER TABLE deliveries ADD COLUMN variant TEXT NOT NULL DEFAULT '';

-- Whether any version greets by name ({first_name}...): the loader then
-- puts each recipient's names in their work item.
ALTER TABLE campaigns ADD COLUMN personal BOOLEAN NOT NULL DEFAULT FALSE;
