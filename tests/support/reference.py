"""Facts of the reference node's wire contract that several tests check
(spec §5.1), written here once and independently of the code under test."""

from __future__ import annotations

# GET /status: exactly these seven fields, in this order.
STATUS_FIELDS = (
    "is_db_connected",
    "is_db_backup_checked",
    "latest_backup_time",
    "ks_node_public_key",
    "launch_time",
    "git_hash",
    "version",
)
