"""Where the agent's Kubernetes credentials come from, in kubectl's order.

``--kubeconfig`` when given; else the service account when running in a pod; else
``$KUBECONFIG`` (a list of files, merged as kubectl does); else ``~/.kube/config``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from gpufleet.agent.failures import NoKubernetesConfig

SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


def kubeconfig_path(
    given: str | None,
    environ: Mapping[str, str] = os.environ,
    home: Path | None = None,
    token_file: Path = SERVICE_ACCOUNT_TOKEN,
) -> str | None:
    """The kubeconfig file(s) to read, or None for the in-cluster service account."""
    if given:
        return given
    if environ.get("KUBERNETES_SERVICE_HOST") and token_file.exists():
        return None
    if environ.get("KUBECONFIG"):
        return environ["KUBECONFIG"]
    default = (home or Path.home()) / ".kube" / "config"
    if default.is_file():
        return str(default)
    raise NoKubernetesConfig(
        "no Kubernetes configuration: not running in a cluster, no --kubeconfig, "
        f"$KUBECONFIG unset and {default} missing"
    )


def load_configuration(path: str | None, context: str | None) -> client.Configuration:
    """The client configuration from ``path`` (None: in-cluster); refusals are one line."""
    configuration = client.Configuration()
    try:
        if path is None:
            config.load_incluster_config(client_configuration=configuration)
        else:
            config.load_kube_config(
                config_file=path, context=context, client_configuration=configuration
            )
    except (ConfigException, OSError, ValueError) as exc:
        where = "the in-cluster configuration" if path is None else f"kubeconfig {path}"
        reason = " ".join(str(exc).split())
        raise NoKubernetesConfig(f"cannot use {where}: {reason}") from None
    return configuration
