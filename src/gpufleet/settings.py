"""One settings object for every gpufleet process.

Each option is a ``GPUFLEET_*`` environment variable and a CLI flag of the same name
(``--database-url`` for ``GPUFLEET_DATABASE_URL``). Nothing reads the environment at import
time: ``Settings()`` is built by the CLI or by tests and passed into the app factory.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def parse_header_list(text: str | None) -> dict[str, str]:
    """Headers from a JSON object or ``Name=value,Name=value``; raises ValueError when malformed."""
    if not text or not text.strip():
        return {}
    if text.lstrip().startswith("{"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"headers are not valid JSON: {exc.msg}") from None
        if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
            raise ValueError("headers JSON must be an object of strings")
        pairs = list(parsed.items())
    else:
        pairs = []
        for item in text.split(","):
            name, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"header {item.strip()[:64]!r} is not Name=value")
            pairs.append((name.strip(), value.strip()))
    for name, value in pairs:
        if not _HEADER_NAME.fullmatch(name) or "\n" in value or "\r" in value:
            raise ValueError(f"invalid header {name[:64]!r}")
    return dict(pairs)


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
# The audit log's names for gpufleet's own changes (auth/administration.py): an administrator
# with one as its client id would read there as gpufleet itself.
SYSTEM_ACTOR_NAMES = frozenset({"bootstrap", "cli", "demo"})

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[IpNetwork, ...]:
    """Addresses and networks from ``10.0.0.1, 10.1.0.0/16, ::1``; raises ValueError."""
    networks = []
    for item in text.split(","):
        if item.strip():
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                raise ValueError(f"{item.strip()[:64]!r} is not an address or network") from None
    return tuple(networks)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GPUFLEET_", extra="ignore")

    database_url: str = Field(
        "sqlite:///./gpufleet.db",
        description="SQLAlchemy URL of the workload store (SQLite file or postgresql+psycopg://).",
    )
    host: str = Field("127.0.0.1", description="Address the API server listens on.")
    port: int = Field(8080, ge=0, le=65535, description="Port the API server listens on.")
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Server processes sharing the port; periodic tasks run in one at a time.",
    )
    admin_client_id: str | None = Field(
        None,
        description="Client id of the bootstrap administrator (generated when unset); not "
        "bootstrap, cli or demo, the audit log's names for gpufleet's own changes.",
    )
    admin_client_secret: SecretStr | None = Field(
        None, description="Secret of the bootstrap administrator (generated when unset)."
    )
    token_ttl_seconds: int = Field(
        3600, ge=60, le=7 * 24 * 3600, description="Lifetime of issued access tokens."
    )
    db_pool_size: int = Field(5, ge=1, le=200, description="PostgreSQL connection pool size.")
    db_max_overflow: int = Field(
        10, ge=0, le=200, description="Connections allowed above the pool size."
    )
    db_pool_timeout_seconds: float = Field(
        5.0, gt=0, le=300, description="How long a request waits for a pooled connection."
    )
    db_connect_timeout_seconds: int = Field(
        5, ge=1, le=300, description="How long opening a database connection may take."
    )
    ingest_max_batch_items: int = Field(
        5000, ge=1, le=100_000, description="Most workloads one ingest request may carry."
    )
    ingest_max_body_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024,
        le=1024 * 1024 * 1024,
        description="Largest ingest request body, in bytes.",
    )
    max_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        le=1024 * 1024 * 1024,
        description="Largest request body outside ingest, in bytes (per request).",
    )
    body_read_timeout_seconds: float = Field(
        30.0, gt=0, le=3600, description="How long a client may take to send a whole request body."
    )
    head_read_timeout_seconds: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="How long a connection may take to send a request's headers.",
    )
    db_statement_timeout_seconds: float = Field(
        30.0, ge=0, le=86_400, description="Longest one SQL statement may run (0 disables)."
    )
    caller_max_concurrent_reads: int = Field(
        4,
        ge=1,
        le=1000,
        description="Expensive reads one caller may run at once per replica; more wait.",
    )
    caller_read_queue_seconds: float = Field(
        5.0,
        ge=0,
        le=300,
        description="How long a caller's expensive read waits for a slot before a 429.",
    )
    sqlite_synchronous: Literal["EXTRA", "FULL", "NORMAL"] = Field(
        "FULL",
        description="SQLite synchronous mode: FULL (or EXTRA) makes every answered write "
        "durable, NORMAL may lose the last ones on power loss.",
    )
    log_level: str = Field("info", description="Log level of the server (debug, info, warning).")
    log_format: Literal["text", "json"] = Field(
        "text", description="Log lines as plain text or as one JSON object a line (json)."
    )
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Serve /metrics on this port (same host) instead of the main port.",
    )
    shutdown_drain_seconds: float = Field(
        0.0,
        ge=0,
        le=600,
        description="On SIGTERM, how long /readyz answers 503 before new connections are refused.",
    )
    shutdown_timeout_seconds: float = Field(
        30.0,
        ge=0,
        le=3600,
        description="On SIGTERM, how long requests in flight may take to finish.",
    )
    signing_key_refresh_seconds: float = Field(
        30.0, ge=0, le=3600, description="How often each replica re-reads the signing keys."
    )
    refresh_token_ttl_seconds: int = Field(
        24 * 3600, ge=60, le=90 * 24 * 3600, description="Lifetime of issued refresh tokens."
    )
    session_max_seconds: int = Field(
        12 * 3600,
        ge=300,
        le=90 * 24 * 3600,
        description="Absolute lifetime of a refresh-token session; refreshing never extends it.",
    )
    token_failure_limit: int = Field(
        10,
        ge=1,
        le=10_000,
        description="Failed token requests allowed per client id and address, or per presented "
        "token.",
    )
    token_failure_address_limit: int = Field(
        100,
        ge=1,
        le=1_000_000,
        description="Failed token requests allowed per source address, whatever they present.",
    )
    token_failure_window_seconds: int = Field(
        300, ge=1, le=86_400, description="Window over which failed token requests are counted."
    )
    trusted_proxies: str | None = Field(
        None,
        description="Comma-separated addresses or networks of proxies whose X-Forwarded-For "
        "is believed (none by default).",
    )
    oidc_issuer: str | None = Field(None, description="Issuer (iss) of an external OIDC provider.")
    oidc_audience: str | None = Field(None, description="Audience (aud) its tokens must carry.")
    oidc_jwks_url: str | None = Field(None, description="URL of the provider's JSON Web Key Set.")
    oidc_username_claim: str = Field(
        "preferred_username", description="Claim holding the user name (falls back to sub)."
    )
    oidc_groups_claim: str = Field("groups", description="Claim holding the user's groups.")
    oidc_algorithms: str = Field(
        "RS256,ES256", description="Comma-separated signature algorithms accepted from it."
    )

    metrics_retention_days: int = Field(
        14, ge=1, le=3650, description="Days of embedded metric samples kept before deletion."
    )
    metrics_max_range_days: int = Field(
        30, ge=1, le=3650, description="Longest time range one metrics request may ask for."
    )
    idle_gpu_threshold_percent: float = Field(
        1.0, ge=0, le=100, description="GPU utilisation at or below which a GPU counts as idle."
    )
    idle_gpu_window_seconds: int = Field(
        300, ge=60, le=86_400, description="How long a GPU must stay idle to count as idle."
    )
    idle_gpu_interval_seconds: int = Field(
        60, ge=0, le=86_400, description="How often idle GPUs are recomputed (0 disables)."
    )
    metrics_interval_seconds: int = Field(
        60,
        ge=0,
        le=86_400,
        description="How often allocation, capacity and quota are sampled into the metrics "
        "store (0 disables).",
    )
    cluster_disconnected_after_seconds: int = Field(
        600,
        ge=10,
        le=7 * 86_400,
        description="Silence after which a cluster whose agent reported before is Disconnected.",
    )
    ingest_max_metric_samples: int = Field(
        50_000, ge=1, le=1_000_000, description="Most samples one metrics ingest request may carry."
    )
    metrics_retention_interval_seconds: int = Field(
        3600, ge=0, le=7 * 86_400, description="How often old samples are deleted (0 disables)."
    )
    events_retention_days: int = Field(
        14, ge=1, le=3650, description="Days a workload's Kubernetes events are kept."
    )
    events_retention_interval_seconds: int = Field(
        3600, ge=0, le=7 * 86_400, description="How often old events are deleted (0 disables)."
    )
    usage_retention_days: int = Field(
        730, ge=1, le=3650, description="Days of hourly usage rollups kept (the usage ledger)."
    )
    usage_interval_seconds: int = Field(
        60,
        ge=0,
        le=3600,
        description="How often the usage ledger's live part (running and pending workloads) "
        "is brought up to now (0 disables).",
    )
    usage_utilisation_interval_seconds: int = Field(
        300,
        ge=0,
        le=86_400,
        description="With Prometheus: how often recent hours' GPU utilisation is pulled into "
        "the usage ledger (0 disables).",
    )
    report_interval_seconds: int = Field(
        5, ge=0, le=3600, description="How often pending reports are looked for (0 disables)."
    )

    prometheus_url: str | None = Field(
        None,
        description="Base URL of a Prometheus-compatible API; when set, workload metrics come "
        "from it instead of the embedded store.",
    )
    prometheus_bearer_token: SecretStr | None = Field(
        None, description="Bearer token sent to Prometheus."
    )
    prometheus_username: str | None = Field(None, description="Basic-auth user for Prometheus.")
    prometheus_password: SecretStr | None = Field(
        None, description="Basic-auth password for Prometheus."
    )
    prometheus_headers: str | None = Field(
        None,
        description="Extra headers sent to Prometheus (e.g. X-Scope-OrgID), as a JSON object "
        "or Name=value,Name=value.",
    )
    prometheus_verify_tls: bool = Field(True, description="Verify Prometheus' TLS certificate.")
    prometheus_ca_file: str | None = Field(
        None, description="CA bundle (PEM) that signs Prometheus' certificate."
    )
    prometheus_timeout_seconds: float = Field(
        10.0, gt=0, le=600, description="How long one Prometheus query may take."
    )
    prometheus_scrape_interval_seconds: float = Field(
        30.0, gt=0, le=3600, description="Scrape interval of the exporters; rate windows span 4."
    )
    prometheus_namespace_label: str = Field(
        "namespace", description="Namespace label of kube-state-metrics, cAdvisor, NIM series."
    )
    prometheus_pod_label: str = Field(
        "pod", description="Pod label of kube-state-metrics, cAdvisor and NIM series."
    )
    prometheus_gpu_namespace_label: str = Field(
        "namespace", description="Workload namespace label of DCGM series (exported_namespace)."
    )
    prometheus_gpu_pod_label: str = Field(
        "pod", description="Workload pod label of DCGM series (exported_pod behind a proxy)."
    )
    prometheus_gpu_label: str = Field("gpu", description="GPU index label of DCGM series.")
    prometheus_node_label: str = Field(
        "node", description="Node name label of kube-state-metrics node and cAdvisor series."
    )
    prometheus_gpu_node_label: str = Field(
        "Hostname", description="Node name label of DCGM series."
    )
    prometheus_inference_metrics: Literal["nim", "vllm", "both"] = Field(
        "both",
        description="Inference metric names to read: nim (unprefixed), vllm (vllm: prefix), "
        "or both (the NIM names win where a workload exports both).",
    )

    @field_validator("database_url")
    @classmethod
    def _known_dialect(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("database_url must be a sqlite:// or postgresql+psycopg:// URL")
        return value

    @field_validator("admin_client_id")
    @classmethod
    def _not_a_system_actor(cls, value: str | None) -> str | None:
        if value in SYSTEM_ACTOR_NAMES:
            raise ValueError(f"{value!r} names gpufleet's own changes in the audit log")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.lower() not in _LOG_LEVELS:
            raise ValueError(f"log_level must be one of {', '.join(_LOG_LEVELS)}")
        return value.lower()

    @field_validator(
        "prometheus_namespace_label",
        "prometheus_pod_label",
        "prometheus_gpu_namespace_label",
        "prometheus_gpu_pod_label",
        "prometheus_gpu_label",
        "prometheus_node_label",
        "prometheus_gpu_node_label",
    )
    @classmethod
    def _label_name(cls, value: str) -> str:
        # Label names are written into PromQL, so only valid Prometheus label names pass.
        if not _LABEL_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not a Prometheus label name")
        return value

    @field_validator("prometheus_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("prometheus_url must be an http:// or https:// URL")
        return value

    @field_validator("prometheus_headers")
    @classmethod
    def _headers_parse(cls, value: str | None) -> str | None:
        parse_header_list(value)
        return value

    @model_validator(mode="after")
    def _prometheus_auth(self) -> Settings:
        if (self.prometheus_username is None) != (self.prometheus_password is None):
            raise ValueError("prometheus_username and prometheus_password must be set together")
        if self.prometheus_username is not None and self.prometheus_bearer_token is not None:
            raise ValueError("use either a Prometheus bearer token or basic auth, not both")
        return self

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str | None) -> str | None:
        parse_networks(value or "")
        return value

    @model_validator(mode="after")
    def _oidc_complete(self) -> Settings:
        given = [self.oidc_issuer, self.oidc_audience, self.oidc_jwks_url]
        if any(given) and not all(given):
            raise ValueError("oidc_issuer, oidc_audience and oidc_jwks_url must be set together")
        return self

    @model_validator(mode="after")
    def _metrics_port_apart(self) -> Settings:
        if self.metrics_port is not None and self.metrics_port == self.port:
            raise ValueError("metrics_port must differ from port")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
