"""Encryption at rest: sealed formats and the secret files."""
