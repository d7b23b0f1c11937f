"""``gpufleet access …``: manage access keys and rules directly on the server's database.

For operators with access to the database (bootstrapping, break-glass); the same changes are
available over HTTP to administrators. Changes are audited with the actor ``cli``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from gpufleet.auth import administration, onboarding
from gpufleet.auth.administration import FULL_ACCESS, Actor
from gpufleet.auth.bootstrap import restore_admin
from gpufleet.client.exit_codes import exit_code_for_error
from gpufleet.core.errors import DomainError
from gpufleet.core.roles import Role, ScopeType, SubjectType
from gpufleet.settings import Settings
from gpufleet.store import access_keys, access_rules, audit
from gpufleet.store.engine import create_store_engine
from gpufleet.store.migrate import upgrade

CLI_ACTOR = Actor("cli", FULL_ACCESS)


def print_table(rows: list[dict], columns: list[str], as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(*columns, box=None, pad_edge=False)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    # Fit the terminal when there is one; never cut ids short when output goes to a pipe.
    Console(width=None if sys.stdout.isatty() else 1000).print(table)


def _keys(args, conn) -> None:
    match args.key_command:
        case "list":
            print_table(
                access_keys.list_access_keys(conn),
                ["clientId", "name", "createdAt", "lastUsedAt", "disabled"],
                args.json,
            )
        case "create":
            created = administration.create_key(conn, CLI_ACTOR, args.name)
            print_table([created], ["clientId", "clientSecret", "name"], args.json)
            print("The secret is shown once; store it now.", file=sys.stderr)
        case "rotate":
            rotated = administration.rotate_key(conn, CLI_ACTOR, args.client_id)
            print_table([rotated], ["clientId", "clientSecret"], args.json)
        case "disable" | "enable":
            disabled = args.key_command == "disable"
            key = administration.set_key_disabled(conn, CLI_ACTOR, args.client_id, disabled)
            print_table([key], ["clientId", "name", "disabled"], args.json)
        case "delete":
            administration.delete_key(conn, CLI_ACTOR, args.client_id)
            print(f"deleted {args.client_id}")


def _restore_admin(conn, settings: Settings) -> None:
    client_id = restore_admin(conn, settings)
    audit.record(conn, actor=CLI_ACTOR.name, action="access_key.restore_admin", target=client_id)
    print(f"restored the administrator {client_id}; its earlier tokens are revoked")


def _rules(args, conn) -> None:
    match args.rule_command:
        case "list":
            rules = [administration.rule_wire(r) for r in access_rules.list_rules(conn)]
            columns = ["id", "subjectType", "subjectId", "roleName", "scopeType", "scopeId"]
            print_table(rules, columns, args.json)
        case "grant":
            rule = _grant(args, conn)
            print_table([rule], ["id", "subjectId", "roleName", "scopeType", "scopeId"], args.json)
        case "revoke":
            administration.revoke_rule(conn, CLI_ACTOR, args.rule_id)
            print(f"revoked rule {args.rule_id}")


def _grant(args, conn) -> dict:
    subject_type, subject_id = SubjectType(args.subject_type), args.subject_id
    role, scope_type, scope_id = Role(args.role), ScopeType(args.scope_type), args.scope_id or ""
    scope_id = "" if scope_type is ScopeType.TENANT else scope_id
    # What is wrong with the rule itself is said before what is missing from the store.
    administration.check_rule_shape(role, scope_type, scope_id)
    if subject_type is SubjectType.ACCESS_KEY:
        # A key's name is what `keys create` prints beside it; a rule on the name would match
        # no token, so the name is turned into the client id (or refused).
        subject_id = onboarding.resolve_access_key(conn, subject_id)
        if subject_id != args.subject_id:
            print(f"access key {args.subject_id!r} is client id {subject_id}", file=sys.stderr)
    if not args.allow_unknown_scope:
        onboarding.require_known_scope(conn, scope_type, scope_id)
    return administration.grant_rule(
        conn,
        CLI_ACTOR,
        subject_type=subject_type,
        subject_id=subject_id,
        role=role,
        scope_type=scope_type,
        scope_id=scope_id,
    )


def _signing_keys(args, conn) -> None:
    match args.signing_command:
        case "rotate":
            administration.rotate_signing_key(conn, CLI_ACTOR)
        case "revoke":
            administration.revoke_signing_key(conn, CLI_ACTOR, args.kid)
    keys = administration.signing_keys(conn, CLI_ACTOR)
    print_table(keys, ["kid", "algorithm", "createdAt", "active"], args.json)


def _audit(args, conn) -> None:
    entries, _next = audit.list_entries(conn, offset=0, limit=args.limit)
    print_table(entries, ["at", "actor", "action", "target", "sourceIp"], args.json)


def run(args: argparse.Namespace, settings: Settings, handler: Callable) -> int:
    engine = create_store_engine(settings)
    upgrade(engine)
    try:
        with engine.begin() as conn:
            handler(args, conn)
    except DomainError as exc:
        print(f"gpufleet: {exc}", file=sys.stderr)
        return exit_code_for_error(exc)
    finally:
        engine.dispose()
    return 0


def register(commands, add_settings_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``access keys|rules|audit`` to the top-level parser."""
    access = commands.add_parser("access", help="access keys, access rules and the audit log")
    groups = access.add_subparsers(dest="access_command", required=True)

    def leaf(parent, name: str, help_text: str, handler: Callable) -> argparse.ArgumentParser:
        parser = parent.add_parser(name, help=help_text)
        add_settings_flags(parser)
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
        parser.set_defaults(handler=lambda a, s: run(a, s, handler))
        return parser

    keys = groups.add_parser("keys", help="access keys (service accounts)")
    key_commands = keys.add_subparsers(dest="key_command", required=True)
    leaf(key_commands, "list", "list access keys", _keys)
    leaf(key_commands, "create", "create an access key", _keys).add_argument("name")
    for name in ("rotate", "disable", "enable", "delete"):
        leaf(key_commands, name, f"{name} an access key", _keys).add_argument("client_id")
    restore = key_commands.add_parser(
        "restore-admin",
        help="enable the configured bootstrap administrator with the environment's secret",
    )
    add_settings_flags(restore)
    restore.set_defaults(handler=lambda a, s: run(a, s, lambda _a, conn: _restore_admin(conn, s)))

    rules = groups.add_parser("rules", help="access rules")
    rule_commands = rules.add_subparsers(dest="rule_command", required=True)
    leaf(rule_commands, "list", "list access rules", _rules)
    grant = leaf(rule_commands, "grant", "grant a role in a scope", _rules)
    grant.add_argument(
        "--subject-type", choices=[s.value for s in SubjectType], default="accessKey"
    )
    grant.add_argument(
        "--subject-id", required=True, help="client id or name of an access key, user or group"
    )
    grant.add_argument("--role", choices=[r.value for r in Role], required=True)
    grant.add_argument("--scope-type", choices=[s.value for s in ScopeType], required=True)
    grant.add_argument("--scope-id", default="")
    grant.add_argument(
        "--allow-unknown-scope",
        action="store_true",
        help="grant in a cluster, department or project that has not reported yet",
    )
    leaf(rule_commands, "revoke", "delete an access rule", _rules).add_argument("rule_id", type=int)

    signing = groups.add_parser("signing-keys", help="the keys that sign access tokens")
    signing_commands = signing.add_subparsers(dest="signing_command", required=True)
    leaf(signing_commands, "list", "list signing keys", _signing_keys)
    leaf(signing_commands, "rotate", "add a key that signs from now on", _signing_keys)
    leaf(signing_commands, "revoke", "stop trusting a key", _signing_keys).add_argument("kid")

    log = leaf(groups, "audit", "show the newest audit log entries", _audit)
    log.add_argument("--limit", type=int, default=50)
