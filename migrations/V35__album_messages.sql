-- An album's delivery is several messages: every item's id, in order
-- (message_id stays the first's, which carries the caption), so a recall
-- deletes them all.
ALTER TABLE deliveries ADD COLUMN album_message_ids BIGINT[];
