-- The reference node's tables (spec section 7.1), byte for byte: same names, column
-- types, defaults and constraint/index names, so a database written by the
-- reference is adopted in place and the reference could read ours.
-- Every statement is idempotent: on a reference database nothing changes.

CREATE TABLE IF NOT EXISTS "2_users" (
    user_id uuid NOT NULL DEFAULT gen_random_uuid(),
    auth_type varchar(64) NOT NULL,
    user_auth_id varchar(255) NOT NULL,
    status varchar(16) NOT NULL DEFAULT 'active',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    aux jsonb,
    CONSTRAINT "2_users_pkey" PRIMARY KEY (user_id),
    CONSTRAINT "2_users_auth_type_user_auth_id_key" UNIQUE (auth_type, user_auth_id)
);

CREATE TABLE IF NOT EXISTS "2_wallets" (
    wallet_id uuid NOT NULL DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL,
    curve_type varchar(16) NOT NULL,
    public_key bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    aux jsonb,
    CONSTRAINT "2_wallets_pkey" PRIMARY KEY (wallet_id),
    CONSTRAINT "2_wallets_public_key_key" UNIQUE (public_key)
);

CREATE TABLE IF NOT EXISTS "2_key_shares" (
    share_id uuid NOT NULL DEFAULT gen_random_uuid(),
    wallet_id uuid NOT NULL,
    enc_share bytea NOT NULL,
    status varchar(255) NOT NULL,
    reshared_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    aux jsonb,
    CONSTRAINT "2_key_shares_pkey" PRIMARY KEY (share_id),
    CONSTRAINT "2_key_shares_unique" UNIQUE (wallet_id)
);

CREATE TABLE IF NOT EXISTS "2_server_keypairs" (
    keypair_id uuid NOT NULL DEFAULT gen_random_uuid(),
    version integer GENERATED ALWAYS AS IDENTITY,
    public_key bytea NOT NULL,
    enc_private_key text NOT NULL,
    is_active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    rotated_at timestamptz,
    CONSTRAINT "2_server_keypairs_pkey" PRIMARY KEY (keypair_id),
    CONSTRAINT "2_server_keypairs_version_key" UNIQUE (version)
);

CREATE INDEX IF NOT EXISTS idx_2_server_keypairs_is_active
    ON "2_server_keypairs" (is_active) WHERE is_active = true;

CREATE TABLE IF NOT EXISTS "2_pg_dumps" (
    dump_id uuid NOT NULL DEFAULT gen_random_uuid(),
    status varchar(16) NOT NULL,
    dump_path varchar(255),
    meta jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT "2_pg_dumps_pkey" PRIMARY KEY (dump_id)
);

CREATE TABLE IF NOT EXISTS "2_commit_reveal_sessions" (
    session_id uuid NOT NULL,
    operation_type varchar(32) NOT NULL,
    client_ephemeral_pubkey bytea NOT NULL,
    id_token_hash varchar(64) NOT NULL,
    state varchar(16) NOT NULL DEFAULT 'COMMITTED',
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    CONSTRAINT "2_commit_reveal_sessions_pkey" PRIMARY KEY (session_id),
    CONSTRAINT "2_cr_sessions_client_pubkey_key" UNIQUE (client_ephemeral_pubkey),
    CONSTRAINT "2_cr_sessions_id_token_hash_key" UNIQUE (id_token_hash)
);
CREATE INDEX IF NOT EXISTS idx_2_cr_sessions_state ON "2_commit_reveal_sessions" (state);
CREATE INDEX IF NOT EXISTS idx_2_cr_sessions_expires_at ON "2_commit_reveal_sessions" (expires_at);

CREATE TABLE IF NOT EXISTS "2_commit_reveal_api_calls" (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    session_id uuid NOT NULL,
    api_name varchar(64) NOT NULL,
    signature bytea NOT NULL,
    called_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT "2_commit_reveal_api_calls_pkey" PRIMARY KEY (id),
    CONSTRAINT "2_cr_api_calls_signature_key" UNIQUE (signature),
    CONSTRAINT "2_cr_api_calls_session_api_key" UNIQUE (session_id, api_name)
);
CREATE INDEX IF NOT EXISTS idx_2_cr_api_calls_session_id ON "2_commit_reveal_api_calls" (session_id);
