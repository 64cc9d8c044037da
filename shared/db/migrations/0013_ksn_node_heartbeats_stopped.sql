-- A program that stops cleanly (SIGTERM: `ksnode ctl stop`, a reload, the
-- node stopping) says so in its heartbeat row, so /health and the admin
-- backup routes know at once that it is not running, rather than when its
-- heartbeat has aged past three intervals (at least 30 s). Cleared when a
-- process of the program starts again.
ALTER TABLE ksn_node_heartbeats ADD COLUMN IF NOT EXISTS stopped_at timestamptz;
