"""Which metrics backend a server uses: chosen by settings alone."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from gpufleet.metrics.backend import MetricsBackend
from gpufleet.metrics.embedded import EmbeddedMetricsBackend
from gpufleet.metrics.prometheus import PrometheusBackend
from gpufleet.settings import Settings


def metrics_backend_for(settings: Settings, engine: Engine) -> MetricsBackend:
    """Prometheus when ``prometheus_url`` is set, otherwise the embedded samples store."""
    if settings.prometheus_url:
        return PrometheusBackend(settings)
    return EmbeddedMetricsBackend(engine)
