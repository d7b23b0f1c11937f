"""Every access-administration answer served under a Run:ai path validates against the
reference schema of its operation and status, and the served OpenAPI document declares each
operation with the reference's parameters and statuses."""

from __future__ import annotations

import pytest

from tests.support.access import audit_window, bearer, grant, new_service_account, token_for
from tests.support.reference import ReferenceValidators, load_reference, resolved

DOCUMENT = "runai-adjacent-openapi.json"
ACCESS_PREFIXES = (
    "/api/v1/access-keys",
    "/api/v1/administration/access-keys",
    "/api/v1/service-accounts",
    "/api/v1/authorization",
    "/api/v1/audit",
)


@pytest.fixture(scope="module")
def reference() -> dict:
    return load_reference(DOCUMENT)


@pytest.fixture(scope="module")
def validators(reference) -> ReferenceValidators:
    return ReferenceValidators(reference)


def _access_operations(reference: dict) -> list[tuple[str, str]]:
    return [
        (path, method)
        for path, item in reference["paths"].items()
        if path.startswith(ACCESS_PREFIXES) and "metrics" not in path
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]


class Checked:
    """Sends requests and validates each JSON answer against the reference operation."""

    def __init__(self, client, validators: ReferenceValidators) -> None:
        self.client, self.validators = client, validators
        self.seen: set[tuple[str, str, str]] = set()

    def __call__(self, method: str, template: str, path: str | None = None, **kwargs):
        response = self.client.request(method.upper(), path or template, **kwargs)
        status = str(response.status_code)
        self.seen.add((template, method, status))
        operation = self.validators.document["paths"][template][method]
        if status not in operation["responses"]:
            # Bad input is a 400 even where the reference lists none (audit/log's missing end).
            assert status == "400", (template, method, status, response.text)
            self.validators.schema("Error").validate(response.json())
        elif response.headers.get("content-type", "").startswith("application/json"):
            self.validators.response(template, method, status).validate(response.json())
        return response


@pytest.fixture
def checked(client, validators) -> Checked:
    return Checked(client, validators)


