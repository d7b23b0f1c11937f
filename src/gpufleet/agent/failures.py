"""Why the agent cannot start, in terms an operator can act on (each has its exit code)."""

from __future__ import annotations


class NoKubernetesConfig(Exception):
    """Neither in a cluster nor given a kubeconfig that can be read."""


class AccessKeyRefused(Exception):
    """The gpufleet server refused the agent's access key, or its rule for the cluster."""
