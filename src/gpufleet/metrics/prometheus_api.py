"""A small client of the Prometheus HTTP API (Prometheus, Thanos, Mimir, VictoriaMetrics).

Queries are sent as POST forms, so selectors over hundreds of pods never hit URL limits.
Failures come back as two exceptions: ``PrometheusUnavailable`` (the server could not answer:
connection refused, timeout, 5xx, throttling) and ``PrometheusQueryError`` (it answered that the
query is wrong or cannot run); the caller decides what each means for the API.
"""

from __future__ import annotations

import base64
import re
import ssl
import time
import warnings
from dataclasses import dataclass
from operator import itemgetter
from urllib.parse import unquote, urlencode
from urllib.request import getproxies, proxy_bypass

import orjson
import urllib3
from urllib3 import exceptions as transport

from gpufleet.metrics.types import wire_decimals
from gpufleet.settings import Settings, parse_header_list

# Read at most this much of an answer at a time (a 1,000-point series is about 30 KB).
_READ_BYTES = 1 << 20
# The upstream answers "try again later" with these; a query error has 400 or 422.
_UNAVAILABLE_STATUSES = frozenset({429, 502, 503, 504})


class PrometheusUnavailable(Exception):
    """Prometheus could not be reached or did not answer in time."""


class PrometheusQueryError(Exception):
    """Prometheus rejected or failed the query (bad PromQL, limits, unexpected answer)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


@dataclass(frozen=True, slots=True)
class Series:
    labels: dict[str, str]
    # As Prometheus sent them: [epoch seconds, "value"] pairs ("NaN" and "+Inf" included).
    # Converted once, by the caller, straight into what it builds.
    values: list


NON_FINITE = frozenset({"NaN", "+Inf", "-Inf"})
_TIME, _VALUE = itemgetter(0), itemgetter(1)
_MS_PER_SECOND = 1000.0


def point_pairs(series: Series):
    """``(epoch ms, float)`` of each finite value; raises ValueError/TypeError when malformed."""
    return ((round(ts * 1000), float(v)) for ts, v in series.values if v not in NON_FINITE)


def columns(series: Series) -> tuple[list[int], list[str]]:
    """The finite points of a range series as two columns, epoch milliseconds and the values'
    wire strings; raises ValueError/TypeError when malformed.

    A range answer holds thousands of points: every step is a ``map`` that runs in C.
    """
    pairs = series.values
    try:
        if not NON_FINITE.isdisjoint(map(_VALUE, pairs)):
            # NaN and infinities have no place in the wire's decimal strings: left out.
            pairs = [pair for pair in pairs if pair[1] not in NON_FINITE]
        times = list(map(round, map(_MS_PER_SECOND.__mul__, map(_TIME, pairs))))
        return times, wire_decimals(list(map(_VALUE, pairs)))
    except LookupError:  # a point that is no [time, value] pair
        raise ValueError("malformed point") from None


@dataclass(frozen=True, slots=True)
class QueryAnswer:
    series: list[Series]
    # Prometheus/Thanos warnings, or VictoriaMetrics' isPartial: the data may be incomplete.
    warnings: list[str]


def _tls(settings: Settings, host: str) -> ssl.SSLContext:
    """The system's CA store (or ``SSL_CERT_FILE``), or the configured CA file alone."""
    context = ssl.create_default_context(cafile=settings.prometheus_ca_file or None)
    if not settings.prometheus_verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        # The operator's choice (docs/prometheus.md), not a warning on every query to this host.
        warnings.filterwarnings(
            "ignore",
            message=f"Unverified HTTPS request is being made to host '{re.escape(host)}'",
            category=transport.InsecureRequestWarning,
        )
    return context


def _headers(settings: Settings, url: urllib3.util.Url) -> dict[str, str]:
    # Uncompressed: gzip costs Prometheus more time per range answer than the bytes it saves
    # take on a cluster network (twice the latency of a 1,000-point query, measured on
    # loopback). GPUFLEET_PROMETHEUS_HEADERS can ask for "Accept-Encoding: gzip" again.
    headers = {
        "Accept": "application/json",
        "Accept-Encoding": "identity",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    if settings.prometheus_username is not None and settings.prometheus_password is not None:
        password = settings.prometheus_password.get_secret_value()
        headers["Authorization"] = _basic(settings.prometheus_username, password)
    elif url.auth:  # https://user:password@host/
        headers["Authorization"] = _basic(*_credentials(url.auth))
    headers.update(parse_header_list(settings.prometheus_headers))
    if settings.prometheus_bearer_token is not None:
        token = settings.prometheus_bearer_token.get_secret_value()
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.3f}"


def _basic(user: str, password: str) -> str:
    """A basic ``Authorization`` value, UTF-8 encoded (RFC 7617)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _credentials(userinfo: str) -> tuple[str, str]:
    """The user and password of a URL's ``user:password``, percent-decoded."""
    user, _, password = userinfo.partition(":")
    return unquote(user), unquote(password)


