-- Commit-reveal (issue 23). The reference's two tables (0001) are used as
-- they are; operation_type stays varchar(32) with no CHECK (the reference
-- writes what clients send, and such rows are adopted as is): the five
-- values of spec commit-reveal section 5 (sign_in, sign_up, sign_in_reshare,
-- register_reshare, add_ed25519) are enforced by the commit route.
--
-- What we add: a token hash stays reserved to the ephemeral key that first
-- committed it for as long as the token could still be accepted, after its
-- session is cleaned up (shared/store/cr_sessions.py). Hashes are stored in
-- lower case (the rule of docs/differences.md, W8).
CREATE TABLE IF NOT EXISTS ksn_cr_reserved_hashes (
    id_token_hash varchar(64) PRIMARY KEY,
    client_ephemeral_pubkey bytea NOT NULL,
    reserved_until timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS ksn_cr_reserved_hashes_until ON ksn_cr_reserved_hashes (reserved_until);

-- Sessions the reference wrote: their hashes are reserved from their
-- commit time (31 days = RESERVATION in shared/store/cr_sessions.py); the
-- rows themselves stay untouched.
INSERT INTO ksn_cr_reserved_hashes (id_token_hash, client_ephemeral_pubkey, reserved_until)
SELECT DISTINCT ON (lower(id_token_hash)) lower(id_token_hash), client_ephemeral_pubkey,
       created_at + interval '31 days'
FROM "2_commit_reveal_sessions"
ORDER BY lower(id_token_hash), created_at
ON CONFLICT (id_token_hash) DO NOTHING;
