-- Issue 11: jobs carry the deadline of the request that asked for them, and
-- two new terminal states; restore drills get their own ledger.

-- When the requester stops waiting. A job not started by then is never
-- started ('expired'); the API marks a job it gave up on 'cancelled'.
ALTER TABLE ksn_jobs ADD COLUMN IF NOT EXISTS deadline timestamptz;
ALTER TABLE ksn_jobs DROP CONSTRAINT IF EXISTS ksn_jobs_state_check;
ALTER TABLE ksn_jobs ADD CONSTRAINT ksn_jobs_state_check
    CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'expired', 'cancelled'));

-- Restore drills: the newest COMPLETED dump restored into a scratch database
-- and compared with the row counts and checksums recorded when it was taken.
CREATE TABLE IF NOT EXISTS ksn_backup_drills (
    drill_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dump_id uuid,
    ok boolean NOT NULL,
    detail text,
    seconds double precision,
    checked_at timestamptz NOT NULL DEFAULT now()
);
