-- The audit trail (shared/audit.py): one row per security-relevant event,
-- chained by hash. Restores leave ksn_* tables alone, so a restore never
-- rewrites the trail; backups and replicas carry it.
CREATE TABLE IF NOT EXISTS ksn_audit (
    seq bigint PRIMARY KEY,
    at timestamptz NOT NULL,
    event text NOT NULL,
    outcome text NOT NULL,
    request_id text,
    client text,
    auth_type text,
    user_ref text,
    public_keys text[] NOT NULL DEFAULT '{}',
    detail jsonb,
    key_id text NOT NULL,
    prev_hash text NOT NULL,
    hash text NOT NULL
);
-- `ksnode audit find --user-auth-id`.
CREATE INDEX IF NOT EXISTS idx_ksn_audit_user_ref ON ksn_audit (user_ref)
    WHERE user_ref IS NOT NULL;
-- Retention: rows arrive in time order, so a BRIN index is enough and costs
-- almost nothing per insert.
CREATE INDEX IF NOT EXISTS idx_ksn_audit_at ON ksn_audit USING brin (at);
