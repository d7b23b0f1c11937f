"""The Prometheus HTTP client on the wire: auth and tenant headers, TLS, timeouts, and the
answers of Prometheus-compatible stores (partial, throttled, malformed), as API status codes.
"""

from __future__ import annotations

import base64
import ipaddress
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gpufleet.api.app import create_app
from gpufleet.metrics.types import WorkloadMetricType
from gpufleet.settings import Settings
from tests.support import prometheus as data
from tests.support.prometheus_app import (
    client_for,
    copy_tsdb,
    fetch_metrics,
    grid,
    iso,
    prometheus_settings,
    seed_workloads,
)

# The module-scoped dataset, prom and t0 fixtures.
pytest_plugins = ["tests.support.prometheus_fixtures"]

M = WorkloadMetricType
MIB = 1024 * 1024
GIB = 1024 * MIB


def test_a_prometheus_that_never_answers_is_503(database_url, t0):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections are accepted by the kernel and never answered
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        settings = prometheus_settings(database_url, url, prometheus_timeout_seconds=0.3)
        with client_for(create_app(settings)) as client:
            ids = seed_workloads(client.app.state.gpufleet.engine)
            body = fetch_metrics(client, ids["train"], [M.POD_COUNT], t0, t0 + 600, 5, status=503)
    assert "did not answer in time" in body["message"]


def _trickle(server: socket.socket, stop: threading.Event) -> None:
    """Answers each query with a head at once and then a body of a byte every 20 ms."""
    while not stop.is_set():
        try:
            connection, _ = server.accept()
        except OSError:
            return
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                               b"Content-Length: 100000\r\n\r\n")  # fmt: skip
            while not stop.is_set():
                try:
                    connection.sendall(b" ")
                except OSError:
                    break
                stop.wait(0.02)


def test_an_answer_trickled_a_byte_at_a_time_is_503_within_the_timeout(database_url, t0):
    # Every read gets its byte well within the timeout; the query as a whole does not.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        stop = threading.Event()
        threading.Thread(target=_trickle, args=(server, stop), daemon=True).start()
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        settings = prometheus_settings(database_url, url, prometheus_timeout_seconds=0.5)
        try:
            with client_for(create_app(settings)) as client:
                ids = seed_workloads(client.app.state.gpufleet.engine)
                began = time.monotonic()
                body = fetch_metrics(
                    client, ids["train"], [M.POD_COUNT], t0, t0 + 600, 5, status=503
                )
                took = time.monotonic() - began
        finally:
            stop.set()
    assert "did not answer in time" in body["message"]
    assert took < 3, took


@pytest.mark.parametrize(
    "options",
    [
        {"prometheus_url": "ftp://example"},
        {"prometheus_pod_label": 'pod"} or vector(1) #'},
        {"prometheus_gpu_label": ""},
        {"prometheus_headers": "X-Scope-OrgID"},
        {"prometheus_headers": '{"X-Scope-OrgID": 1}'},
        {"prometheus_headers": "Bad Header=1"},
        {"prometheus_username": "alice"},
        {"prometheus_username": "a", "prometheus_password": "b", "prometheus_bearer_token": "t"},
        {"prometheus_inference_metrics": "sglang"},
        {"prometheus_timeout_seconds": 0},
    ],
)
def test_bad_prometheus_settings_are_refused(options):
    with pytest.raises(ValueError, match="prometheus"):
        Settings(**options)


EMPTY_MATRIX = b'{"status":"success","data":{"resultType":"matrix","result":[]}}'


class _Recorder(BaseHTTPRequestHandler):
    """Records each request and answers with ``answer`` (status, body)."""

    seen: list[tuple[str, dict[str, str], dict[str, list[str]]]] = []
    answer: tuple[int, bytes] = (200, EMPTY_MATRIX)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        form = parse_qs(self.rfile.read(length).decode())
        self.seen.append((self.path, dict(self.headers), form))
        status, body = self.answer
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        return None


@pytest.fixture
def recorder():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.seen = []
    _Recorder.answer = (200, EMPTY_MATRIX)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/prefix/", _Recorder.seen
    server.shutdown()
    server.server_close()


