"""A JSON Web Key Set served over HTTP on loopback, from keys the tests generate.

It stands in for a company identity provider: the tests sign tokens with the private keys and
gpufleet fetches the public ones from ``url``, exactly as it would from a real issuer.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ISSUER = "https://idp.example.test/realms/gpufleet"
AUDIENCE = "gpufleet"


class IdentityProvider:
    def __init__(self) -> None:
        self.keys: dict[str, object] = {}
        self.fetches = 0
        self.add_rsa_key("rsa-1")
        self.add_ec_key("ec-1")
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider.fetches += 1
                body = json.dumps(provider.jwks()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/jwks.json"

    def add_rsa_key(self, kid: str) -> None:
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def add_ec_key(self, kid: str) -> None:
        self.keys[kid] = ec.generate_private_key(ec.SECP256R1())

    def remove_key(self, kid: str) -> None:
        del self.keys[kid]

    def jwks(self) -> dict:
        entries = []
        for kid, key in self.keys.items():
            if isinstance(key, rsa.RSAPrivateKey):
                entry = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
                entry["alg"] = "RS256"
            else:
                entry = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
                entry["alg"] = "ES256"
            entry.update(kid=kid, use="sig")
            entries.append(entry)
        return {"keys": entries}

    def token(self, kid: str = "rsa-1", **overrides) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "u-123",
            "preferred_username": "alice@example.test",
            "groups": ["ml-team"],
            "iat": now,
            "nbf": now,
            "exp": now + 300,
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        key = self.keys[kid]
        algorithm = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
        return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def server_env(self) -> dict[str, str]:
        """The ``GPUFLEET_OIDC_*`` variables of a server that trusts this provider."""
        return {
            "GPUFLEET_OIDC_ISSUER": ISSUER,
            "GPUFLEET_OIDC_AUDIENCE": AUDIENCE,
            "GPUFLEET_OIDC_JWKS_URL": self.url,
        }


@contextmanager
def oidc_test_client(database_url: str, provider: IdentityProvider, **settings) -> Iterator:
    """A ``TestClient`` of an app that trusts ``provider``, with the test administrator."""
    from fastapi.testclient import TestClient

    from gpufleet.api.app import create_app
    from gpufleet.settings import Settings
    from tests.support.databases import ADMIN_ID, ADMIN_SECRET

    app = create_app(
        Settings(
            database_url=database_url,
            admin_client_id=ADMIN_ID,
            admin_client_secret=ADMIN_SECRET,
            oidc_issuer=ISSUER,
            oidc_audience=AUDIENCE,
            oidc_jwks_url=provider.url,
            **settings,
        )
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
    app.state.gpufleet.engine.dispose()
