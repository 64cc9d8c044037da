-- A reveal's signature covers the node key, the session id, the token, the
-- operation and the API: no nonce, no time. The reference never deletes a
-- session, so a session id once committed is taken for good and a captured
-- commit + reveal cannot be replayed. ksnode removes sessions (housekeeping,
-- an hour after expiry; a key reopening a session for its token), so the id
-- of a removed session is kept here, spent, for as long as its token could
-- still be accepted (31 days from its commit = RESERVATION in
-- shared/store/cr_sessions.py): a commit reusing it is 409
-- SESSION_ALREADY_EXISTS, as at the reference.
CREATE TABLE IF NOT EXISTS ksn_cr_spent_sessions (
    session_id uuid PRIMARY KEY,
    spent_until timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS ksn_cr_spent_sessions_until ON ksn_cr_spent_sessions (spent_until);
