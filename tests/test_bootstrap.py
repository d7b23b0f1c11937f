"""What a new server creates before anyone can sign in (the first signing key, the administrator's
service account and rule) is in the audit log like any other creation, by the system actor
``bootstrap``, and written in the transaction that creates it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gpufleet.api.app import create_app
from gpufleet.auth.administration import BOOTSTRAP_ACTOR, CLI_ACTOR, DEMO_ACTOR
from gpufleet.settings import SYSTEM_ACTOR_NAMES, Settings
from gpufleet.store import audit
from gpufleet.store.engine import create_store_engine
from gpufleet.store.tables import access_keys, access_rules, audit_log
from tests.support.access import audit_entries, bearer, grant, new_service_account, token_for
from tests.support.databases import ADMIN_ID, fresh_database

RULES = "/api/v1/authorization/access-rules"


def _seen(entries: list[dict]) -> list[tuple]:
    return [(e["action"], e.get("entity_type"), e.get("entity_id")) for e in entries]


def _administrator_rule(client: TestClient, client_id: str) -> dict:
    listed = client.get(RULES, params={"filterBy": f"subjectId=={client_id}"}).json()
    (rule,) = listed["accessRules"]
    assert rule["roleName"] == "System administrator" and rule["scopeType"] == "tenant"
    return rule


def test_the_configured_administrator_is_audited_as_created_by_bootstrap(client):
    accounts = client.get("/api/v1/service-accounts").json()
    (account,) = [a for a in accounts if a["clientId"] == ADMIN_ID]
    rule = _administrator_rule(client, ADMIN_ID)
    # The rows name the actor the audit log names.
    assert account["createdBy"] == rule["createdBy"] == "bootstrap"

    entries = audit_entries(client, "subject==bootstrap")
    assert _seen(entries) == [
        ("create", "service-account", ADMIN_ID),
        ("create", "access-rule", str(rule["id"])),
    ]
    assert {e["subject_type"] for e in entries} == {"App"}
    made, granted = entries
    assert made["entity_name"] == "administrator"
    assert made["metadata"] == {"operation": "service_account.create", "id": account["id"]}
    assert granted["metadata"] == {
        "operation": "access_rule.create",
        "subjectType": "service-account",
        "subjectId": ADMIN_ID,
        "roleId": "1",
        "roleName": "System administrator",
        "scopeType": "tenant",
        "scopeId": "1",
    }

    # The same shapes as the entries of an administrator's own creations.
    other = new_service_account(client, "shaped")
    assert grant(client, other["clientId"], "viewer", "tenant").status_code == 201
    by_admin = audit_entries(client, f"subject=={ADMIN_ID}", "action==create")
    assert [set(e) for e in by_admin] == [set(e) for e in entries]
    # A request's entries keep where it came from; the bootstrap's come from no address.
    requested = [set(e["metadata"]) - {"sourceAddress"} for e in by_admin]
    assert requested == [set(e["metadata"]) for e in entries]


def test_a_new_database_shows_its_signing_key_and_generated_administrator(
    request, tmp_path, monkeypatch
):
    for name in ("GPUFLEET_ADMIN_CLIENT_ID", "GPUFLEET_ADMIN_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with fresh_database(request, tmp_path, migrated=False) as url:
        app = create_app(Settings(database_url=url))
        try:
            generated = app.state.generated_admin
            with TestClient(app, raise_server_exceptions=False) as client:
                token = token_for(client, generated.client_id, generated.client_secret)
                client.headers.update(bearer(token))
                (key,) = client.get("/api/v1/gpufleet/signing-keys").json()["signingKeys"]
                rule = _administrator_rule(client, generated.client_id)
                entries = audit_entries(client, "subject==bootstrap")
        finally:
            app.state.gpufleet.engine.dispose()
    assert _seen(entries) == [
        ("create", "signing-key", key["kid"]),
        ("create", "service-account", generated.client_id),
        ("create", "access-rule", str(rule["id"])),
    ]
    assert entries[0]["metadata"] == {"operation": "signing_key.create"}


def test_an_administrator_is_never_left_without_its_audit_entries(settings, monkeypatch):
    def failing(*args, **kwargs):
        raise RuntimeError("the audit log is unwritable")

    monkeypatch.setattr(audit, "record", failing)
    with pytest.raises(RuntimeError):
        create_app(settings)
    engine = create_store_engine(settings)
    try:
        with engine.connect() as conn:
            for table in (access_keys, access_rules, audit_log):
                count = sa.select(sa.func.count()).select_from(table)
                assert conn.execute(count).scalar_one() == 0, table.name
    finally:
        engine.dispose()


def test_no_administrator_can_be_named_like_a_system_actor():
    assert {a.name for a in (BOOTSTRAP_ACTOR, CLI_ACTOR, DEMO_ACTOR)} == SYSTEM_ACTOR_NAMES
    for name in SYSTEM_ACTOR_NAMES:
        with pytest.raises(ValueError, match="audit log"):
            Settings(admin_client_id=name)
