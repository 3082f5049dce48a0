-- How long each campaign has been paused, kept from its pause and resume
-- events: the delivery SLO's ideal time excludes pauses
-- (services/projector/src/delivery_slo.rs).
ALTER TABLE campaigns
    ADD COLUMN paused_at TIMESTAMPTZ,
    ADD COLUMN paused_ms BIGINT NOT NULL DEFAULT 0;
