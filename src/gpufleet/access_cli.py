"""``gpufleet access …``: service accounts, access rules, signing keys and the audit log, directly
on the server's database.

For operators with access to the database (bootstrapping, break-glass); the same changes are
available over HTTP to administrators, and the commands print what those paths answer (Run:ai's
shapes: roles by numeric id, service accounts with their ``id``). Changes are audited with the
actor ``cli``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from gpufleet.auth import administration, onboarding, service_accounts
from gpufleet.auth.administration import FULL_ACCESS, Actor
from gpufleet.auth.bootstrap import restore_admin
from gpufleet.client.exit_codes import exit_code_for_error
from gpufleet.core.errors import DomainError
from gpufleet.core.roles import ROLE_IDS, ROLE_NAMES, ROLES_BY_ID, Role, ScopeType, SubjectType
from gpufleet.query.access import AccessRuleSelection, build_access_rule_page, build_audit_query
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


def _account_id(conn, reference: str) -> str:
    """The id of the service account with this id, client id or name."""
    if access_keys.get_credential(conn, access_keys.SERVICE_ACCOUNT, reference) is not None:
        return reference
    client_id = service_accounts.resolve_service_account(conn, reference)
    return access_keys.get_by_client_id(conn, client_id).id


_ACCOUNT_COLUMNS = ["id", "clientId", "name", "enabled", "createdAt", "lastLogin"]


def _service_accounts(args, conn) -> None:
    command = args.account_command
    if command == "list":
        rows = service_accounts.list_service_accounts(conn, CLI_ACTOR)
        print_table(rows, _ACCOUNT_COLUMNS, args.json)
        return
    if command == "create":
        created = service_accounts.create_service_account(conn, CLI_ACTOR, args.name)
        print_table([created], ["id", "clientId", "clientSecret", "name"], args.json)
        print("The secret is shown once; store it now.", file=sys.stderr)
        return
    account_id = _account_id(conn, args.account)
    match command:
        case "regenerate-secret":
            secret = service_accounts.regenerate_secret(conn, CLI_ACTOR, account_id)
            print_table(
                [{"id": account_id, "clientSecret": secret}], ["id", "clientSecret"], args.json
            )
        case "disable" | "enable":
            service_accounts.set_enabled(conn, CLI_ACTOR, account_id, command == "enable")
            row = service_accounts.get_service_account(conn, CLI_ACTOR, account_id)
            print_table([service_accounts.service_account_wire(row)], _ACCOUNT_COLUMNS, args.json)
        case "delete":
            service_accounts.delete_service_account(conn, CLI_ACTOR, account_id)
            print(f"deleted {args.account}")


def _restore_admin(conn, settings: Settings) -> None:
    client_id = restore_admin(conn, settings)
    administration.record(conn, CLI_ACTOR, "service_account.restore_admin", client_id)
    print(f"restored the administrator {client_id}; its earlier tokens are revoked")


_RULE_COLUMNS = ["id", "subjectType", "subjectId", "roleId", "roleName", "scopeType", "scopeId"]


def _rules(args, conn) -> None:
    match args.rule_command:
        case "list":
            page = build_access_rule_page(AccessRuleSelection(), sort_by="createdAt")
            rules = [administration.rule_wire(r) for r in access_rules.page_rules(conn, page)]
            print_table(rules, [*_RULE_COLUMNS, "scopeName"], args.json)
        case "grant":
            print_table([_grant(args, conn)], _RULE_COLUMNS, args.json)
        case "revoke":
            administration.revoke_rule(conn, CLI_ACTOR, args.rule_id)
            print(f"revoked rule {args.rule_id}")


def role_named(text: str) -> Role:
    """A role by its numeric id, its name (``Viewer``) or gpufleet's slug (``viewer``)."""
    if text.isdigit() and int(text) in ROLES_BY_ID:
        return ROLES_BY_ID[int(text)]
    for role in Role:
        if text in (role.value, ROLE_NAMES[role]):
            return role
    known = ", ".join(f"{ROLE_IDS[r]} ({r.value})" for r in Role)
    raise argparse.ArgumentTypeError(f"unknown role {text!r}; roles: {known}")


def _grant(args, conn) -> dict:
    subject_type, subject_id = SubjectType(args.subject_type), args.subject_id
    role, scope_type, scope_id = args.role, ScopeType(args.scope_type), args.scope_id or ""
    if scope_type is ScopeType.TENANT:
        scope_id = administration.tenant_scope_id(scope_id)
    # What is wrong with the rule itself is said before what is missing from the store.
    administration.check_rule_shape(role, scope_type, scope_id)
    if subject_type is SubjectType.SERVICE_ACCOUNT:
        # The name is what `service-accounts create` prints beside the client id; a rule on
        # the name would match no token, so the name is turned into the client id.
        subject_id = service_accounts.resolve_service_account(conn, subject_id)
        if subject_id != args.subject_id:
            print(f"service account {args.subject_id!r} is client id {subject_id}", file=sys.stderr)
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
    query = build_audit_query(
        start=datetime(1970, 1, 1, tzinfo=UTC),
        end=datetime.now(UTC),
        filter_by=args.filter,
        sort_order="desc",
        limit=args.limit,
    )
    columns = ["timestamp", "subject", "action", "entity_type", "entity_id", "entity_name"]
    print_table(audit.list_entries(conn, query), columns, args.json)


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
    """Add ``access service-accounts|rules|signing-keys|audit`` to the top-level parser."""
    access = commands.add_parser(
        "access", help="service accounts, access rules, signing keys and the audit log"
    )
    groups = access.add_subparsers(dest="access_command", required=True)

    def leaf(parent, name: str, help_text: str, handler: Callable) -> argparse.ArgumentParser:
        parser = parent.add_parser(name, help=help_text)
        add_settings_flags(parser)
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
        parser.set_defaults(handler=lambda a, s: run(a, s, handler))
        return parser

    accounts = groups.add_parser(
        "service-accounts",
        aliases=["keys"],
        help="service accounts (what scripts and cluster agents sign in with)",
    )
    account_commands = accounts.add_subparsers(dest="account_command", required=True)
    leaf(account_commands, "list", "list service accounts", _service_accounts)
    leaf(account_commands, "create", "create a service account", _service_accounts).add_argument(
        "name"
    )
    for name in ("regenerate-secret", "disable", "enable", "delete"):
        leaf(account_commands, name, f"{name} a service account", _service_accounts).add_argument(
            "account", help="id, client id or name of the service account"
        )
    restore = account_commands.add_parser(
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
        "--subject-type", choices=[s.value for s in SubjectType], default="service-account"
    )
    grant.add_argument(
        "--subject-id",
        required=True,
        help="client id or name of a service account, or a user or group name",
    )
    grant.add_argument(
        "--role",
        type=role_named,
        required=True,
        help="role id, name or slug: " + ", ".join(f"{ROLE_IDS[r]} ({r.value})" for r in Role),
    )
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
    log.add_argument(
        "--filter", action="append", help="a filterBy term of the audit log (repeatable)"
    )
