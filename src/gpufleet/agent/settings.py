"""Settings of the cluster agent: every option a ``GPUFLEET_AGENT_*`` variable and a flag."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gpufleet.agent.organisation import DEFAULT_PROJECT


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GPUFLEET_AGENT_", extra="ignore")

    cluster_id: str = Field(description="UUID of the cluster the agent reports for.")
    server: str = Field(description="Base URL of the gpufleet server (http[s]://host:port).")
    client_id: str = Field(description="Client id of the agent's access key.")
    client_secret: SecretStr = Field(description="Secret of the agent's access key.")
    kubeconfig: str | None = Field(
        None,
        description="Kubeconfig file (unset: in-cluster, else $KUBECONFIG, else ~/.kube/config).",
    )
    context: str | None = Field(None, description="Kubeconfig context (its current one if unset).")
    cluster_name: str | None = Field(None, description="Display name of the cluster.")
    tenant_id: int = Field(1, ge=0, le=2**31 - 1, description="Tenant id put on every record.")
    department_mapping: str | None = Field(
        None, description="YAML/JSON file mapping projects to departments."
    )
    department_configmap: str | None = Field(
        None, description="namespace/name of a ConfigMap holding the mapping (key mapping.yaml)."
    )
    default_project: str | None = Field(
        None,
        description=f"Project of unattributed workloads (mapping default, else {DEFAULT_PROJECT}).",
    )
    node_pool_label: str | None = Field(
        None,
        description="Node label naming a node's pool (before run.ai/node-pool, then KAI's).",
        max_length=253,
    )
    quota_file: str | None = Field(
        None, description="YAML file of quotas, read when the cluster has no scheduler queues."
    )
    quota_configmap: str | None = Field(
        None, description="namespace/name of a ConfigMap holding the quota file (key quotas.yaml)."
    )
    kinds: str | None = Field(
        None, description="Comma-separated kinds to watch (Kind or Kind.group); all when unset."
    )
    full_sync_seconds: float = Field(
        300.0, gt=0, le=86_400, description="Period of the full sync that repairs drift."
    )
    push_interval_seconds: float = Field(
        0.5, gt=0, le=300, description="Longest time a change waits before it is pushed."
    )
    push_batch_size: int = Field(500, ge=1, le=100_000, description="Workloads per request.")
    metrics_interval_seconds: float = Field(
        30.0, gt=0, le=3600, description="Period of the metrics samples pushed to the server."
    )
    push_metrics: bool = Field(
        True, description="Push metrics derived from Kubernetes objects (off with Prometheus)."
    )
    health_host: str = Field("0.0.0.0", description="Address of the health and metrics server.")
    health_port: int = Field(
        8081, ge=0, le=65535, description="Port of /healthz and /metrics (0 picks a free one)."
    )
    watch_timeout_seconds: int = Field(
        300, ge=1, le=3600, description="Server-side timeout of one watch request."
    )
    crd_retry_seconds: float = Field(
        30.0, gt=0, le=3600, description="How often a kind whose CRD is missing is looked for."
    )
    backoff_max_seconds: float = Field(
        30.0, gt=0, le=3600, description="Longest wait between reconnects and push retries."
    )
    request_timeout_seconds: float = Field(
        30.0, gt=0, le=600, description="Timeout of one request to the gpufleet server."
    )
    log_level: str = Field("info", description="Log level (debug, info, warning).")

    @field_validator("cluster_id")
    @classmethod
    def _uuid(cls, value: str) -> str:
        try:
            return str(UUID(value))
        except ValueError:
            raise ValueError("cluster_id must be a UUID") from None

    @field_validator("server")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("server must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("department_configmap", "quota_configmap")
    @classmethod
    def _configmap(cls, value: str | None) -> str | None:
        if value is not None and value.count("/") != 1:
            raise ValueError("a ConfigMap must be given as namespace/name")
        return value
