-- The last user id of the batch the loader is publishing: after a crash,
-- items up to it may already be in the work stream, and the loader marks
-- their second copies so senders check them for an outcome.
ALTER TABLE loader_cursors ADD COLUMN publishing_through BIGINT;
