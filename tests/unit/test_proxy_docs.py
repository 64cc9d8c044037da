"""The operator guide quotes the shipped nginx site file word for word, so
what operators copy is what tests/node/test_proxy_*.py run."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_guide_quotes_the_site_file_exactly():
    site = (ROOT / "deploy" / "nginx" / "ksnode.conf").read_text()
    guide = (ROOT / "docs" / "operator.md").read_text()
    assert "```nginx\n" + site + "```" in guide
