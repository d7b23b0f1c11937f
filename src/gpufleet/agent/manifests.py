"""The Kubernetes objects that connect an agent to its server after ``clusters register``.

The agent Deployment in ``deploy/`` reads every setting that differs between clusters from
the Secret ``gpufleet-agent`` (``envFrom``), so this Secret is all a new cluster needs. The
patch stamps the cluster id on the agent's pod template: a new registration rolls the agent
onto the new Secret, which ``envFrom`` alone would not.
"""

from __future__ import annotations

from typing import Any

AGENT_SECRET = "gpufleet-agent"
AGENT_DEPLOYMENT = "gpufleet-agent"
DEFAULT_NAMESPACE = "gpufleet-system"
CLUSTER_ANNOTATION = "gpufleet.io/cluster-id"


def agent_secret(
    *,
    cluster_id: str,
    cluster_name: str,
    server_url: str,
    client_id: str,
    client_secret: str,
    namespace: str = DEFAULT_NAMESPACE,
) -> dict[str, Any]:
    """The Secret the agent Deployment takes its cluster, server and credentials from."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": AGENT_SECRET,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": "gpufleet-agent"},
        },
        "type": "Opaque",
        "stringData": {
            "GPUFLEET_AGENT_CLUSTER_ID": cluster_id,
            "GPUFLEET_AGENT_CLUSTER_NAME": cluster_name,
            "GPUFLEET_AGENT_SERVER": server_url,
            "GPUFLEET_AGENT_CLIENT_ID": client_id,
            "GPUFLEET_AGENT_CLIENT_SECRET": client_secret,
        },
    }


def agent_patch(cluster_id: str, namespace: str = DEFAULT_NAMESPACE) -> dict[str, Any]:
    """A strategic-merge patch that restarts the agent when its registration changes."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": AGENT_DEPLOYMENT, "namespace": namespace},
        "spec": {"template": {"metadata": {"annotations": {CLUSTER_ANNOTATION: cluster_id}}}},
    }


def kustomization(base: str | None) -> dict[str, Any]:
    """A kustomization adding the Secret (and, on top of ``base``, the patch)."""
    document: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["agent-secret.yaml"],
    }
    if base is not None:
        document["resources"] = [base, "agent-secret.yaml"]
        document["patches"] = [{"path": "agent-patch.yaml"}]
    return document
