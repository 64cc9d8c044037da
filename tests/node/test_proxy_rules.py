"""The shipped alert rules (deploy/prometheus/) load in Prometheus's own
checker and pass their unit tests, and neither they nor the Grafana
dashboard (deploy/grafana/) name a metric, a health reason or a label that
a real node's /metrics does not export."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import requests

from tests.conftest import create_database
from tests.support.nginx import REQUIRE, ROOT
from tests.support.node_process import NodeProcess, database_env
from tests.support.ops import OPS_HEADERS
from tests.support.requirements import unavailable

PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "ksnode-rules.yml"
RULE_TESTS = PROMETHEUS / "ksnode-rules.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "ksnode-dashboard.json"
METRIC = re.compile(r"\b(ksnode_[a-z0-9_]+)")
# Labels Prometheus adds to every scraped series, and histogram buckets'.
SCRAPE_LABELS = {"instance", "job", "le"}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        unavailable("no promtool on this machine (apt-get install prometheus)", REQUIRE)
    return found


def run_promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [promtool(), *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120
    )


def test_promtool_checks_the_rules():
    result = run_promtool("check", "rules", RULES.name)
    print("\n" + result.stdout + result.stderr)
    assert result.returncode == 0
    assert "SUCCESS: 11 rules found" in result.stdout


def test_promtool_unit_tests_of_the_rules_pass():
    result = run_promtool("test", "rules", RULE_TESTS.name)
    print("\n" + result.stdout + result.stderr)
    assert result.returncode == 0
    assert "SUCCESS" in result.stdout


@pytest.fixture(scope="module")
def exported(pg_server, tmp_path_factory):
    """(metric names, label names, health reasons) of a real node's scrape."""
    db_env = database_env(pg_server, create_database(pg_server))
    node = NodeProcess.build(tmp_path_factory.mktemp("rules") / "var", db_env).start()
    try:
        requests.get(node.url + "/status", timeout=10)  # a request series to show
        response = requests.get(node.url + "/metrics", headers=OPS_HEADERS, timeout=30)
    finally:
        assert node.stop() == 0
    assert response.status_code == 200
    names, labels, reasons = set(), set(), set()
    for line in response.text.splitlines():
        if line.startswith("# TYPE "):
            names.add(line.split()[2])  # a family with no sample yet still counts
            continue
        if line.startswith("#") or not line.strip():
            continue
        match = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?", line)
        assert match, line
        names.add(match.group(1))
        for label, value in re.findall(r'([a-zA-Z_]+)="([^"]*)"', match.group(3) or ""):
            labels.add(label)
            if match.group(1) == "ksnode_health_reason" and label == "reason":
                reasons.add(value)
    return names, labels, reasons


def dashboard_expressions() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    expressions = [board["templating"]["list"][0]["query"]]
    for panel in board["panels"]:
        assert panel["targets"], f"panel {panel['title']!r} shows nothing"
        expressions += [target["expr"] for target in panel["targets"]]
    return expressions


def test_the_rules_and_the_dashboard_name_only_exported_metrics(exported):
    names, _, _ = exported
    rules = RULES.read_text()
    used = {
        "rules": set(METRIC.findall(rules)),
        "dashboard": set(METRIC.findall("\n".join(dashboard_expressions()))),
    }
    for where, metrics in used.items():
        assert metrics, where
        assert metrics <= names, f"{where} names metrics the node does not export: " + str(
            sorted(metrics - names)
        )


def test_the_rules_name_only_exported_health_reasons(exported):
    _, _, reasons = exported
    named = set()
    for choice in re.findall(r'reason=~?"([^"]+)"', RULES.read_text()):
        named |= set(choice.split("|"))
    assert named and named <= reasons, sorted(named - reasons)


def test_the_dashboard_groups_and_labels_by_exported_labels(exported):
    _, labels, _ = exported
    board = json.loads(DASHBOARD.read_text())
    used = set()
    for expression in dashboard_expressions():
        for group in re.findall(r"by \(([^)]*)\)", expression):
            used |= {name.strip() for name in group.split(",")}
    for panel in board["panels"]:
        for target in panel["targets"]:
            used |= set(re.findall(r"\{\{(\w+)\}\}", target["legendFormat"]))
    assert used <= labels | SCRAPE_LABELS, sorted(used - labels - SCRAPE_LABELS)
