"""/metrics counters of commit-reveal: commits and reveals by outcome.

The outcome is "ok" for a 2xx, else the answer's error code (a bounded set,
web/errors.py), so the series stay few. Requests without commit-reveal that
were refused because their token is committed here count as kind "bare".
"""

from __future__ import annotations

from flask import Response
from prometheus_client import CollectorRegistry, Counter


class CommitRevealMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.calls = Counter(
            "ksnode_commit_reveal",
            "commit-reveal calls: kind commit, reveal or bare (refused without cr_*), by outcome",
            ["kind", "outcome"],
            registry=registry,
        )

    def observe(self, cr: dict[str, str] | None, response: Response) -> None:
        if not cr or "kind" not in cr:
            return
        outcome = "ok"
        if response.status_code >= 400:
            answer = response.get_json(silent=True)
            code = answer.get("code") if isinstance(answer, dict) else None
            outcome = code if isinstance(code, str) else str(response.status_code)
        self.calls.labels(cr["kind"], outcome[:40]).inc()
