"""The official SDK with a non-admin access key sees only the workloads of its scope."""

from __future__ import annotations

import uuid

import httpx
import pytest
from runai.api_client import ApiClient
from runai.configuration import Configuration
from runai.exceptions import ApiException
from runai.runai_client import RunaiClient

from tests.support.factories import insert, workload

pytestmark = pytest.mark.e2e


def test_viewer_key_through_the_sdk(live_server, engine):
    vision = insert(
        engine,
        [workload(projectId="10", projectName="vision", departmentId="2") for _ in range(7)],
    )
    nlp = insert(
        engine,
        [workload(projectId="11", projectName="nlp", departmentId="3") for _ in range(5)],
    )
    admin = live_server.auth_headers()
    with httpx.Client(base_url=live_server.base_url, headers=admin, timeout=30) as http:
        key = http.post("/api/v1/access-keys", json={"name": "vision-viewer"}).json()
        rule = http.post(
            "/api/v1/authorization/access-rules",
            json={
                "subjectType": "accessKey",
                "subjectId": key["clientId"],
                "roleName": "viewer",
                "scopeType": "project",
                "scopeId": "10",
            },
        )
        assert rule.status_code == 201, rule.text

    config = Configuration(
        client_id=key["clientId"],
        client_secret=key["clientSecret"],
        runai_base_url=live_server.base_url,
    )
    sdk = RunaiClient(ApiClient(config)).workloads.workloads
    listed = sdk.get_workloads(limit=500).data["workloads"]
    assert sorted(w["id"] for w in listed) == sorted(str(w["id"]) for w in vision)
    assert sdk.count_workloads().data["count"] == len(vision)
    assert sdk.count_workloads(filter_by=["projectId==11"]).data["count"] == 0
    assert sdk.get_workload(str(vision[0]["id"])).data["projectName"] == "vision"
    for hidden in (str(nlp[0]["id"]), str(uuid.uuid4())):
        with pytest.raises(ApiException) as caught:
            sdk.get_workload(hidden)
        assert caught.value.status == 404

    # A key without any rule is refused outright.
    with httpx.Client(base_url=live_server.base_url, headers=admin, timeout=30) as http:
        bare = http.post("/api/v1/access-keys", json={"name": "no-rules"}).json()
    bare_sdk = RunaiClient(
        ApiClient(
            Configuration(
                client_id=bare["clientId"],
                client_secret=bare["clientSecret"],
                runai_base_url=live_server.base_url,
            )
        )
    ).workloads.workloads
    with pytest.raises(ApiException) as caught:
        bare_sdk.get_workloads()
    assert caught.value.status == 403
