"""The manifests in deploy/ are valid Kubernetes objects and grant the agent only what it uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gpufleet.agent.kinds import KINDS
from gpufleet.agent.settings import AgentSettings
from tests.support.agent_reports import CLUSTER_ID as CLUSTER

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
KUBERNETES_VERSION = "1.30"


def documents() -> list[dict[str, Any]]:
    found = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        found += [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
    return found


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in documents() if doc["kind"] == kind]


@pytest.mark.parametrize(
    "document", documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}"
)
def test_manifest_validates_against_the_kubernetes_schema(document: dict[str, Any]) -> None:
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_validation_catches_a_broken_manifest() -> None:
    broken = by_kind("Deployment")[0]
    broken = {**broken, "spec": {**broken["spec"], "replicas": "one"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_cluster_role_reads_every_watched_kind_and_nothing_more() -> None:
    (role,) = by_kind("ClusterRole")
    granted = set()
    for rule in role["rules"]:
        assert set(rule["verbs"]) == {"list", "watch"}, rule
        granted |= {
            (group, resource) for group in rule["apiGroups"] for resource in rule["resources"]
        }
    assert granted == {(kind.group, kind.plural) for kind in KINDS}


def test_configmap_access_is_one_named_object_read_only() -> None:
    (role,) = by_kind("Role")
    (rule,) = role["rules"]
    assert rule["verbs"] == ["get"]
    assert rule["resourceNames"] == ["gpufleet-departments"]


def test_deployment_runs_the_agent_with_known_settings_and_probes() -> None:
    (deployment,) = by_kind("Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["agent"]
    known = {f"GPUFLEET_AGENT_{name.upper()}" for name in AgentSettings.model_fields}
    names = {env["name"] for env in container["env"]}
    (secret,) = by_kind("Secret")
    names |= set(secret["stringData"])
    assert names <= known
    assert {"GPUFLEET_AGENT_CLUSTER_ID", "GPUFLEET_AGENT_SERVER"} <= names
    assert {"GPUFLEET_AGENT_CLIENT_ID", "GPUFLEET_AGENT_CLIENT_SECRET"} <= names
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "gpufleet-agent"
    configmap = by_kind("ConfigMap")[0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    namespace, name = env["GPUFLEET_AGENT_DEPARTMENT_CONFIGMAP"].split("/")
    assert (namespace, name) == (configmap["metadata"]["namespace"], configmap["metadata"]["name"])


def test_department_mapping_in_the_configmap_parses() -> None:
    from gpufleet.agent.organisation import OrganisationDirectory

    configmap = by_kind("ConfigMap")[0]
    directory = OrganisationDirectory.from_text(configmap["data"]["mapping.yaml"])
    assert directory.organisation("team-a", CLUSTER).department_name == "research"
