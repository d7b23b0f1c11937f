"""Which access rules a department administrator sees, through a real server process."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from gpufleet.settings import Settings
from gpufleet.store.engine import create_store_engine
from gpufleet.store.tables import projects
from tests.support.access import bearer, grant

RULES = "/api/v1/authorization/access-rules"


@pytest.fixture(scope="module")
def server(module_server, module_database_url):
    engine = create_store_engine(Settings(database_url=module_database_url))
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            projects.insert(),
            [
                {
                    "id": project,
                    "name": project,
                    "department_id": department,
                    "cluster_id": "c",
                    "namespace": f"runai-{project}",
                    "updated_at": now,
                }
                for project, department in (("p1", "d1"), ("p2", "d2"))
            ],
        )
    engine.dispose()
    return module_server


def _grant(http, headers, subject: str, role: str, scope_type: str, scope_id: str = "") -> int:
    kind = "service-account" if subject.startswith("gf-") else "user"
    response = grant(http, subject, role, scope_type, scope_id, subject_type=kind, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_a_department_administrator_sees_only_the_rules_inside_its_department(server):
    admin = server.auth_headers()
    with httpx.Client(base_url=server.base_url, timeout=30.0) as http:
        account = http.post(
            "/api/v1/service-accounts", json={"name": "d1-admin"}, headers=admin
        ).json()
        client_id = account["clientId"]
        own = _grant(http, admin, client_id, "department-administrator", "department", "d1")
        inside = {
            own,
            _grant(http, admin, "ann", "viewer", "department", "d1"),
            _grant(http, admin, "ann", "researcher", "project", "p1"),
        }
        outside = [
            _grant(http, admin, "ann", "viewer", scope_type, scope_id)
            for scope_type, scope_id in (("department", "d2"), ("project", "p2"), ("cluster", "c"))
        ]
        outside.append(_grant(http, admin, "ann", "viewer", "tenant"))

        token = bearer(server.token(client_id, account["clientSecret"]))
        listed = http.get(RULES, headers=token)
        assert listed.status_code == 200, listed.text
        assert {rule["id"] for rule in listed.json()["accessRules"]} == inside
        assert listed.json()["totalRecords"] == len(inside)
        assert http.get(f"{RULES}/count", headers=token).json() == {"count": len(inside)}
        assert http.get(f"{RULES}/{own}", headers=token).status_code == 200
        # A rule outside its departments is answered like an unknown one.
        for rule_id in outside:
            assert http.get(f"{RULES}/{rule_id}", headers=token).status_code == 404
        everything = http.get(RULES, headers=admin).json()["accessRules"]
        assert len(everything) == len(inside) + len(outside) + 1  # and the administrator's own

        # Revoking one is answered exactly like revoking an unknown id, alone or in a batch.
        unknown = max(outside) + 1000
        for rule_id in [*outside, unknown]:
            refused = http.delete(f"{RULES}/{rule_id}", headers=token)
            assert refused.status_code == 404, refused.text
            assert refused.json() == {"code": 404, "message": f"Access rule {rule_id} not found."}
        for action in ("validate_delete", "delete"):
            ids = [str(rule_id) for rule_id in [*outside, unknown]]
            batch = http.post(f"{RULES}/batch", json={"ids": ids, "action": action}, headers=token)
            assert batch.json()["succeeded"] == []
            assert [(f["id"], f["code"]) for f in batch.json()["failed"]] == [(i, 404) for i in ids]
        assert len(http.get(RULES, headers=admin).json()["accessRules"]) == len(everything)

        # Inside, it revokes what it could grant, and is told so of the rest.
        refused = http.delete(f"{RULES}/{own}", headers=token)
        assert refused.status_code == 403
        assert "revoke researcher or viewer" in refused.json()["message"]
        viewer = min(inside - {own})
        assert http.delete(f"{RULES}/{viewer}", headers=token).status_code == 204
