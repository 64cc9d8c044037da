-- Several nodes on one database (NODE_ID, docs/operator.md section 11).

-- Heartbeats per node and program, so that each node's /health reports its
-- own programs. A new table rather than a changed key of ksn_heartbeats:
-- programs of the previous version, still running during a rolling upgrade,
-- keep writing the old table (nothing reads it any more) instead of failing.
CREATE TABLE IF NOT EXISTS ksn_node_heartbeats (
    node_id text NOT NULL,
    program varchar(32) NOT NULL,
    pid integer NOT NULL,
    host text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    beat_at timestamptz NOT NULL DEFAULT now(),
    last_result jsonb,
    PRIMARY KEY (node_id, program)
);

-- A manual job runs on the worker of the node that was asked (its DUMP_DIR
-- is that node's disk). NULL: asked by a previous version; any node's worker.
ALTER TABLE ksn_jobs ADD COLUMN IF NOT EXISTS node_id text;
