"""Quoted table names, written once. The reference's names start with a
digit, so they must always be double-quoted in SQL."""

USERS = '"2_users"'
WALLETS = '"2_wallets"'
KEY_SHARES = '"2_key_shares"'
SERVER_KEYPAIRS = '"2_server_keypairs"'
PG_DUMPS = '"2_pg_dumps"'
JOBS = "ksn_jobs"
HEARTBEATS = "ksn_node_heartbeats"  # per node (0004); ksn_heartbeats is no longer read
BACKUP_CHECKS = "ksn_backup_checks"
BACKUP_DRILLS = "ksn_backup_drills"
BINDING_MISMATCHES = "ksn_binding_mismatches"
