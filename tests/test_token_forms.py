"""The token endpoint's two encodings against a real server: Run:ai's JSON body and the
form-encoded OAuth 2.0 client credentials grant (RFC 6749 section 4.4), the latter driven by
Authlib's httpx client as any standard OAuth client would."""

from __future__ import annotations

import base64

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client, OAuthError

from tests.support.databases import ADMIN_ID, ADMIN_SECRET
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(module_server: ServerProcess) -> ServerProcess:
    return module_server


@pytest.fixture
def token_url(server: ServerProcess) -> str:
    return server.base_url + "/api/v1/token"


@pytest.mark.parametrize("method", ["client_secret_post", "client_secret_basic"])
def test_an_oauth_client_gets_a_token_and_lists_workloads(server, token_url, method):
    with OAuth2Client(ADMIN_ID, ADMIN_SECRET, token_endpoint_auth_method=method) as oauth:
        token = oauth.fetch_token(token_url, grant_type="client_credentials")
        assert token["token_type"] == "Bearer"
        assert token["expires_in"] > 0
        listed = oauth.get(server.base_url + "/api/v1/workloads")
    assert listed.status_code == 200, listed.text
    assert listed.json()["workloads"] == []


FORM = {"grant_type": "client_credentials", "client_id": ADMIN_ID, "client_secret": ADMIN_SECRET}
RUN_AI = {"grantType": "client_credentials", "clientID": ADMIN_ID, "clientSecret": ADMIN_SECRET}


@pytest.mark.parametrize(
    ("body", "answer_fields"),
    [
        # A form is answered in RFC 6749 section 5.1 terms, and never cached.
        ({"data": FORM}, {"access_token", "token_type", "expires_in"}),
        # Run:ai's JSON body keeps Run:ai's answer.
        ({"json": RUN_AI}, {"accessToken", "expiresIn"}),
    ],
)
def test_each_encoding_is_answered_in_its_own_terms(token_url, body, answer_fields):
    response = httpx.post(token_url, **body)
    assert response.status_code == 200, response.text
    assert set(response.json()) == answer_fields
    assert (response.headers.get("cache-control") == "no-store") == ("data" in body)


def test_a_wrong_secret_is_an_oauth_error_the_client_raises(token_url):
    with (
        OAuth2Client(ADMIN_ID, "not-the-secret") as oauth,
        pytest.raises(OAuthError) as refused,
    ):
        oauth.fetch_token(token_url, grant_type="client_credentials")
    assert refused.value.error == "invalid_client"


@pytest.mark.parametrize(
    ("body", "headers", "error", "mentions"),
    [
        ("client_id=a&client_secret=b", {}, "invalid_request", "grant_type"),
        (
            "grant_type=client_credentials&grant_type=password",
            {},
            "invalid_request",
            "more than once",
        ),
        (
            "grant_type=device_code&client_id=a&client_secret=b",
            {},
            "unsupported_grant_type",
            "device_code",
        ),
        (
            f"grant_type=client_credentials&client_secret={ADMIN_SECRET}",
            {"Authorization": "Basic " + base64.b64encode(f"{ADMIN_ID}:x".encode()).decode()},
            "invalid_request",
            "not both",
        ),
        (
            "grant_type=client_credentials",
            {"Authorization": "Basic %%%"},
            "invalid_request",
            "base64",
        ),
    ],
)
def test_bad_forms_are_400_in_both_error_shapes(token_url, body, headers, error, mentions):
    headers = {"Content-Type": "application/x-www-form-urlencoded", **headers}
    response = httpx.post(token_url, content=body, headers=headers)
    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["code"] == 400 and answer["error"] == error
    assert mentions in answer["message"] and answer["error_description"] == answer["message"]


@pytest.mark.parametrize("body", [b"{", b'{"grantType": "client_credentials",}', b"not json"])
def test_malformed_json_says_so(token_url, body):
    response = httpx.post(token_url, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    answer = response.json()
    assert answer["message"] == "Invalid request body: the body is not valid JSON"
    assert "error" not in answer


def test_json_field_errors_still_name_the_field(token_url):
    response = httpx.post(token_url, json={"grantType": "bogus"})
    assert response.status_code == 400
    assert "'grantType'" in response.json()["message"]
