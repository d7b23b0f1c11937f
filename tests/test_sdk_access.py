"""The official SDK automates onboarding unchanged: a service account, a role by id, its token,
its scope, the audit trail, and the revocation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from runai import models
from runai.api_client import ApiClient
from runai.configuration import Configuration
from runai.exceptions import ApiException
from runai.runai_client import RunaiClient

from tests.support.databases import ADMIN_ID, ADMIN_SECRET
from tests.support.factories import insert, workload

pytestmark = pytest.mark.e2e


def _sdk(base_url: str, client_id: str, client_secret: str) -> RunaiClient:
    config = Configuration(
        client_id=client_id, client_secret=client_secret, runai_base_url=base_url
    )
    return RunaiClient(ApiClient(config))


def test_a_service_account_onboarded_through_the_sdk(live_server, engine):
    vision = insert(
        engine,
        [workload(projectId="10", projectName="vision", departmentId="2") for _ in range(7)],
    )
    nlp = insert(
        engine,
        [workload(projectId="11", projectName="nlp", departmentId="3") for _ in range(5)],
    )
    started = datetime.now(UTC) - timedelta(minutes=1)
    admin = _sdk(live_server.base_url, ADMIN_ID, ADMIN_SECRET)
    access = admin.authentication_and_authorization

    account = access.service_accounts.create_service_account(
        models.ServiceAccountCreationRequest(name="vision-reader")
    ).data
    listed = access.service_accounts.get_service_accounts().data
    assert [a["name"] for a in listed if a["id"] == account["id"]] == ["vision-reader"]
    viewer = next(r for r in access.roles.get_roles_v1().data if r["name"] == "Viewer")
    rule = access.access_rules.create_access_rule(
        models.AccessRuleCreationFields(
            subject_id=account["clientId"],
            subject_type="service-account",
            role_id=viewer["id"],
            scope_id="10",
            scope_type="project",
        )
    ).data
    assert (rule["roleId"], rule["roleName"], rule["scopeId"]) == (viewer["id"], "Viewer", "10")
    found = access.access_rules.get_access_rules(subject_ids=[account["clientId"]]).data
    assert [r["id"] for r in found["accessRules"]] == [rule["id"]]

    reader = _sdk(live_server.base_url, account["clientId"], account["clientSecret"])
    workloads = reader.workloads.workloads
    listed = workloads.get_workloads(limit=500).data["workloads"]
    assert sorted(w["id"] for w in listed) == sorted(str(w["id"]) for w in vision)
    assert workloads.count_workloads().data["count"] == len(vision)
    for hidden in (str(nlp[0]["id"]), str(uuid.uuid4())):
        with pytest.raises(ApiException) as caught:
            workloads.get_workload(hidden)
        assert caught.value.status == 404
    mine = reader.authentication_and_authorization.me.get_me_access_rules().data
    assert [r["id"] for r in mine["accessRules"]["accessRules"]] == [rule["id"]]

    trail = admin.audit.audit_logs.get_audit_logs(
        start=started, end=datetime.now(UTC) + timedelta(minutes=1), number_of_samples=1000
    ).data["audit_logs"]
    happened = {(e["action"], e.get("entity_type"), e.get("entity_id")) for e in trail}
    assert ("create", "service-account", account["clientId"]) in happened
    assert ("create", "access-rule", str(rule["id"])) in happened
    assert ("sign-in", "token", account["clientId"]) in happened

    access.access_rules.delete_access_rule(rule["id"])
    with pytest.raises(ApiException) as caught:
        workloads.get_workloads()
    assert caught.value.status == 403

    # The SDK's batch operations grant and revoke again.
    batch = access.access_rules.access_rules_batch_create(
        models.AccessRulesBatchCreateFields(
            payload=models.AccessRulesBatchCreateFieldsPayload(
                role_id=viewer["id"],
                subjects=[
                    models.AccessRuleSubjectsInner(
                        subject_id=account["clientId"], subject_type="service-account"
                    )
                ],
                scopes=[models.AccessRuleScopesInner(scope_id="10", scope_type="project")],
            )
        )
    ).data
    (regranted,) = batch["succeeded"]
    assert workloads.count_workloads().data["count"] == len(vision)
    revoked = access.access_rules.access_rules_batch(
        models.AccessRulesBatchFields(ids=[str(regranted["id"])], action="delete")
    ).data
    assert revoked["succeeded"] == [str(regranted["id"])]
    with pytest.raises(ApiException) as caught:
        workloads.count_workloads()
    assert caught.value.status == 403
