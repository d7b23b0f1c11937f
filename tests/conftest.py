"""Shared fixtures. One suite, two databases: ``GPUFLEET_TEST_DATABASE`` picks
``sqlite`` (default) or ``postgresql`` (a real server these fixtures start and tear down).
Every test gets a fresh database, copied from a template that is migrated and holds a signing
key (so each test does not pay for migrations and RSA key generation); no access key exists yet.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from gpufleet.api.app import create_app
from gpufleet.auth import secrets
from gpufleet.settings import Settings
from gpufleet.store.credentials import ensure_signing_key
from gpufleet.store.engine import create_store_engine
from gpufleet.store.migrate import upgrade
from tests.support import image
from tests.support.databases import ADMIN_ID, ADMIN_SECRET, DATABASE, fresh_database


def pytest_report_header() -> str:
    return f"gpufleet test database: {DATABASE}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Image tests build the container image, so they run where GPUFLEET_TEST_IMAGE=1 asks for
    them: scripts/test starts them in a run of their own, next to the suite's two runs. They
    run on SQLite only: the image serves its own SQLite file whatever the suite's database is.
    Tests marked ``sqlite_pass`` check what a browser draws over minutes of a living demo;
    the API beneath them is checked on both databases by other modules, so they run once, in
    the SQLite pass. Deselected, not skipped."""
    left_out = [] if DATABASE == "sqlite" else ["sqlite_pass"]
    if not (DATABASE == "sqlite" and os.environ.get("GPUFLEET_TEST_IMAGE") == "1"):
        left_out.append("image")
    deselected = [i for i in items if any(i.get_closest_marker(m) for m in left_out)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item not in deselected]
    _longest_modules_first(items)


# The modules that take longest in a pass, longest first. xdist hands out whole modules in
# collection order (``--dist loadfile --no-loadscope-reorder`` in pyproject.toml), so a module
# that starts last sets the end of the run; starting these first lets the other modules fill
# in around them and both workers finish together. Modules not listed keep their usual order,
# after these. The ranking comes from ``--durations`` on both databases (docs/testing.md).
LONGEST_FIRST = (
    "test_dashboard_living.py",
    "test_agent_integration.py",
    "test_cli_process.py",
    "test_workload_plans.py",
    "test_token_lifecycle.py",
    "test_usage_cli.py",
    "test_dashboard_overview.py",
    "test_dashboard.py",
    "test_agent_startup.py",
    "test_cli_client.py",
    "test_reports_e2e.py",
    "test_startup_failures.py",
    "test_e2e_sdk.py",
    "test_demo.py",
    "test_workload_details.py",
    "test_telemetry.py",
    "test_access_api.py",
    "test_ingest_validation.py",
    "test_access_cli.py",
    "test_trust_ingest.py",
    "test_workload_cursors.py",
    "test_lockout.py",
    "test_ingest.py",
    "test_replicas.py",
    "test_ingest_metrics.py",
    "test_workers.py",
    "test_dashboard_usage.py",
    "test_caller_limits.py",
    "test_demo_live.py",
    "test_usage_ledger.py",
    "test_server_metrics.py",
    "test_readme.py",
)


def _longest_modules_first(items: list[pytest.Item]) -> None:
    rank = {name: position for position, name in enumerate(LONGEST_FIRST)}
    # A stable sort: each module's tests stay together and in their order.
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def pytest_terminal_summary(terminalreporter) -> None:
    """The container image the image tests used, with its size."""
    for line in image.BUILT:
        terminalreporter.write_line(f"container image {line}")


@pytest.fixture(scope="session", autouse=True)
def _cheap_secret_hashing():
    """Hash secrets at a low scrypt cost: the suite hashes thousands of them, and what is under
    test is that hashing and constant-time checking happen, not the production work factor."""
    production = secrets.SCRYPT_COST
    secrets.SCRYPT_COST = 2**8
    yield
    secrets.SCRYPT_COST = production


