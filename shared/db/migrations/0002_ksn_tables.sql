-- Our own tables. They never change a reference column; a reference node
-- reading this database simply does not see them.

-- Manual backup/restore requests: written by the API, claimed by the backup
-- worker with FOR UPDATE SKIP LOCKED.
CREATE TABLE IF NOT EXISTS ksn_jobs (
    job_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind varchar(16) NOT NULL CHECK (kind IN ('backup', 'restore')),
    state varchar(16) NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    params jsonb NOT NULL DEFAULT '{}'::jsonb,
    result jsonb,
    error text,
    claimed_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz
);
CREATE INDEX IF NOT EXISTS idx_ksn_jobs_queued ON ksn_jobs (created_at) WHERE state = 'queued';

-- One row per program: liveness and the last result of its work.
CREATE TABLE IF NOT EXISTS ksn_heartbeats (
    program varchar(32) PRIMARY KEY,
    pid integer NOT NULL,
    host text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    beat_at timestamptz NOT NULL DEFAULT now(),
    last_result jsonb
);

-- Outcome of the backup worker's startup self-check (dump + restore of a
-- scratch database); /status.is_db_backup_checked reads the newest row.
CREATE TABLE IF NOT EXISTS ksn_backup_checks (
    check_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ok boolean NOT NULL,
    detail text,
    checked_at timestamptz NOT NULL DEFAULT now()
);
