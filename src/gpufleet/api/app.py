"""The app factory: ``create_app(settings)`` is the only way a server is built."""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager

import anyio.to_thread
import sqlalchemy as sa
from fastapi import FastAPI, Request
from sqlalchemy.engine import Engine

import gpufleet
from gpufleet.api.admission import Admission, pool_capacity
from gpufleet.api.client_address import ClientAddress
from gpufleet.api.concurrency import CallerSlots
from gpufleet.api.deps import AppState
from gpufleet.api.errors import install_error_handlers
from gpufleet.api.hardening import HardenedResponses
from gpufleet.api.limits import RequestLimits
from gpufleet.api.observed_backend import ObservedBackend
from gpufleet.api.request_observer import RequestObserver
from gpufleet.api.responses import json_response
from gpufleet.api.routes import (
    access_keys,
    access_rule_batches,
    access_rules,
    api_docs,
    audit,
    clusters,
    demo_status,
    events,
    history,
    ingest,
    ingest_events,
    ingest_inventory,
    ingest_metrics,
    inventory_metrics,
    metrics,
    node_metrics,
    nodepools,
    nodes,
    org_unit_telemetry,
    org_units,
    pod_metrics,
    pods,
    reports,
    roles,
    service_accounts,
    signing_keys,
    telemetry,
    tokens,
    usage,
    workload_fields,
    workloads,
)
from gpufleet.api.routes.dashboard import mount_dashboard
from gpufleet.api.server_metrics import ServerMetrics
from gpufleet.api.serving import Readiness, metrics_response
from gpufleet.api.unknown_parameters import UnknownParameterWarnings
from gpufleet.auth.bootstrap import prepare_store
from gpufleet.auth.oidc import OidcConfig, OidcVerifier
from gpufleet.auth.rate_limit import FailureLimiter
from gpufleet.auth.tokens import TokenService
from gpufleet.metrics.backend import MetricsBackend
from gpufleet.metrics.cluster_promql import cluster_series_for
from gpufleet.metrics.node_metrics import node_metrics_for
from gpufleet.metrics.report_tasks import report_jobs
from gpufleet.metrics.select import metrics_backend_for
from gpufleet.metrics.tasks import MetricsTasks
from gpufleet.settings import Settings, parse_networks
from gpufleet.store.credentials import load_signing_keys
from gpufleet.store.engine import create_store_engine


