"""The shipped alert rules: Prometheus accepts them, they name only series gpufleet exports,
and two of them fire on the input they are written for (``promtool test rules``)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gpufleet.agent.health import AgentMetrics

RULES = Path(__file__).resolve().parent.parent / "deploy" / "prometheus" / "gpufleet.rules.yml"
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is required (Debian package 'prometheus')")
    return found


def exported_names(text: str) -> set[str]:
    names = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
    return names


def test_promtool_accepts_the_rules(promtool):
    result = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_use_only_series_gpufleet_exports(client):
    exported = exported_names(client.get("/metrics").text)
    exported |= exported_names(generate_latest(AgentMetrics().registry).decode())
    used = set(re.findall(r"\bgpufleet_[a-z_]+", RULES.read_text()))
    assert used and used <= exported, sorted(used - exported)


UNIT_TESTS = """
rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'gpufleet_http_requests_total{{job="gpufleet",route="/x",status="200"}}'
        values: '0+90x30'
      - series: 'gpufleet_http_requests_total{{job="gpufleet",route="/x",status="500"}}'
        values: '0+10x30'
      - series: 'gpufleet_db_pool_connections{{job="gpufleet",instance="a",state="in_use"}}'
        values: '14x30'
      - series: 'gpufleet_db_pool_max_connections{{job="gpufleet",instance="a"}}'
        values: '15x30'
      - series: 'gpufleet_db_pool_connections{{job="gpufleet",instance="b",state="in_use"}}'
        values: '2x30'
      - series: 'gpufleet_db_pool_max_connections{{job="gpufleet",instance="b"}}'
        values: '15x30'
    alert_rule_test:
      - eval_time: 5m
        alertname: GpufleetHighErrorRate
        exp_alerts: []
      - eval_time: 20m
        alertname: GpufleetHighErrorRate
        exp_alerts:
          - exp_labels: {{severity: critical, job: gpufleet}}
            exp_annotations:
              summary: "More than 5% of gpufleet requests fail with a 5xx status"
      - eval_time: 25m
        alertname: GpufleetDatabasePoolSaturated
        exp_alerts:
          - exp_labels: {{severity: warning, job: gpufleet, instance: a}}
            exp_annotations:
              summary: "a uses over 80% of its database connections"
"""


def test_alerts_fire_on_the_input_they_are_for(promtool, tmp_path):
    tests = tmp_path / "rules_test.yml"
    tests.write_text(UNIT_TESTS.format(rules=RULES))
    result = subprocess.run(
        [promtool, "test", "rules", str(tests)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
