-- Key shares whose ksn3 seal did not open with the owner the database names
-- (shared/binding.py): their wallet or their user's identity was changed in
-- the database. /health names the reason share_binding_mismatch while one of
-- them still does not open; the rows carry no share, only the wallet.
CREATE TABLE IF NOT EXISTS ksn_binding_mismatches (
    wallet_id uuid PRIMARY KEY,
    first_seen timestamptz NOT NULL DEFAULT now(),
    last_seen timestamptz NOT NULL DEFAULT now(),
    times integer NOT NULL DEFAULT 1
);
