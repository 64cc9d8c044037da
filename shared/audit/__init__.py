"""The audit trail: records, writing, verifying."""
