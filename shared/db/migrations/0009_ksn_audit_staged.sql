-- Audit records written in the same statement as the write they record (a
-- v1 registration: shared/store/registration.py), so the record commits with
-- the share, in one round trip, instead of in a second transaction on the
-- chain lock. They carry no seq or hash yet: the audit trail's thread of any
-- API process moves them into ksn_audit (sealed, in the chain) within a
-- second, in the same transaction that deletes them here. ``mac`` is the
-- node's MAC over the record (shared/audit/records.py ``stage_mac``): a row
-- written here by someone holding only the database is not sealed as the
-- node's record (it is recorded as ``audit.staged_refused`` instead).
CREATE TABLE IF NOT EXISTS ksn_audit_staged (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL,
    event text NOT NULL,
    outcome text NOT NULL,
    request_id text,
    client text,
    auth_type text,
    user_ref text,
    public_keys text[] NOT NULL DEFAULT '{}',
    detail jsonb,
    mac text NOT NULL
);
