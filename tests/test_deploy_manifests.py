"""The kustomize overlays in deploy/ render to valid Kubernetes objects that fit together.

Every overlay is rendered with ``kubectl kustomize`` and every object is validated against the
oldest and the newest Kubernetes schema kubernetes-validate knows; the agent's RBAC grants
exactly the kinds it watches, read-only.
"""

from __future__ import annotations

import functools
import os
from importlib.metadata import version
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gpufleet.agent.k8s_events import EVENT_KIND
from gpufleet.agent.kinds import INVENTORY_KINDS, KINDS
from gpufleet.agent.manifests import AGENT_SECRET
from gpufleet.agent.settings import AgentSettings
from gpufleet.settings import Settings
from tests.support.agent_reports import CLUSTER_ID as CLUSTER
from tests.support.manifests import DEPLOY, KUBERNETES_VERSIONS, kustomize, validate_all

OVERLAYS = ("trial", "production", "agent")


@functools.cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    return tuple(kustomize(DEPLOY / "overlays" / overlay))


def with_ingress(tmp_path: Path) -> list[dict[str, Any]]:
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        # Relative: kustomize refuses absolute paths to other kustomizations.
        "resources": [os.path.relpath(DEPLOY / "overlays" / "production", tmp_path)],
        "components": [os.path.relpath(DEPLOY / "components" / "ingress", tmp_path)],
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return kustomize(tmp_path)


def of_kind(overlay: str, kind: str) -> list[dict[str, Any]]:
    return [doc for doc in rendered(overlay) if doc["kind"] == kind]


def one(overlay: str, kind: str, name: str) -> dict[str, Any]:
    (found,) = [doc for doc in of_kind(overlay, kind) if doc["metadata"]["name"] == name]
    return found


