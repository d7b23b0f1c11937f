"""``gpufleet access …`` against a real database, through the real command-line entry point."""

from __future__ import annotations

import json

from gpufleet.cli import main


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_keys_rules_and_audit_round_trip(capsys, database_url, anonymous_client):
    db = ["--database-url", database_url]
    code, out, err = _run(capsys, "access", "keys", "create", "nightly-report", "--json", *db)
    assert code == 0
    (created,) = json.loads(out)
    assert created["clientSecret"]
    assert "shown once" in err

    code, out, _ = _run(
        capsys,
        "access",
        "rules",
        "grant",
        "--subject-id",
        created["clientId"],
        "--role",
        "viewer",
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
    assert rule["roleName"] == "viewer"

    # The key works against the server that shares the database.
    response = anonymous_client.post(
        "/api/v1/token",
        json={
            "grantType": "client_credentials",
            "clientID": created["clientId"],
            "clientSecret": created["clientSecret"],
        },
    )
    assert response.status_code == 200

    code, out, _ = _run(capsys, "access", "keys", "list", *db)
    assert code == 0
    assert created["clientId"] in out
    assert "nightly-report" in out

    code, out, _ = _run(capsys, "access", "keys", "disable", created["clientId"], "--json", *db)
    assert json.loads(out)[0]["disabled"] is True

    code, out, _ = _run(capsys, "access", "rules", "revoke", str(rule["id"]), *db)
    assert code == 0

    code, out, _ = _run(capsys, "access", "audit", "--json", "--limit", "10", *db)
    entries = [entry for entry in json.loads(out) if entry["action"] != "token.issue"]
    actions = [entry["action"] for entry in entries]
    assert actions[:4] == [
        "access_rule.delete",
        "access_key.disable",
        "access_rule.create",
        "access_key.create",
    ]
    assert all(entry["actor"] == "cli" for entry in entries[:4])
    issued = [entry for entry in json.loads(out) if entry["action"] == "token.issue"]
    assert [entry["actor"] for entry in issued] == [created["clientId"]]


def test_errors_are_one_line_with_the_exit_code_of_their_kind(capsys, database_url):
    db = ["--database-url", database_url]
    code, _, err = _run(capsys, "access", "keys", "rotate", "no-such-key", *db)
    assert code == 4  # not found, as for the terminal client
    assert err.strip() == "gpufleet: Access key no-such-key not found."
    code, _, err = _run(
        capsys,
        "access",
        "rules",
        "grant",
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
