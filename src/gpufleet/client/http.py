"""The HTTP side of the terminal client: tokens, requests, and errors as one line.

An error answer becomes a ``ClientError`` with the exit code of its status
(``client.exit_codes``).
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from gpufleet.client.config import Profile
from gpufleet.client.exit_codes import exit_code_for_status
from gpufleet.core.exit_codes import ExitCode

# A token this close to its expiry is replaced before it is used.
REFRESH_MARGIN_SECONDS = 60
TIMEOUT_SECONDS = 30.0


class ClientError(Exception):
    """A failure worth one line on stderr and a specific exit code."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def error_message(response: httpx.Response) -> str:
    """The server's Error ``message`` (and ``details``) on one line, or the bare status."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        text = body["message"]
        if isinstance(body.get("details"), str) and body["details"]:
            text = f"{text} ({body['details']})"
    else:
        text = response.reason_phrase or "no message"
    return " ".join(f"HTTP {response.status_code}: {text}".split())


# RFC 9111 section 5.5: code, agent, then the quoted text (escapes inside are rare and kept).
_WARNING = re.compile(r'\d{3}\s+\S+\s+"((?:[^"\\]|\\.)*)"')


def server_warnings(response: httpx.Response) -> list[str]:
    """The texts of the response's ``Warning`` headers (the server names ignored parameters)."""
    texts = []
    for value in response.headers.get_list("warning"):
        texts.extend(_WARNING.findall(value) or [value])
    return texts


def _transport_error(url: str, exc: httpx.HTTPError) -> ClientError:
    if isinstance(exc, httpx.TimeoutException):
        return ClientError(f"{url} did not answer in time", ExitCode.UNAVAILABLE)
    if isinstance(exc, httpx.ConnectError):
        return ClientError(f"cannot connect to {url}: {exc}", ExitCode.UNAVAILABLE)
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return ClientError(f"invalid server URL {url!r}: {exc}", ExitCode.USAGE)
    return ClientError(f"request to {url} failed: {exc}", ExitCode.UNAVAILABLE)


def request_token(http: httpx.Client, url: str, client_id: str, secret: str) -> tuple[str, float]:
    """Exchange an access key for an access token; returns it with its expiry (epoch s)."""
    try:
        response = http.post(
            f"{url}/api/v1/token",
            json={"grantType": "client_credentials", "clientID": client_id, "clientSecret": secret},
        )
    except httpx.HTTPError as exc:
        raise _transport_error(url, exc) from None
    if response.status_code == 400:
        # The token endpoint answers a wrong key with 400; for a person it is an auth failure.
        raise ClientError(f"login refused: {error_message(response)}", ExitCode.AUTH)
    if response.status_code != 200:
        raise ClientError(error_message(response), exit_code_for_status(response.status_code))
    try:
        body = response.json()
        return body["accessToken"], time.time() + float(body.get("expiresIn") or 0)
    except (ValueError, KeyError, TypeError):
        raise ClientError(f"{url} is not a gpufleet server (odd token answer)") from None


JSON = "application/json"


class ApiClient:
    """Authenticated requests to one profile's server; the token is renewed when needed."""

    def __init__(
        self,
        profile: Profile,
        on_token: Callable[[Profile], None] | None = None,
        *,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.profile = profile
        self.url = profile.url.rstrip("/")
        self._on_token = on_token
        self._http = httpx.Client(timeout=timeout, follow_redirects=False)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def token(self, *, force: bool = False) -> str:
        """A valid access token: the cached one, or a new one when it is close to expiry."""
        profile = self.profile
        fresh = (
            profile.token is not None
            and profile.token_expires_at is not None
            and profile.token_expires_at - REFRESH_MARGIN_SECONDS > time.time()
        )
        if fresh and not force:
            return profile.token  # type: ignore[return-value]
        profile.token, profile.token_expires_at = request_token(
            self._http, self.url, profile.client_id, profile.client_secret
        )
        if self._on_token is not None:
            self._on_token(profile)
        return profile.token

    def get(
        self, path: str, params: Mapping[str, Any] | None = None, *, accept: str = JSON
    ) -> httpx.Response:
        """GET ``path``; a 401 on a cached token is retried once with a new one."""
        return self.send("GET", path, params, accept=accept)

    def send(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        body: Any = None,
        accept: str = JSON,
    ) -> httpx.Response:
        """Any request (a JSON ``body`` for writes); errors become ``ClientError``."""
        response = self._send(method, path, params, self.token(), body, accept)
        if response.status_code == 401:
            response = self._send(method, path, params, self.token(force=True), body, accept)
        for text in server_warnings(response):
            print(f"gpufleet: warning: {text}", file=sys.stderr)
        if response.status_code >= 400:
            raise ClientError(error_message(response), exit_code_for_status(response.status_code))
        return response

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        response = self.get(path, params)
        try:
            return response.json()
        except ValueError:
            raise ClientError(f"{self.url}{path} did not answer with JSON") from None

    def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        token: str,
        body: Any,
        accept: str,
    ) -> httpx.Response:
        try:
            return self._http.request(
                method,
                f"{self.url}{path}",
                params=params,
                json=body,
                headers={"Authorization": f"Bearer {token}", "Accept": accept},
            )
        except httpx.HTTPError as exc:
            raise _transport_error(self.url, exc) from None
