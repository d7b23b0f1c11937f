"""One settings object for every gpufleet process.

Each option is a ``GPUFLEET_*`` environment variable and a CLI flag of the same name
(``--database-url`` for ``GPUFLEET_DATABASE_URL``). Nothing reads the environment at import
time: ``Settings()`` is built by the CLI or by tests and passed into the app factory.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GPUFLEET_", extra="ignore")

    database_url: str = Field(
        "sqlite:///./gpufleet.db",
        description="SQLAlchemy URL of the workload store (SQLite file or postgresql+psycopg://).",
    )
    host: str = Field("127.0.0.1", description="Address the API server listens on.")
    port: int = Field(8080, ge=0, le=65535, description="Port the API server listens on.")
    admin_client_id: str | None = Field(
        None, description="Client id of the bootstrap administrator (generated when unset)."
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
    log_level: str = Field("info", description="Log level of the server (debug, info, warning).")
    refresh_token_ttl_seconds: int = Field(
        24 * 3600, ge=60, le=90 * 24 * 3600, description="Lifetime of issued refresh tokens."
    )
    token_failure_limit: int = Field(
        10, ge=1, le=10_000, description="Failed token requests allowed per client id or address."
    )
    token_failure_window_seconds: int = Field(
        300, ge=1, le=86_400, description="Window over which failed token requests are counted."
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
    ingest_max_metric_samples: int = Field(
        50_000, ge=1, le=1_000_000, description="Most samples one metrics ingest request may carry."
    )
    metrics_retention_interval_seconds: int = Field(
        3600, ge=0, le=7 * 86_400, description="How often old samples are deleted (0 disables)."
    )

    @field_validator("database_url")
    @classmethod
    def _known_dialect(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("database_url must be a sqlite:// or postgresql+psycopg:// URL")
        return value

    @model_validator(mode="after")
    def _oidc_complete(self) -> Settings:
        given = [self.oidc_issuer, self.oidc_audience, self.oidc_jwks_url]
        if any(given) and not all(given):
            raise ValueError("oidc_issuer, oidc_audience and oidc_jwks_url must be set together")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
