-- Edits and the recall of a campaign's delivered messages (CampaignEdited,
-- CampaignRecalled on the campaign's amend subject), and what became of
-- each message amended.
ALTER TABLE campaigns
    -- The content's revision: 0 as created, then one more per edit.
    ADD COLUMN revision    INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN edited_by   BIGINT,
    ADD COLUMN edited_at   TIMESTAMPTZ,
    ADD COLUMN recalled_by BIGINT,
    ADD COLUMN recalled_at TIMESTAMPTZ;

-- The revision of the content each recipient was sent.
ALTER TABLE deliveries ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;

-- One row per message edited to a revision or deleted: the outcome the
-- sender recorded (on its own outcome subject).
CREATE TABLE amendments (
    campaign_id UUID NOT NULL REFERENCES campaigns (campaign_id),
    user_id     BIGINT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('edit', 'delete')),
    -- Edits: the revision the message was edited to; deletions: 0.
    revision    INTEGER NOT NULL,
    result      TEXT NOT NULL CHECK (result IN ('done', 'unchanged', 'not_alive', 'failed')),
    reason      TEXT,
    finished_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (campaign_id, user_id, kind, revision)
);
