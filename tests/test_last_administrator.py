"""The tenant keeps a System administrator who can sign in: no change through the API leaves
it without one (only ``gpufleet access restore-admin`` on the database would let anyone in)."""

from __future__ import annotations

import threading

import pytest

from gpufleet.auth import service_accounts
from gpufleet.auth.administration import FULL_ACCESS, Actor
from gpufleet.core.errors import Invalid
from tests.support.access import bearer, grant, new_service_account, token_for
from tests.support.databases import ADMIN_ID

SERVICE_ACCOUNTS = "/api/v1/service-accounts"
RULES = "/api/v1/authorization/access-rules"


def _admin_account_id(client) -> str:
    (admin,) = [a for a in client.get(SERVICE_ACCOUNTS).json() if a["clientId"] == ADMIN_ID]
    return admin["id"]


def _admin_rule_id(client) -> int:
    rules = client.get(RULES, params={"subjectIds": ADMIN_ID}).json()["accessRules"]
    (rule,) = [r for r in rules if r["roleName"] == "System administrator"]
    return rule["id"]


def _refused(response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == status
    assert "System administrator" in body["message"]
    return body["message"]


def test_the_last_administrator_cannot_be_disabled_deleted_or_revoked(client):
    account_id, rule_id = _admin_account_id(client), _admin_rule_id(client)
    message = _refused(
        client.patch(f"{SERVICE_ACCOUNTS}/{account_id}", json={"enabled": False}), 400
    )
    assert "cannot be disabled" in message and "Grant the role to another subject" in message
    _refused(client.delete(f"{RULES}/{rule_id}"), 403)
    batch = client.post(f"{RULES}/batch", json={"ids": [str(rule_id)], "action": "delete"})
    assert [f["code"] for f in batch.json()["failed"]] == [403]
    # Still an administrator: every refusal left the rule and the account as they were.
    assert client.get(f"{SERVICE_ACCOUNTS}/{account_id}").json()["enabled"] is True
    assert client.get(f"{RULES}/{rule_id}").json()["deletedAt"] is None

    # Another administrator account, the only one left once the first is gone.
    other = new_service_account(client, "other-admin")
    assert grant(client, other["clientId"], "system-administrator", "tenant").status_code == 201
    as_other = bearer(token_for(client, other["clientId"], other["clientSecret"]))
    assert client.delete(f"{SERVICE_ACCOUNTS}/{account_id}", headers=as_other).status_code == 204
    listed = client.get(RULES, params={"subjectIds": other["clientId"]}, headers=as_other)
    (other_rule,) = listed.json()["accessRules"]
    _refused(client.delete(f"{RULES}/{other_rule['id']}", headers=as_other), 403)


def test_the_last_administrator_cannot_be_deleted(client, engine):
    """Through the API only an administrator deletes accounts, and never itself; the check
    holds for any other actor too (one working on the database, as the commands do)."""
    actor = Actor("cli", FULL_ACCESS)
    with engine.connect() as conn, pytest.raises(Invalid, match="cannot be deleted"):
        service_accounts.delete_service_account(conn, actor, _admin_account_id(client))


def test_an_administrator_may_step_down_while_another_remains(client):
    user_rule = grant(client, "alice", "system-administrator", "tenant", subject_type="user")
    assert user_rule.status_code == 201
    assert client.delete(f"{RULES}/{_admin_rule_id(client)}").status_code == 204


def test_a_disabled_account_is_no_administrator(client):
    other = new_service_account(client, "other-admin")
    assert grant(client, other["clientId"], "system-administrator", "tenant").status_code == 201
    assert (
        client.patch(f"{SERVICE_ACCOUNTS}/{other['id']}", json={"enabled": False}).status_code
        == 200
    )
    _refused(client.delete(f"{RULES}/{_admin_rule_id(client)}"), 403)
    # Disabling an account that is no administrator, or enabling one, is never refused.
    viewer = new_service_account(client, "viewer")
    grant(client, viewer["clientId"], "viewer", "tenant")
    assert (
        client.patch(f"{SERVICE_ACCOUNTS}/{viewer['id']}", json={"enabled": False}).status_code
        == 200
    )
    assert (
        client.patch(f"{SERVICE_ACCOUNTS}/{other['id']}", json={"enabled": True}).status_code == 200
    )
    assert (
        client.patch(
            f"{SERVICE_ACCOUNTS}/{_admin_account_id(client)}", json={"enabled": False}
        ).status_code
        == 200
    )


def test_two_administrators_disabled_at_once_leave_one(client, engine):
    """Each change counts the administrators it would leave; the second waits for the first to
    commit and then counts what the first left, so the two cannot each leave the other."""
    other = new_service_account(client, "other-admin")
    assert grant(client, other["clientId"], "system-administrator", "tenant").status_code == 201
    actor = Actor("test", FULL_ACCESS)
    outcome: dict[str, object] = {}

    def disable_other() -> None:
        with engine.connect() as second:
            try:
                service_accounts.set_enabled(second, actor, other["id"], False)
                second.commit()
                outcome["second"] = "disabled"
            except Invalid as error:
                outcome["second"] = error

    with engine.connect() as first:
        service_accounts.set_enabled(first, actor, _admin_account_id(client), False)
        racer = threading.Thread(target=disable_other)
        racer.start()
        racer.join(1.0)
        assert racer.is_alive(), "the second change did not wait for the first"
        first.commit()
    racer.join(30)
    assert isinstance(outcome["second"], Invalid), outcome
    with engine.connect() as conn:
        kept = service_accounts.get_service_account(conn, actor, other["id"])
    assert not kept.disabled