def _last_query(settings, seen, t0) -> tuple[str, dict[str, str], dict[str, list[str]]]:
    """Ask the API for one type's metrics; the path, headers (lower-cased names) and form of
    the last request the recorder saw."""
    with client_for(create_app(settings)) as client:
        ids = seed_workloads(client.app.state.gpufleet.engine)
        fetch_metrics(client, ids["train"], [M.POD_COUNT], t0 + 1000, t0 + 2000, 10)
    path, headers, form = seen[-1]
    return path, {k.lower(): v for k, v in headers.items()}, form


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"prometheus_bearer_token": "s3cret"}, {"authorization": "Bearer s3cret"}),
        (
            {"prometheus_username": "alice", "prometheus_password": "pw"},
            {"authorization": "Basic YWxpY2U6cHc="},
        ),
        (
            {"prometheus_headers": "X-Scope-OrgID=tenant-1, X-Extra = a=b"},
            {"x-scope-orgid": "tenant-1", "x-extra": "a=b"},
        ),
        ({"prometheus_headers": '{"X-Scope-OrgID": "t|2"}'}, {"x-scope-orgid": "t|2"}),
        # Uncompressed answers unless the headers ask for gzip.
        ({}, {"accept-encoding": "identity"}),
        ({"prometheus_headers": "Accept-Encoding=gzip"}, {"accept-encoding": "gzip"}),
    ],
)
def test_requests_carry_auth_and_headers(database_url, recorder, t0, options, expected):
    url, seen = recorder
    settings = prometheus_settings(database_url, url, **options)
    path, lowered, form = _last_query(settings, seen, t0)
    assert path == "/prefix/api/v1/query_range"
    assert lowered["content-type"] == "application/x-www-form-urlencoded"
    assert {k: lowered.get(k) for k in expected} == expected
    first, last, step = grid(t0 + 1000, t0 + 2000, 10)
    assert form["start"] == [f"{first:.3f}"] and form["end"] == [f"{last:.3f}"]
    assert form["step"] == [f"{step:.3f}"]
    assert 'pod=~"train-0|train-1|train-2"' in form["query"][0]


def _basic(credentials: str) -> str:
    return f"Basic {base64.b64encode(credentials.encode()).decode()}"


@pytest.mark.parametrize(
    ("variable", "userinfo", "credentials"),
    [
        ("HTTP_PROXY", None, None),
        # Percent-encoded in the URL, sent decoded.
        ("HTTP_PROXY", "u%40corp:p%3Aw", "u@corp:p:w"),
        ("ALL_PROXY", None, None),
    ],
)
def test_queries_go_through_the_proxy_the_environment_names(
    database_url, recorder, t0, monkeypatch, variable, userinfo, credentials
):
    url, seen = recorder
    proxy = url.removesuffix("/prefix/")
    if userinfo:
        proxy = proxy.replace("http://", f"http://{userinfo}@")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv(variable, proxy)
    settings = prometheus_settings(database_url, "http://prometheus.monitoring.svc:9090/prom")
    path, lowered, _ = _last_query(settings, seen, t0)
    # A proxy is sent the whole URL (RFC 9112, absolute form), with its credentials if any.
    assert path == "http://prometheus.monitoring.svc:9090/prom/api/v1/query_range"
    assert lowered.get("proxy-authorization") == (_basic(credentials) if credentials else None)


@pytest.mark.parametrize(
    ("userinfo", "options", "credentials"),
    [
        # Percent-encoded in the URL, sent decoded.
        ("alice:p%40ss%2Fx", {}, "alice:p@ss/x"),
        # UTF-8, as RFC 7617 recommends.
        ("", {"prometheus_username": "jürgen", "prometheus_password": "пароль€"}, "jürgen:пароль€"),
    ],
)
def test_no_proxy_and_credentials(
    database_url, recorder, t0, monkeypatch, userinfo, options, credentials
):
    url, seen = recorder
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens: must not be used
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    if userinfo:
        url = url.replace("http://", f"http://{userinfo}@")
    path, lowered, _ = _last_query(prometheus_settings(database_url, url, **options), seen, t0)
    assert path == "/prefix/api/v1/query_range"
    assert lowered["authorization"] == _basic(credentials)


