-- A language the user chose with /language; registering again (/start)
-- keeps it instead of the Telegram app's guess.
ALTER TABLE users ADD COLUMN language_chosen BOOLEAN NOT NULL DEFAULT FALSE;
