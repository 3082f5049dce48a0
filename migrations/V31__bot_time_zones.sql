-- The time zone each admin writes start times in: asked once, before their
-- first scheduled campaign (the bot's own state, like bot_dialogues).
CREATE TABLE bot_time_zones (
    user_id   BIGINT PRIMARY KEY,
    time_zone TEXT NOT NULL
);