def _oidc_verifier(settings: Settings) -> OidcVerifier | None:
    if not settings.oidc_issuer:
        return None
    config = OidcConfig(
        issuer=settings.oidc_issuer,
        audience=settings.oidc_audience or "",
        jwks_url=settings.oidc_jwks_url or "",
        username_claim=settings.oidc_username_claim,
        groups_claim=settings.oidc_groups_claim,
        algorithms=tuple(a.strip() for a in settings.oidc_algorithms.split(",") if a.strip()),
    )
    return OidcVerifier(config)


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    metrics_backend: MetricsBackend | None = None,
) -> FastAPI:
    """Build the API server; prepares the database (migrations, keys, admin) first."""
    engine = engine or create_store_engine(settings)
    generated_admin = prepare_store(engine, settings)
    server_metrics = ServerMetrics()
    server_metrics.watch_engine(engine, settings.db_pool_size + settings.db_max_overflow)
    metrics_backend = metrics_backend or metrics_backend_for(settings, engine)
    observed_backend = ObservedBackend(metrics_backend, server_metrics)
    node_sources = node_metrics_for(settings, engine, metrics_backend)
    cluster_series = cluster_series_for(settings, metrics_backend)
    # This process's name in database leases (work that runs in one replica at a time).
    holder = uuid.uuid4().hex
    metrics_tasks = MetricsTasks(
        engine,
        observed_backend,
        settings,
        on_run=server_metrics.record_task,
        holder=holder,
        extra_jobs=report_jobs(engine, settings, holder),
    )
    readiness = Readiness(server_metrics)
    admission = Admission(pool_capacity(engine.pool), settings.db_pool_timeout_seconds)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        admission.size_worker_threads()
        metrics_tasks.start()
        try:
            yield
        finally:
            await metrics_tasks.stop()
            metrics_backend.close()
            node_sources.close()
            if cluster_series is not None:
                cluster_series.close()

    def reload_keys():
        with engine.connect() as conn:
            return load_signing_keys(conn)

    app = FastAPI(
        title="gpufleet",
        version=gpufleet.__version__,
        description="Self-hosted control plane that speaks the Run:ai Workloads API.",
        # Served by routes.api_docs from packaged assets, not from a CDN.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    app.state.gpufleet = AppState(
        settings=settings,
        engine=engine,
        tokens=TokenService(
            reload_keys(),
            settings.token_ttl_seconds,
            reload_keys,
            refresh_seconds=settings.signing_key_refresh_seconds,
            refresh_ttl_seconds=settings.refresh_token_ttl_seconds,
        ),
        failures=FailureLimiter(settings.token_failure_window_seconds),
        admission=admission,
        oidc=_oidc_verifier(settings),
    )
    app.state.generated_admin = generated_admin
    app.state.read_slots = CallerSlots(
        settings.caller_max_concurrent_reads, settings.caller_read_queue_seconds
    )
    app.state.metrics_backend = metrics_backend
    app.state.observed_backend = observed_backend
    app.state.node_metrics = node_sources
    app.state.cluster_series = cluster_series
    app.state.server_metrics = server_metrics
    app.state.readiness = readiness
    # Set by `serve --demo` to a callable answering the demo status.
    app.state.demo_status = None
    install_error_handlers(app)
    app.add_middleware(RequestLimits)
    # Added after the limits, so it wraps them: their own answers get the headers too.
    app.add_middleware(HardenedResponses)
    app.add_middleware(UnknownParameterWarnings)
    app.add_middleware(ClientAddress, trusted=parse_networks(settings.trusted_proxies or ""))
    # Added last, so it is outermost: every answer is counted, logged and carries its id.
    app.add_middleware(RequestObserver, metrics=server_metrics)
    app.include_router(tokens.router)
    # Before the workloads router, so /telemetry is not read as a workload id.
    app.include_router(telemetry.router)
    app.include_router(pods.router)
    app.include_router(workloads.router)
    app.include_router(workload_fields.router)
    app.include_router(metrics.router)
    app.include_router(usage.router)
    app.include_router(reports.router)
    app.include_router(pod_metrics.router)
    app.include_router(ingest_metrics.router)
    app.include_router(access_keys.router)
    app.include_router(service_accounts.router)
    app.include_router(access_rule_batches.router)
    app.include_router(access_rules.router)
    app.include_router(roles.router)
    app.include_router(audit.router)
    app.include_router(signing_keys.router)
    app.include_router(signing_keys.legacy)
    app.include_router(clusters.router)
    # Before the org-unit router, so /projects/telemetry is not read as a project id.
    app.include_router(org_unit_telemetry.router)
    app.include_router(org_units.router)
    app.include_router(inventory_metrics.router)
    app.include_router(nodes.router)
    app.include_router(node_metrics.router)
    app.include_router(nodepools.router)
    app.include_router(history.router)
    app.include_router(events.router)
    app.include_router(ingest_events.router)
    app.include_router(ingest_inventory.router)
    app.include_router(ingest.router)
    app.include_router(demo_status.router)
    app.include_router(api_docs.router)
    mount_dashboard(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz():
        return json_response({"status": "ok"})

    def ping():
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    @app.get("/readyz", include_in_schema=False)
    async def readyz():
        if not readiness.ready:
            return json_response({"status": "shutting down"}, status_code=503)
        async with admission.place():
            await anyio.to_thread.run_sync(ping)
        return json_response({"status": "ready"})

    if settings.metrics_port is None:
        # Unauthenticated like /healthz: route templates and counters, nothing a caller could
        # not learn from the API's own answers (see docs/operations.md).
        @app.get("/metrics", include_in_schema=False)
        def prometheus_metrics(request: Request):
            return metrics_response(server_metrics, request.headers.get("accept"))

    return app
