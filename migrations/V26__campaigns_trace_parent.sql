-- The W3C traceparent CampaignStarted carried: the facts the projector
-- publishes about the campaign later (its completion, a pause for refused
-- content) continue the campaign's trace. Taken from the event's headers,
-- so a replay writes the same value.
ALTER TABLE campaigns ADD COLUMN trace_parent TEXT;
