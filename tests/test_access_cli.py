"""``gpufleet access …`` through the real command-line entry point against a real server process,
signed in as its administrator; ``access bootstrap`` on a database no server has prepared."""

from __future__ import annotations

import io
import json

import httpx
import pytest
import yaml

from gpufleet.cli import main
from tests.support.databases import ADMIN_ID, ADMIN_SECRET
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(module_database_url: str, tmp_path_factory):
    with ServerProcess(module_database_url, log_dir=tmp_path_factory.mktemp("server")) as process:
        yield process


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _login(capsys, monkeypatch, url: str, client_id: str, secret: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(secret + "\n"))
    code, _, err = _run(capsys, "login", url, "--client-id", client_id)
    assert code == 0, err


@pytest.fixture
def cli(server, tmp_path, monkeypatch, capsys):
    """``cli(*argv)``: the command's exit code, stdout and stderr, as the administrator."""
    monkeypatch.setenv("GPUFLEET_CONFIG", str(tmp_path / "config.json"))
    monkeypatch.delenv("GPUFLEET_PROFILE", raising=False)
    _login(capsys, monkeypatch, server.base_url, ADMIN_ID, ADMIN_SECRET)
    return lambda *argv: _run(capsys, *argv)


def _register_cluster(capsys, database_url: str, name: str) -> str:
    """A cluster the server knows, registered the operator's way (on the database)."""
    register = ("clusters", "register", name, "--server-url", "http://s")
    code, out, err = _run(capsys, *register, "--database-url", database_url)
    assert code == 0, err
    return yaml.safe_load(out)["stringData"]["GPUFLEET_AGENT_CLUSTER_ID"]


def _token(server, client_id: str, secret: str) -> httpx.Response:
    body = {"grantType": "client_credentials", "clientID": client_id, "clientSecret": secret}
    return httpx.post(f"{server.base_url}/api/v1/token", json=body, timeout=30.0)


def test_service_account_rule_and_audit_round_trip(cli, capsys, server):
    cluster_id = _register_cluster(capsys, server.database_url, "gpu-north")
    code, out, err = cli("access", "service-accounts", "create", "nightly-report", "-o", "json")
    assert code == 0, err
    (created,) = json.loads(out)
    assert created["clientSecret"] and created["id"]
    assert "shown once" in err

    grant = ("access", "rules", "grant", "--subject-id", "nightly-report", "--role", "Viewer")
    code, out, err = cli(*grant, "--scope-type", "cluster", "--scope-id", cluster_id, "-o", "json")
    assert code == 0, err
    (rule,) = json.loads(out)
    assert (rule["roleId"], rule["roleName"]) == (4, "Viewer")
    # The name was turned into the client id, which is what the account's tokens carry.
    assert rule["subjectId"] == created["clientId"] and created["clientId"] in err
    assert _token(server, created["clientId"], created["clientSecret"]).status_code == 200

    code, out, _ = cli("access", "service-accounts", "list")
    assert code == 0
    (line,) = [line for line in out.splitlines() if "nightly-report" in line]
    assert created["clientId"] in line and "true" in line
    code, out, _ = cli("access", "rules", "list", "-f", f"subjectId=={created['clientId']}")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()[1:]] == [str(rule["id"])]

    code, out, _ = cli("access", "service-accounts", "disable", created["id"], "-o", "json")
    assert code == 0
    assert json.loads(out)[0]["enabled"] is False
    assert _token(server, created["clientId"], created["clientSecret"]).status_code == 400
    code, out, _ = cli("access", "rules", "revoke", str(rule["id"]))
    assert (code, out.strip()) == (0, f"revoked access rule {rule['id']}")
    code, out, _ = cli("access", "rules", "list", "-o", "json")
    assert rule["id"] not in [r["id"] for r in json.loads(out)]

    code, out, _ = cli("access", "audit", "-o", "json", "--limit", "10")
    assert code == 0
    changes = [
        (e["action"], e["entity_type"], e["subject"])
        for e in json.loads(out)
        if e["action"] != "sign-in"
    ]
    # Audited under the name of the administrator who ran the commands.
    assert changes[:4] == [
        ("delete", "access-rule", ADMIN_ID),
        ("update", "service-account", ADMIN_ID),
        ("create", "access-rule", ADMIN_ID),
        ("create", "service-account", ADMIN_ID),
    ]
    code, out, _ = cli("access", "audit", "-o", "json", "--filter", "action==sign-in")
    assert created["clientId"] in {e["subject"] for e in json.loads(out)}
    code, out, _ = cli("access", "audit", "-o", "csv", "--limit", "1")
    assert out.splitlines()[0].startswith("TIME,SUBJECT,ACTION")


def test_unknown_scopes_are_refused_unless_allowed(cli):
    code, out, err = cli("access", "service-accounts", "create", "reporting", "-o", "json")
    (account,) = json.loads(out)
    grant = ("access", "rules", "grant", "--subject-id", account["clientId"], "--role", "3")
    unknown = ("--scope-type", "department", "--scope-id", "42")
    code, _, err = cli(*grant[:3], "--subject-id", "no-such-key", "--role", "3", *unknown)
    assert code == 4 and "'no-such-key'" in err
    code, _, err = cli(*grant, *unknown)
    assert code == 4
    assert "--allow-unknown-scope" in err and len(err.strip().splitlines()) == 1
    code, out, err = cli(*grant, *unknown, "--allow-unknown-scope", "-o", "json")
    assert code == 0, err
    assert json.loads(out)[0]["scopeId"] == "42"
    assert json.loads(out)[0]["roleName"] == "L1 researcher"