def container(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [
        c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == name
    ]
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_objects_valid_in_the_oldest_and_newest_kubernetes(overlay: str) -> None:
    documents = rendered(overlay)
    assert documents[0]["kind"] == "Namespace", "the namespace must be applied first"
    namespace = documents[0]["metadata"]["name"]
    for document in documents[1:]:
        if document["kind"] not in {"ClusterRole", "ClusterRoleBinding"}:
            assert document["metadata"]["namespace"] == namespace, document["metadata"]
    validate_all(documents)


def test_production_with_the_ingress_component_is_valid(tmp_path: Path) -> None:
    documents = with_ingress(tmp_path)
    (ingress,) = [doc for doc in documents if doc["kind"] == "Ingress"]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    service = one("production", "Service", backend["name"])
    assert backend["port"]["name"] in {port["name"] for port in service["spec"]["ports"]}
    validate_all(documents)


def test_validation_catches_a_broken_manifest() -> None:
    broken = one("trial", "Deployment", "gpufleet-server")
    broken = {**broken, "spec": {**broken["spec"], "replicas": "one"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_cluster_role_reads_every_watched_kind_and_nothing_more(overlay: str) -> None:
    (role,) = of_kind(overlay, "ClusterRole")
    granted = set()
    for rule in role["rules"]:
        assert set(rule["verbs"]) == {"list", "watch"}, rule
        granted |= {
            (group, resource) for group in rule["apiGroups"] for resource in rule["resources"]
        }
    watched = (*KINDS, EVENT_KIND, *INVENTORY_KINDS)
    assert granted == {(kind.group, kind.plural) for kind in watched}
    (binding,) = of_kind(overlay, "ClusterRoleBinding")
    (subject,) = binding["subjects"]
    account = one(overlay, "ServiceAccount", subject["name"])
    assert subject["namespace"] == account["metadata"]["namespace"]


def test_configmap_access_is_one_named_object_read_only() -> None:
    (role,) = of_kind("trial", "Role")
    (rule,) = role["rules"]
    assert rule["verbs"] == ["get"]
    assert rule["resourceNames"] == ["gpufleet-departments", "gpufleet-quotas"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_agent_takes_its_cluster_and_credentials_from_the_registration_secret(
    overlay: str,
) -> None:
    deployment = one(overlay, "Deployment", "gpufleet-agent")
    agent = container(deployment, "agent")
    assert agent["args"] == ["agent"]
    assert agent["envFrom"] == [{"secretRef": {"name": AGENT_SECRET}}]
    known = {f"GPUFLEET_AGENT_{name.upper()}" for name in AgentSettings.model_fields}
    assert {env["name"] for env in agent["env"]} <= known
    assert agent["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert deployment["spec"]["replicas"] == 1
    configmap = one(overlay, "ConfigMap", "gpufleet-departments")
    env = {e["name"]: e.get("value") for e in agent["env"]}
    namespace, name = env["GPUFLEET_AGENT_DEPARTMENT_CONFIGMAP"].split("/")
    assert (namespace, name) == (configmap["metadata"]["namespace"], name)


def test_department_mapping_in_the_configmap_parses() -> None:
    from gpufleet.agent.organisation import OrganisationDirectory

    configmap = one("trial", "ConfigMap", "gpufleet-departments")
    directory = OrganisationDirectory.from_text(configmap["data"]["mapping.yaml"])
    assert directory.organisation("team-a", CLUSTER).department_name == "research"


def server_env(overlay: str) -> dict[str, dict[str, Any]]:
    server = container(one(overlay, "Deployment", "gpufleet-server"), "server")
    return {env["name"]: env for env in server["env"]}


@pytest.mark.parametrize("overlay", ["trial", "production"])
def test_server_runs_non_root_on_a_read_only_root_with_probes(overlay: str) -> None:
    deployment = one(overlay, "Deployment", "gpufleet-server")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    for each in pod["containers"] + pod.get("initContainers", []):
        assert each["securityContext"]["readOnlyRootFilesystem"] is True
        assert each["securityContext"]["allowPrivilegeEscalation"] is False
        assert each["resources"]["requests"]["cpu"]
    server = container(deployment, "server")
    assert server["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert server["livenessProbe"]["httpGet"]["path"] == "/healthz"
    known = {f"GPUFLEET_{name.upper()}" for name in Settings.model_fields}
    assert set(server_env(overlay)) <= known
    service = one(overlay, "Service", "gpufleet")
    assert service["spec"]["selector"].items() <= pod_labels(deployment).items()


def pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    return deployment["spec"]["template"]["metadata"]["labels"]


def test_trial_is_one_sqlite_replica_on_a_claim_without_the_demo() -> None:
    deployment = one("trial", "Deployment", "gpufleet-server")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    claim = volumes["data"]["persistentVolumeClaim"]["claimName"]
    one("trial", "PersistentVolumeClaim", claim)
    server = container(deployment, "server")
    assert "/data" in {mount["mountPath"] for mount in server["volumeMounts"]}
    assert "--demo" not in server["args"]
    assert "GPUFLEET_DATABASE_URL" not in server_env("trial")  # the image's /data SQLite file


def test_production_runs_replicas_on_postgresql_from_a_secret() -> None:
    deployment = one("production", "Deployment", "gpufleet-server")
    assert deployment["spec"]["replicas"] >= 2
    url = server_env("production")["GPUFLEET_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    (upgrade,) = deployment["spec"]["template"]["spec"]["initContainers"]
    assert upgrade["args"] == ["db", "upgrade"]
    (upgrade_url,) = [e for e in upgrade["env"] if e["name"] == "GPUFLEET_DATABASE_URL"]
    assert upgrade_url["valueFrom"]["secretKeyRef"] == url
    (budget,) = of_kind("production", "PodDisruptionBudget")
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels(deployment).items()
    assert budget["spec"]["minAvailable"] < deployment["spec"]["replicas"]


def test_service_monitor_scrapes_the_server_service() -> None:
    (monitor,) = of_kind("production", "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    service = one("production", "Service", "gpufleet")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    ports = {port["name"] for port in service["spec"]["ports"]}
    assert {endpoint["port"] for endpoint in monitor["spec"]["endpoints"]} <= ports


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_runs_the_one_named_image(overlay: str) -> None:
    images = set()
    for deployment in of_kind(overlay, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        images |= {c["image"] for c in pod["containers"] + pod.get("initContainers", [])}
    # The release's own tag, so an upgrade of the package and of the manifests go together.
    assert images == {f"localhost/gpufleet:{version('gpufleet')}"}
