"""``gpufleet access …`` against a real database, through the real command-line entry point."""

from __future__ import annotations

import json

from gpufleet.cli import main


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_service_accounts_rules_and_audit_round_trip(capsys, database_url, anonymous_client):
    db = ["--database-url", database_url]
    create = ("access", "service-accounts", "create", "nightly-report", "--json", *db)
    code, out, err = _run(capsys, *create)
    assert code == 0
    (created,) = json.loads(out)
    assert created["clientSecret"] and created["id"]
    assert "shown once" in err

    code, out, _ = _run(
        capsys,
        "access",
        "rules",
        "grant",
        "--subject-id",
        "nightly-report",  # the name: turned into the client id
        "--role",
        "Viewer",
        "--scope-type",
        "project",
        "--scope-id",
        "p1",
        "--allow-unknown-scope",  # no agent has reported project p1
        "--json",
        *db,
    )
    assert code == 0
    (rule,) = json.loads(out)
    assert (rule["roleId"], rule["roleName"]) == (4, "Viewer")
    assert rule["subjectId"] == created["clientId"]

    # The account works against the server that shares the database.
    response = anonymous_client.post(
        "/api/v1/token",
        json={
            "grantType": "client_credentials",
            "clientID": created["clientId"],
            "clientSecret": created["clientSecret"],
        },
    )
    assert response.status_code == 200

    code, out, _ = _run(capsys, "access", "service-accounts", "list", *db)
    assert code == 0
    assert created["clientId"] in out and "nightly-report" in out

    disable = ("access", "service-accounts", "disable", created["clientId"], "--json", *db)
    code, out, _ = _run(capsys, *disable)
    assert json.loads(out)[0]["enabled"] is False

    code, out, _ = _run(capsys, "access", "rules", "revoke", str(rule["id"]), *db)
    assert code == 0

    code, out, _ = _run(capsys, "access", "audit", "--json", "--limit", "10", *db)
    entries = json.loads(out)
    changes = [(e["action"], e["entity_type"]) for e in entries if e["action"] != "sign-in"]
    assert changes[:4] == [
        ("delete", "access-rule"),
        ("update", "service-account"),
        ("create", "access-rule"),
        ("create", "service-account"),
    ]
    assert all(e["subject"] == "cli" for e in entries if e["action"] != "sign-in")
    issued = [e["subject"] for e in entries if e["action"] == "sign-in"]
    assert issued == [created["clientId"]]
    filtered = ("access", "audit", "--json", "--filter", "action==sign-in", *db)
    code, out, _ = _run(capsys, *filtered)
    assert [e["subject"] for e in json.loads(out)] == issued


def test_errors_are_one_line_with_the_exit_code_of_their_kind(capsys, database_url):
    db = ["--database-url", database_url]
    rotate = ("access", "service-accounts", "regenerate-secret", "no-such-account", *db)
    code, _, err = _run(capsys, *rotate)
    assert code == 4  # not found, as for the terminal client
    assert err.strip() == (
        "gpufleet: No service account has the client id or name 'no-such-account'."
    )
    code, _, err = _run(
        capsys,
        "access",
        "rules",
        "grant",
        "--subject-type",
        "user",
        "--subject-id",
        "x",
        "--role",
        "cluster-agent",
        "--scope-type",
        "tenant",
        *db,
    )
    assert code == 2  # the request itself is wrong
    assert "cluster" in err
