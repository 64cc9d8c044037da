"""The operator token the test nodes are configured with (OPS_TOKEN), and the
header a monitor sends it in: /health and /metrics show their details only
with it (services/api/ops/token.py)."""

from __future__ import annotations

OPS_TOKEN = "test-ops-token-0123456789"
OPS_HEADERS = {"Authorization": f"Bearer {OPS_TOKEN}"}