def _prepare_template(url: str) -> None:
    engine = create_store_engine(Settings(database_url=url))
    upgrade(engine)
    with engine.begin() as conn:
        ensure_signing_key(conn)
    # Closing the last connection checkpoints SQLite's WAL, so the file alone is complete.
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_server():
    """The session's PostgreSQL server, with a prepared template database to copy per test."""
    from tests.support.postgres import start_postgres

    server = start_postgres()
    _prepare_template(server.create_database("gpufleet_template"))
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("template") / "gpufleet.db"
    _prepare_template(f"sqlite:///{path}")
    return str(path)


@pytest.fixture
def database_url(request, tmp_path) -> Iterator[str]:
    with fresh_database(request, tmp_path) as url:
        yield url


@pytest.fixture(scope="module")
def module_database_url(request, tmp_path_factory) -> Iterator[str]:
    """Like ``database_url``, but one fresh database shared by a whole test module."""
    with fresh_database(request, tmp_path_factory.mktemp("module")) as url:
        yield url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        admin_client_id=ADMIN_ID,
        admin_client_secret=ADMIN_SECRET,
        # Agent reports in tests are dated from T0 (March 2025); the usage ledger accrues
        # nothing older than its retention, which must reach back that far for years to come.
        usage_retention_days=3650,
    )


@pytest.fixture
def app(settings: Settings):
    application = create_app(settings)
    yield application
    application.state.gpufleet.engine.dispose()


@pytest.fixture
def engine(app):
    return app.state.gpufleet.engine


@pytest.fixture
def anonymous_client(app) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def admin_token(anonymous_client: TestClient) -> str:
    response = anonymous_client.post(
        "/api/v1/token",
        json={
            "grantType": "client_credentials",
            "clientID": ADMIN_ID,
            "clientSecret": ADMIN_SECRET,
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["accessToken"]


@pytest.fixture
def client(app, admin_token: str) -> Iterator[TestClient]:
    """A client authenticated as the administrator."""
    with TestClient(app, raise_server_exceptions=False) as authed:
        authed.headers["Authorization"] = f"Bearer {admin_token}"
        yield authed


@pytest.fixture
def start_server(database_url: str, tmp_path):
    """Start real ``gpufleet serve`` processes (``tests.support.server.ServerProcess``).

    ``start_server(demo=True, extra_env={...})`` returns a started server on this test's
    database (another ``database_url=`` may be given); all are stopped after the test, and
    their logs stay in the test's temporary directory.
    """
    from tests.support.server import ServerProcess

    started = []

    def start(**options):
        options.setdefault("log_dir", tmp_path)
        url = options.pop("database_url", database_url)
        server = ServerProcess(url, admin_id=ADMIN_ID, admin_secret=ADMIN_SECRET, **options)
        started.append(server)
        return server.start()

    yield start
    for server in reversed(started):
        server.stop()


@pytest.fixture
def live_server(start_server):
    """One real server process on this test's database, administrator ``ADMIN_ID``."""
    return start_server()


@pytest.fixture(scope="module")
def module_server(module_database_url: str, tmp_path_factory):
    """One real server process with default options for the whole module (tests share it)."""
    from tests.support.server import ServerProcess

    with ServerProcess(
        module_database_url,
        admin_id=ADMIN_ID,
        admin_secret=ADMIN_SECRET,
        log_dir=tmp_path_factory.mktemp("server"),
    ) as process:
        yield process


@pytest.fixture(scope="module")
def demo_module(request, tmp_path_factory):
    """One demo server for the whole module (see ``tests/support/demo_server.py``)."""
    from tests.support.demo_server import demo_server

    with demo_server(request, tmp_path_factory) as server:
        yield server


@pytest.fixture(scope="module")
def demo_api(demo_module):
    """An httpx client on ``demo_module``, authenticated as the administrator."""
    with demo_module.api() as client:
        yield client


@pytest.fixture(scope="module")
def identity_provider():
    """An OIDC provider's key set served on loopback (``tests/support/jwks.py``), per module."""
    from tests.support.jwks import IdentityProvider

    provider = IdentityProvider()
    yield provider
    provider.close()
