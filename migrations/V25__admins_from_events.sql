-- Admins are now projected from AdminGranted / AdminRevoked events, like
-- every other fact. The grants the bot kept itself move here; they have no
-- events, so a rebuild from the streams drops them (grant them again).
CREATE TABLE admins (
    user_id    BIGINT PRIMARY KEY,
    granted_by BIGINT NOT NULL,
    granted_at TIMESTAMPTZ NOT NULL
);
INSERT INTO admins (user_id, granted_by, granted_at)
    SELECT user_id, granted_by, granted_at FROM bot_admins;
DROP TABLE bot_admins;
