-- What admins call a campaign (its title, or the first words of its
-- message), and who made its last status change (paused, resumed,
-- cancelled: 0 when courier did).
ALTER TABLE campaigns
    ADD COLUMN name TEXT NOT NULL DEFAULT '',
    ADD COLUMN status_by BIGINT;