def test_every_answer_validates_against_the_reference(checked, client, reference):
    window = audit_window()
    accounts = "/api/v1/service-accounts"
    created = checked("post", accounts, json={"name": "validated"}).json()
    account = f"{accounts}/{created['id']}"
    checked("get", accounts)
    checked("get", f"{accounts}/{{serviceAccountId}}", account)
    checked("patch", f"{accounts}/{{serviceAccountId}}", account, json={"enabled": False})
    checked("patch", f"{accounts}/{{serviceAccountId}}", account, json={"enabled": True})
    checked("post", f"{accounts}/{{serviceAccountId}}/secret", f"{account}/secret")
    checked("post", accounts, json={"name": "validated"})  # 409
    checked("post", accounts, json={"name": "Not Valid"})  # 400
    checked("get", f"{accounts}/{{serviceAccountId}}", f"{accounts}/nope")  # 404

    rules = "/api/v1/authorization/access-rules"
    body = {
        "subjectType": "service-account",
        "subjectId": created["clientId"],
        "roleId": 4,
        "scopeType": "project",
        "scopeId": "p1",
    }
    rule = checked("post", rules, json=body).json()
    checked("post", rules, json={**body, "roleId": 99})  # 404
    checked("post", rules, json={**body, "scopeId": ""})  # 400
    tenant_rule = checked("post", rules, json={**body, "scopeType": "tenant", "scopeId": "1"})
    assert tenant_rule.status_code == 201
    checked("get", rules, params={"filterBy": "roleId==4", "sortBy": "scopeName"})
    checked("get", rules, params={"includeDeleted": "true", "subjectIds": created["clientId"]})
    checked("get", f"{rules}/count", params={"search": "vali"})
    checked("get", f"{rules}/count", params={"filterBy": "bad"})  # 400
    one = f"{rules}/{{accessRuleId}}"
    checked("get", one, f"{rules}/{rule['id']}")
    checked("get", one, f"{rules}/999999")  # 404

    me = "/api/v1/authorization/me/access-rules"
    token = bearer(token_for(client, created["clientId"], client.post(
        f"{account}/secret").json()["clientSecret"]))  # fmt: skip
    checked("get", me, headers=token)
    checked("get", f"{me}/count", headers=token)
    checked("get", "/api/v1/authorization/permissions", headers=token)
    checked("get", "/api/v1/authorization/permissions")
    checked("get", "/api/v1/authorization/roles")
    checked("get", "/api/v1/authorization/roles/{roleIdPath}", "/api/v1/authorization/roles/1")
    checked("get", "/api/v1/authorization/roles/{roleIdPath}", "/api/v1/authorization/roles/7")
    checked("get", rules, headers=token)  # 403: a viewer manages nothing

    keys = "/api/v1/access-keys"
    key = checked("post", keys, json={"name": "my-key"}).json()
    checked("get", keys)
    checked("get", f"{keys}/{{accessKeyId}}", f"{keys}/{key['id']}")
    checked("post", f"{keys}/{{accessKeyId}}/secret", f"{keys}/{key['id']}/secret")
    checked("get", "/api/v1/administration/access-keys")
    checked("get", "/api/v1/administration/access-keys", headers=token)  # 403
    checked("delete", f"{keys}/{{accessKeyId}}", f"{keys}/{key['id']}")
    other = checked("post", keys, json={"name": "other-key"}).json()
    admin_one = "/api/v1/administration/access-keys/{accessKeyId}"
    checked("delete", admin_one, f"/api/v1/administration/access-keys/{other['id']}")
    checked("delete", admin_one, "/api/v1/administration/access-keys/nope")  # 404

    checked("delete", one, f"{rules}/{rule['id']}")
    checked("delete", one, f"{rules}/{rule['id']}")  # 404: already revoked
    checked("get", "/api/v1/audit/log", params={**window, "sortBy": "action", "offset": 1})
    checked("get", "/api/v1/audit/log", params={**window, "filterBy": "subject_type==App"})
    checked("get", "/api/v1/audit/log", params={"start": window["start"]})  # 400
    checked("get", "/api/v1/audit/log", params=window, headers=token)  # 403
    checked("get", "/api/v1/audit/log/file", params=window)
    checked("delete", f"{accounts}/{{serviceAccountId}}", account)
    checked("delete", f"{accounts}/{{serviceAccountId}}", account)  # 404

    operations = {(path, method) for path, method, _ in checked.seen}
    assert operations == set(_access_operations(reference))


def test_anonymous_answers_are_errors_in_the_reference_shape(anonymous_client, validators):
    error = validators.schema("Error")
    for path in ("/api/v1/service-accounts", "/api/v1/authorization/access-rules"):
        response = anonymous_client.get(path)
        assert response.status_code == 401
        error.validate(response.json())


def test_rules_of_every_role_and_scope_validate(client, validators):
    rule_schema = validators.schema("AccessRule")
    account = new_service_account(client)
    for role, scope_type, scope_id in (
        ("system-administrator", "tenant", ""),
        ("department-administrator", "department", "d1"),
        ("researcher", "cluster", "11111111-1111-4111-8111-111111111111"),
        ("cluster-agent", "cluster", "c1"),
    ):
        created = grant(client, account["clientId"], role, scope_type, scope_id)
        assert created.status_code == 201, created.text
        rule_schema.validate(created.json())


def _parameters(document: dict, path: str, method: str) -> list[tuple[str, str, bool]]:
    operation = document["paths"][path][method]
    return [
        (p["name"], p["in"], p.get("required", False))
        for p in (resolved(document, p) for p in operation.get("parameters", []))
    ]


def test_served_operations_match_the_reference(client, reference):
    served = client.get("/openapi.json").json()
    for path, method in _access_operations(reference):
        ours = served["paths"][path][method]
        theirs = reference["paths"][path][method]
        assert ours["operationId"] == theirs["operationId"], (path, method)
        assert _parameters(served, path, method) == _parameters(reference, path, method), path
        assert set(theirs["responses"]) <= set(ours["responses"]), (path, method)
