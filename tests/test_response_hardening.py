"""Output a browser or a spreadsheet cannot be turned against its reader, through a real server:
security headers on every page, asset and error; /api/docs from this origin only; redirects
that never name the Host a client sent; CSV cells that cannot run as formulas.
"""

from __future__ import annotations

import csv
import io
import re

import httpx
import pytest

from gpufleet.api.hardening import CONTENT_SECURITY_POLICY, relative_location
from gpufleet.client.output import Printer
from gpufleet.dashboard import STATIC_DIR
from gpufleet.schemas.csv_cells import csv_cell
from gpufleet.settings import Settings
from gpufleet.store.engine import create_store_engine
from tests.support.factories import insert, workload

FORMULAS = ['=HYPERLINK("http://x.test","y")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]


@pytest.fixture(scope="module")
def server(module_server, module_database_url):
    engine = create_store_engine(Settings(database_url=module_database_url))
    insert(
        engine,
        [
            workload(projectId=f"p{n}", projectName=name, departmentName=name)
            for n, name in enumerate(FORMULAS)
        ],
    )
    engine.dispose()
    return module_server


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.base_url, timeout=30.0) as client:
        client.headers.update(server.auth_headers())
        yield client


def _static_paths() -> list[str]:
    files = [p for p in STATIC_DIR.rglob("*") if p.is_file()]
    assert len(files) >= 8
    return ["/dashboard/" + p.relative_to(STATIC_DIR).as_posix() for p in files]


def _assert_hardened(response: httpx.Response) -> None:
    headers = response.headers
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY, response.url
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff", response.url
    assert headers["x-frame-options"] == "DENY", response.url


def test_every_page_asset_and_error_carries_the_security_headers(server):
    paths = ["/", "/dashboard/index.html", *_static_paths(), "/api/docs", "/api/docs/init.js"]
    paths += ["/api/docs/assets/swagger-ui-bundle.js", "/api/docs/assets/swagger-ui.css"]
    with httpx.Client(base_url=server.base_url, timeout=30.0) as anonymous:
        for path in paths:
            response = anonymous.get(path)
            assert response.status_code == 200, path
            _assert_hardened(response)
        for path in ("/dashboard/missing.js", "/api/docs/assets/index.html", "/api/v1/workloads"):
            refused = anonymous.get(path)
            assert refused.status_code in (401, 404), path
            _assert_hardened(refused)
        _assert_hardened(anonymous.get("/openapi.json"))
        _assert_hardened(anonymous.get("/healthz"))


def test_api_docs_load_nothing_from_another_origin(server):
    with httpx.Client(base_url=server.base_url, timeout=30.0) as anonymous:
        page = anonymous.get("/api/docs")
        assert page.headers["content-type"].startswith("text/html")
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        # The empty icon the dashboard's page has too, so the browser asks no /favicon.ico.
        assert sources[0] == "data:,"
        sources = sources[1:]
        assert len(sources) == 3
        assert "<script>" not in page.text  # no inline script: the CSP would refuse it
        for source in sources:
            assert source.startswith("/api/docs/"), source
            asset = anonymous.get(source)
            assert asset.status_code == 200, source
            assert len(asset.content) > 100
        initialiser = anonymous.get("/api/docs/init.js").text
        assert "/openapi.json" in initialiser
        assert "validatorUrl: null" in initialiser
        for text in (page.text, initialiser):
            assert not re.search(r"https?://", text)
        assert "Apache License" in anonymous.get("/api/docs/assets/LICENSE").text


@pytest.mark.parametrize("path", ["/dashboard", "/api/v1/workloads/"])
def test_a_host_header_is_never_reflected_into_a_redirect(server, path):
    response = httpx.get(
        server.base_url + path, headers={"Host": "evil.example.test"}, follow_redirects=False
    )
    if response.status_code in (301, 302, 307, 308):
        location = response.headers["location"]
        assert location.startswith("/") and not location.startswith("//"), location
        assert "evil" not in location
    assert "evil.example.test" not in response.text


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://evil.test/dashboard/", "/dashboard/"),
        ("http://evil.test//evil.test/x?a=1#f", "/evil.test/x?a=1#f"),
        ("//evil.test/x", "/x"),
        ("/ok", "/ok"),
    ],
)
def test_locations_lose_scheme_and_host(given, expected):
    assert relative_location(given) == expected


def test_telemetry_csv_escapes_formulas_and_keeps_numbers(http):
    response = http.get(
        "/api/v1/workloads/telemetry",
        params={"telemetryType": "WORKLOADS_COUNT", "groupBy": "ProjectId"},
        headers={"Accept": "text/csv"},
    )
    assert response.status_code == 200, response.text
    rows = list(csv.DictReader(io.StringIO(response.text)))
    names = {row["ProjectIdName"] for row in rows}
    assert names == {"'" + name for name in FORMULAS}
    assert {row["value"] for row in rows} == {"1"}


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+2", "'=1+2"),
        ("+cmd", "'+cmd"),
        ("-cmd", "'-cmd"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-1.5", "-1.5"),
        ("+3", "+3"),
        ("-2e-3", "-2e-3"),
        ("+Inf", "+Inf"),
        ("-inf", "-inf"),
        ("+Information", "'+Information"),
        ("-1-1", "'-1-1"),
        ("name=x", "name=x"),
        ("", ""),
        (-4, -4),
        (-0.25, -0.25),
        (None, None),
    ],
)
def test_csv_cells(value, written):
    assert csv_cell(value) == written


def test_the_terminal_clients_csv_escapes_formulas_too():
    stream = io.StringIO()
    Printer(stream).csv(["name", "gpus", "note"], [["=cmd()", -1.5, None], ["-x", "-2", "ok"]])
    rows = list(csv.reader(io.StringIO(stream.getvalue())))
    assert rows == [["name", "gpus", "note"], ["'=cmd()", "-1.5", ""], ["'-x", "-2", "ok"]]
