-- /health names audit_staged_refused while ksn_audit holds a recent
-- audit.staged_refused record (a row written into ksn_audit_staged without
-- the node's MAC: someone holding only the database). A partial index keeps
-- that look-up to the few such rows, however long the trail grows; other
-- records never enter it, so appends cost nothing more.
CREATE INDEX IF NOT EXISTS idx_ksn_audit_staged_refused ON ksn_audit (at)
    WHERE event = 'audit.staged_refused';
