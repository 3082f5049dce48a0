-- Campaigns scheduled to start at a set time (CampaignScheduled): a status
-- of their own, and the time they start at.
ALTER TABLE campaigns DROP CONSTRAINT campaigns_status_check;
ALTER TABLE campaigns
    ADD CONSTRAINT campaigns_status_check
        CHECK (status IN ('pending', 'scheduled', 'sending', 'paused', 'completed', 'cancelled')),
    ADD COLUMN scheduled_at TIMESTAMPTZ;
