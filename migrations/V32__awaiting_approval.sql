-- Campaigns waiting for a second admin's approval (CampaignApprovalRequested):
-- a status of their own, and who asked.
ALTER TABLE campaigns DROP CONSTRAINT campaigns_status_check;
ALTER TABLE campaigns
    ADD CONSTRAINT campaigns_status_check
        CHECK (status IN ('pending', 'scheduled', 'awaiting_approval', 'sending', 'paused',
                          'completed', 'cancelled')),
    ADD COLUMN approval_requested_by BIGINT;