def _pool(url: urllib3.util.Url, **options) -> urllib3.PoolManager:
    """Connections to ``url``'s server, through the proxy the environment names for it
    (``HTTPS_PROXY``, ``HTTP_PROXY`` or ``ALL_PROXY``, unless ``NO_PROXY`` names the host)."""
    proxies = getproxies()
    proxy = proxies.get(url.scheme) or proxies.get("all")
    if proxy and not proxy_bypass(url.host or ""):
        proxy_url = urllib3.util.parse_url(proxy)
        auth = None
        if proxy_url.auth:
            auth = {"Proxy-Authorization": _basic(*_credentials(proxy_url.auth))}
        return urllib3.ProxyManager(
            proxy_url._replace(auth=None).url, proxy_headers=auth, **options
        )
    return urllib3.PoolManager(**options)


class PrometheusClient:
    """Thread-safe: one pool of keep-alive connections shared by concurrent queries.

    urllib3 rather than httpx: a query costs a third of the CPU time (measured by
    ``bench.prometheus_metrics``), which on a busy server is time taken from other requests.
    """

    def __init__(self, settings: Settings, max_connections: int = 16) -> None:
        if not settings.prometheus_url:
            raise ValueError("prometheus_url is not set")
        url = urllib3.util.parse_url(settings.prometheus_url.rstrip("/"))
        self._timeout = settings.prometheus_timeout_seconds
        self._headers = _headers(settings, url)
        tls = {"ssl_context": _tls(settings, url.host or "")} if url.scheme == "https" else {}
        self._base = url._replace(auth=None).url
        self._client = _pool(
            url,
            maxsize=max_connections,
            timeout=urllib3.Timeout(
                connect=settings.prometheus_timeout_seconds,
                read=settings.prometheus_timeout_seconds,
            ),
            retries=False,
            **tls,
        )

    def query_range(self, query: str, start_ms: int, end_ms: int, step_ms: int) -> QueryAnswer:
        """``/api/v1/query_range`` from ``start_ms`` to ``end_ms`` every ``step_ms``."""
        form = {
            "query": query,
            "start": _seconds(start_ms),
            "end": _seconds(end_ms),
            "step": _seconds(step_ms),
        }
        return self._post("/api/v1/query_range", form, "matrix")

    def query(self, query: str, time_ms: int) -> QueryAnswer:
        """``/api/v1/query`` at one instant."""
        return self._post("/api/v1/query", {"query": query, "time": _seconds(time_ms)}, "vector")

    def close(self) -> None:
        self._client.clear()

    def _post(self, path: str, form: dict[str, str], result_type: str) -> QueryAnswer:
        deadline = time.monotonic() + self._timeout
        try:
            response = self._client.urlopen(
                "POST",
                self._base + path,
                body=urlencode(form),
                headers=self._headers,
                redirect=False,
                preload_content=False,
            )
            content = _read_by(response, deadline)
        except transport.TimeoutError:
            raise PrometheusUnavailable("Prometheus did not answer in time") from None
        except transport.SSLError as exc:
            if _caused_by(exc, ssl.SSLCertVerificationError):
                raise PrometheusUnavailable(
                    "Prometheus' TLS certificate could not be verified"
                ) from None
            raise PrometheusUnavailable("Prometheus is unreachable (SSLError)") from None
        except transport.HTTPError as exc:
            raise PrometheusUnavailable(
                f"Prometheus is unreachable ({type(exc).__name__})"
            ) from None
        if response.status in _UNAVAILABLE_STATUSES:
            raise PrometheusUnavailable(f"Prometheus answered HTTP {response.status}")
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError:
            raise PrometheusQueryError(
                "bad_response", f"HTTP {response.status} without a JSON body"
            ) from None
        if not isinstance(body, dict) or body.get("status") != "success":
            error_type = str(body.get("errorType", "error")) if isinstance(body, dict) else "error"
            message = str(body.get("error", "")) if isinstance(body, dict) else ""
            if error_type in ("timeout", "canceled", "unavailable"):
                raise PrometheusUnavailable(f"Prometheus query {error_type}")
            raise PrometheusQueryError(error_type, message or f"HTTP {response.status}")
        return _answer(body, result_type)


def _read_by(response: urllib3.BaseHTTPResponse, deadline: float) -> bytes:
    """The answer's body, read by ``deadline``: each read waits at most the timeout, and this
    bounds their sum (a body trickled a byte at a time would otherwise hold the query for
    as long as it lasts). A body cut short closes its connection."""
    chunks: list[bytes] = []
    try:
        while chunk := response.read1(_READ_BYTES):
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise transport.TimeoutError("the answer took longer than the timeout")
    except BaseException:
        response.close()
        raise
    response.release_conn()
    return b"".join(chunks)


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _answer(body: dict, result_type: str) -> QueryAnswer:
    series: list[Series] = []
    try:
        data = body.get("data") or {}
        warnings = [str(w) for w in body.get("warnings") or ()]
        if body.get("isPartial"):
            warnings.append("partial response")
        if data.get("resultType") != result_type:
            raise PrometheusQueryError("bad_response", f"expected a {result_type} result")
        for item in data.get("result") or ():
            labels = {str(k): str(v) for k, v in (item.get("metric") or {}).items()}
            values = item.get("values") if result_type == "matrix" else [item.get("value")]
            if not isinstance(values, list):
                raise TypeError
            series.append(Series(labels, values))
    except (TypeError, AttributeError):  # a field of another JSON type than the API's
        raise PrometheusQueryError("bad_response", "malformed result") from None
    return QueryAnswer(series, warnings)