def _certificates(directory):
    """A CA and a server certificate for 127.0.0.1 signed by it, as PEM files."""

    def name(text):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    now = datetime.now(UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("gpufleet test CA"))
        .issuer_name(name("gpufleet test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    server = (
        x509.CertificateBuilder()
        .subject_name(name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = {}
    for file, data_bytes in (
        ("ca.pem", ca.public_bytes(serialization.Encoding.PEM)),
        ("server.pem", server.public_bytes(serialization.Encoding.PEM)),
        (
            "server.key",
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        ),
    ):
        paths[file] = directory / file
        paths[file].write_bytes(data_bytes)
    return paths


def test_tls_with_a_ca_file_or_without_verification(database_url, dataset, tmp_path, t0):
    files = _certificates(tmp_path)
    web = tmp_path / "web.yml"
    web.write_text(
        "tls_server_config:\n"
        f"  cert_file: {files['server.pem']}\n"
        f"  key_file: {files['server.key']}\n"
    )
    server = data.PrometheusServer(copy_tsdb(dataset[1], tmp_path), tmp_path).start(web_config=web)
    try:
        assert server.url.startswith("https://")
        outcomes = []
        for options in (
            {"prometheus_ca_file": str(files["ca.pem"])},
            {"prometheus_verify_tls": False},
            {},
        ):
            settings = prometheus_settings(database_url, server.url, **options)
            with client_for(create_app(settings)) as client:
                ids = seed_workloads(client.app.state.gpufleet.engine)
                response = client.get(
                    f"/api/v1/workloads/{ids['train']}/metrics",
                    params={"metricType": "POD_COUNT", "start": iso(t0), "end": iso(t0 + 600)},
                )
                outcomes.append((response.status_code, response.json()))
    finally:
        server.stop()
    assert [code for code, _ in outcomes] == [200, 200, 503]
    assert {v["value"] for v in outcomes[0][1]["measurements"][0]["values"]} == {"3"}
    assert "certificate could not be verified" in outcomes[2][1]["message"]


_POINTS = '"values":[[1800000000,"1"],[1800000600,"NaN"],[1800001200,"+Inf"]]'


@pytest.mark.parametrize(
    ("answer", "status", "values"),
    [
        # VictoriaMetrics marks answers missing some storage nodes as partial.
        (
            (
                200,
                b'{"status":"success","isPartial":true,"data":{"resultType":"matrix",'
                b'"result":[{"metric":{},' + _POINTS.encode() + b"}]}}",
            ),
            207,
            ["1"],
        ),
        (
            (
                200,
                b'{"status":"success","warnings":["store \\u00e9 down"],"data":'
                b'{"resultType":"matrix","result":[]}}',
            ),
            207,
            [],
        ),
        ((429, b"slow down"), 503, None),
        ((502, b"<html>bad gateway</html>"), 503, None),
        ((503, b'{"status":"error","errorType":"timeout","error":"query timed out"}'), 503, None),
        (
            (422, b'{"status":"error","errorType":"execution","error":"too many samples"}'),
            500,
            None,
        ),
        ((200, b'{"status":"success","data":{"resultType":"vector","result":[]}}'), 500, None),
        # Fields of another JSON type than the API's.
        ((200, b'{"status":"success","data":[1]}'), 500, None),
        ((200, b'{"status":"success","warnings":5,"data":{"resultType":"matrix"}}'), 500, None),
        ((200, b'{"status":"success","data":{"resultType":"matrix","result":[7]}}'), 500, None),
        ((200, b"not json at all"), 500, None),
        (
            (
                200,
                b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},'
                b'"values":[["x","y"]]}]}}',
            ),
            500,
            None,
        ),
        ((401, b"Unauthorized"), 500, None),
    ],
)
def test_answers_of_prometheus_compatible_stores(
    database_url, recorder, t0, answer, status, values
):
    url, _ = recorder
    _Recorder.answer = answer
    settings = prometheus_settings(database_url, url)
    with client_for(create_app(settings)) as client:
        ids = seed_workloads(client.app.state.gpufleet.engine)
        body = fetch_metrics(client, ids["train"], [M.POD_COUNT], t0, t0 + 600, 3, status=status)
    if values is None:
        assert body["code"] == status
        assert "kube_pod_status_phase" not in body["message"]
        if status == 500:  # the upstream's failure, said so, not one of the server's own
            assert body["message"].startswith("Every metrics query"), body["message"]
    else:
        # Partial data is returned; NaN and infinite points are left out.
        assert [v["value"] for v in body["measurements"][0]["values"]] == values


@pytest.mark.parametrize(
    "point", [b"[1800000600]", b"{}", b'[1800000600,"inf"]', b'[1800000600,"1e999"]']
)
def test_points_that_are_no_finite_pairs_make_a_malformed_answer(database_url, recorder, t0, point):
    # No [time, value] pair, or an infinity spelt otherwise than Prometheus spells it: the
    # type fails as a malformed answer (never a failure of the server's own, nor "inf" sent on).
    url, _ = recorder
    _Recorder.answer = (
        200,
        b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},'
        b'"values":[[1800000000,"1"],' + point + b"]}]}}",
    )
    settings = prometheus_settings(database_url, url)
    with client_for(create_app(settings)) as client:
        ids = seed_workloads(client.app.state.gpufleet.engine)
        body = fetch_metrics(client, ids["train"], [M.POD_COUNT], t0, t0 + 600, 3, status=500)
    assert body["message"] == "Every metrics query to the prometheus backend failed."