def test_errors_are_one_line_with_the_exit_code_of_their_kind(cli, capsys, monkeypatch, server):
    code, _, err = cli("access", "service-accounts", "regenerate-secret", "no-such-account")
    assert code == 4  # not found
    assert err == (
        "gpufleet: error: no service account has the id, client id or name 'no-such-account'\n"
    )
    code, _, err = cli("access", "rules", "revoke", "999999")
    assert code == 4
    assert err.startswith("gpufleet: error: HTTP 404") and err.count("\n") == 1
    tenant = ("--scope-type", "tenant", "--subject-type", "user", "--subject-id", "x")
    code, _, err = cli("access", "rules", "grant", "--role", "cluster-agent", *tenant)
    assert code == 2  # the request itself is wrong
    assert "HTTP 400" in err and "cluster" in err and err.count("\n") == 1
    code, _, err = cli("access", "service-accounts", "create", "twice")
    assert code == 0
    code, _, err = cli("access", "service-accounts", "create", "twice")
    assert code == 2 and "already exists" in err

    # A service account without rights: the server's 403 is an authorisation failure.
    code, out, _ = cli("access", "service-accounts", "create", "no-rights", "-o", "json")
    (account,) = json.loads(out)
    _login(capsys, monkeypatch, server.base_url, account["clientId"], account["clientSecret"])
    code, _, err = cli("access", "service-accounts", "list")
    assert code == 3
    assert err.startswith("gpufleet: error: HTTP 403") and err.count("\n") == 1

    monkeypatch.setenv("GPUFLEET_CONFIG", str(server.log_path.parent / "absent.json"))
    code, _, err = cli("access", "audit")
    assert code == 3 and "gpufleet login" in err


def test_signing_keys_rotate_list_and_revoke(cli):
    code, out, _ = cli("access", "signing-keys", "list", "-o", "json")
    (first,) = [key for key in json.loads(out) if key["active"]]
    code, out, _ = cli("access", "signing-keys", "rotate", "-o", "json")
    assert code == 0
    assert sum(key["active"] for key in json.loads(out)) == 2
    # The profile's token was signed by the revoked key: the client signs in again by itself.
    code, out, err = cli("access", "signing-keys", "revoke", first["kid"], "-o", "json")
    assert code == 0, err
    assert {key["kid"]: key["active"] for key in json.loads(out)}[first["kid"]] is False
    code, out, err = cli("access", "signing-keys", "list")
    assert code == 0, err
    assert first["kid"] in out


def test_bootstrap_creates_the_first_administrator_once(
    capsys, monkeypatch, database_url, tmp_path
):
    for name in ("GPUFLEET_ADMIN_CLIENT_ID", "GPUFLEET_ADMIN_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    code, out, err = _run(capsys, "access", "bootstrap", "--database-url", database_url)
    assert code == 0, err
    fields = dict(line.split(":", 1) for line in out.splitlines() if line.startswith("  "))
    client_id, secret = fields["  client id"].strip(), fields["  client secret"].strip()
    code, out, _ = _run(capsys, "access", "bootstrap", "--database-url", database_url)
    assert (code, out.strip()) == (0, "An administrator exists already; nothing changed.")

    # A server started on that database keeps it (and adds no configured administrator beside
    # it); the administrator signs in and administers.
    configured = {"admin_id": "other", "admin_secret": "x" * 32, "log_dir": tmp_path}
    with ServerProcess(database_url, **configured) as server:
        monkeypatch.setenv("GPUFLEET_CONFIG", str(tmp_path / "config.json"))
        _login(capsys, monkeypatch, server.base_url, client_id, secret)
        code, out, err = _run(capsys, "access", "service-accounts", "list", "-o", "json")
        assert code == 0, err
        assert [a["clientId"] for a in json.loads(out)] == [client_id]

        # The break-glass path for a configured administrator other than the generated one:
        # the name "administrator" is taken, so the new account is named after its client id.
        monkeypatch.setenv("GPUFLEET_ADMIN_CLIENT_ID", "other")
        monkeypatch.setenv("GPUFLEET_ADMIN_CLIENT_SECRET", "x" * 32)
        code, _, err = _run(capsys, "access", "restore-admin", "--database-url", database_url)
        assert code == 0, err
        assert _token(server, "other", "x" * 32).status_code == 200
        code, out, err = _run(capsys, "access", "service-accounts", "list", "-o", "json")
        assert code == 0, err
        names = {a["clientId"]: a["name"] for a in json.loads(out)}
        assert names == {client_id: "administrator", "other": "administrator other"}

        # Both administrators came to be in the audit log: by the bootstrap, and by the
        # operator's break-glass, with the account and rule it had to create.
        code, out, err = _run(capsys, "access", "audit", "--limit", "100", "-o", "json")
        assert code == 0, err
        made = {
            (
                e["subject"],
                e["metadata"]["operation"],
                e["metadata"].get("subjectId", e["entity_id"]),
            )
            for e in json.loads(out)
        }
        assert {
            ("bootstrap", "service_account.create", client_id),
            ("bootstrap", "access_rule.create", client_id),
            ("cli", "service_account.create", "other"),
            ("cli", "access_rule.create", "other"),
            ("cli", "service_account.restore_admin", "other"),
        } <= made
