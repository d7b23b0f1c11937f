"""``gpufleet access …``: service accounts, access rules, signing keys and the audit log, over
the server's HTTP API as the logged-in profile.

The commands call the same paths as the official SDK (``/api/v1/service-accounts``,
``/api/v1/authorization/access-rules``, ``/api/v1/audit/log``) and gpufleet's own
``/api/v1/gpufleet/signing-keys``; the server checks the caller's rights and audits each change
under the caller's name. Only ``access bootstrap`` and ``access restore-admin`` (``access_cli``)
work on the database, for when no administrator can sign in yet.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from gpufleet.client.exit_codes import ExitCode
from gpufleet.client.http import ApiClient, ClientError
from gpufleet.client.listing import add_filter_flag, list_parameters
from gpufleet.client.lookup import resolve_cluster, resolve_org_unit
from gpufleet.client.output import Printer, print_list
from gpufleet.client.session import Handler, add_connection_flags, guarded, open_client
from gpufleet.core.roles import (
    ROLE_IDS,
    ROLE_NAMES,
    ROLES_BY_ID,
    TENANT_ID,
    Role,
    ScopeType,
    SubjectType,
)
from gpufleet.core.times import format_rfc3339

ACCOUNTS = "/api/v1/service-accounts"
RULES = "/api/v1/authorization/access-rules"
SIGNING_KEYS = "/api/v1/gpufleet/signing-keys"
AUDIT_LOG = "/api/v1/audit/log"
# Where the CLI looks up a scope before granting in it; tenants always exist.
SCOPE_PATHS = {
    ScopeType.CLUSTER: "/api/v1/clusters/{}",
    ScopeType.DEPARTMENT: "/api/v1/org-unit/departments/{}",
    ScopeType.PROJECT: "/api/v1/org-unit/projects/{}",
}
OUTPUTS = ("table", "json", "yaml", "csv")
RULE_PAGE = 500

# (header, field) per table; json and yaml print the records as the server answered them.
ACCOUNT_COLUMNS = (
    ("ID", "id"),
    ("CLIENT ID", "clientId"),
    ("NAME", "name"),
    ("ENABLED", "enabled"),
    ("CREATED", "createdAt"),
    ("LAST LOGIN", "lastLogin"),
)
SECRET_COLUMNS = (
    ("ID", "id"),
    ("CLIENT ID", "clientId"),
    ("NAME", "name"),
    ("SECRET", "clientSecret"),
)
RULE_COLUMNS = (
    ("ID", "id"),
    ("SUBJECT TYPE", "subjectType"),
    ("SUBJECT", "subjectId"),
    ("ROLE ID", "roleId"),
    ("ROLE", "roleName"),
    ("SCOPE TYPE", "scopeType"),
    ("SCOPE", "scopeId"),
    ("SCOPE NAME", "scopeName"),
)
SIGNING_KEY_COLUMNS = (
    ("KID", "kid"),
    ("ALGORITHM", "algorithm"),
    ("CREATED", "createdAt"),
    ("ACTIVE", "active"),
)
AUDIT_COLUMNS = (
    ("TIME", "timestamp"),
    ("SUBJECT", "subject"),
    ("ACTION", "action"),
    ("RESULT", "result"),
    ("ENTITY TYPE", "entity_type"),
    ("ENTITY ID", "entity_id"),
    ("ENTITY NAME", "entity_name"),
)


def show(
    records: Sequence[dict], columns: Sequence[tuple[str, str]], output: str, noun: str
) -> None:
    """Records as a table (or csv) of ``columns``, or exactly as answered in json or yaml; no
    records is ``No {noun} found.`` on stderr."""
    headers = [header for header, _ in columns]
    rows = [[_cell(record.get(field)) for _, field in columns] for record in records]
    print_list(Printer(), noun, records, output, headers, rows)


def _cell(value: Any) -> Any:
    return str(value).lower() if isinstance(value, bool) else value


def role_named(text: str) -> Role:
    """A role by its numeric id, its name (``Viewer``) or gpufleet's slug (``viewer``)."""
    if text.isdigit() and int(text) in ROLES_BY_ID:
        return ROLES_BY_ID[int(text)]
    for role in Role:
        if text.lower() in (role.value, ROLE_NAMES[role].lower()):
            return role
    raise argparse.ArgumentTypeError(f"unknown role {text!r}; roles: {ROLE_CHOICES}")


ROLE_CHOICES = ", ".join(f"{ROLE_IDS[r]} ({r.value})" for r in Role)


def find_account(client: ApiClient, reference: str) -> dict:
    """The service account whose id, client id or name is ``reference``."""
    accounts = client.get_json(ACCOUNTS)
    for key in ("id", "clientId", "name"):
        found = [account for account in accounts if account.get(key) == reference]
        if found:
            return found[0]
    raise ClientError(
        f"no service account has the id, client id or name {reference!r}", ExitCode.NOT_FOUND
    )


def _list_accounts(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        show(client.get_json(ACCOUNTS), ACCOUNT_COLUMNS, args.output, "service accounts")
    return 0


def _create_account(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        created = client.send("POST", ACCOUNTS, body={"name": args.name}).json()
    show([created], SECRET_COLUMNS, args.output, "service accounts")
    print("The secret is shown once; store it now.", file=sys.stderr)
    return 0


def _regenerate_secret(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        account = find_account(client, args.account)
        answer = client.send("POST", f"{ACCOUNTS}/{account['id']}/secret").json()
    show([{**account, **answer}], SECRET_COLUMNS, args.output, "service accounts")
    print("The new secret is shown once; tokens issued before are refused.", file=sys.stderr)
    return 0


def _set_enabled(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        account_id = find_account(client, args.account)["id"]
        body = {"enabled": args.account_command == "enable"}
        client.send("PATCH", f"{ACCOUNTS}/{account_id}", body=body)
        show(
            [client.get_json(f"{ACCOUNTS}/{account_id}")],
            ACCOUNT_COLUMNS,
            args.output,
            "service accounts",
        )
    return 0


def _delete_account(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        account = find_account(client, args.account)
        client.send("DELETE", f"{ACCOUNTS}/{account['id']}")
    print(f"deleted service account {account['name']} ({account['clientId']})")
    return 0


def _list_rules(args: argparse.Namespace) -> int:
    params = {**list_parameters(args), "sortBy": "createdAt", "limit": RULE_PAGE}
    rules: list[dict] = []
    with open_client(args) as client:
        while True:
            page = client.get_json(RULES, {**params, "offset": len(rules)})
            rules += page["accessRules"]
            if not page["accessRules"] or len(rules) >= page["totalRecords"]:
                break
    show(rules, RULE_COLUMNS, args.output, "access rules")
    return 0


def _grant(args: argparse.Namespace) -> int:
    role, scope_type = args.role, ScopeType(args.scope_type)
    scope_id = args.scope_id or (str(TENANT_ID) if scope_type is ScopeType.TENANT else "")
    with open_client(args) as client:
        subject_id = _subject_id(client, args.subject_type, args.subject_id)
        if not args.allow_unknown_scope and scope_type in SCOPE_PATHS and scope_id:
            scope_id = _scope_id(client, scope_type, scope_id)
        body = {
            "subjectType": args.subject_type,
            "subjectId": subject_id,
            "roleId": ROLE_IDS[role],
            "scopeType": scope_type.value,
            "scopeId": scope_id,
        }
        rule = client.send("POST", RULES, body=body).json()
    show([rule], RULE_COLUMNS, args.output, "access rules")
    return 0


def _subject_id(client: ApiClient, subject_type: str, subject_id: str) -> str:
    """A service account's client id (what its tokens carry) for its id, client id or name."""
    if subject_type != SubjectType.SERVICE_ACCOUNT:
        return subject_id
    client_id = find_account(client, subject_id)["clientId"]
    if client_id != subject_id:
        print(f"service account {subject_id!r} is client id {client_id}", file=sys.stderr)
    return client_id


def _scope_id(client: ApiClient, scope_type: ScopeType, name_or_id: str) -> str:
    """The id of the cluster, department or project named ``name_or_id`` (or of that id),
    refused when the server knows none."""
    try:
        if scope_type is ScopeType.CLUSTER:
            scope_id = resolve_cluster(client, name_or_id)
        else:
            scope_id = resolve_org_unit(client, scope_type.value, name_or_id)
    except ClientError as exc:
        if exc.exit_code is not ExitCode.NOT_FOUND:
            raise
        raise _unknown_scope(exc.message, scope_type) from None
    if scope_id != name_or_id:
        print(f"{scope_type.value} {name_or_id!r} is id {scope_id}", file=sys.stderr)
    _require_scope(client, scope_type, scope_id)
    return scope_id


def _unknown_scope(message: str, scope_type: ScopeType) -> ClientError:
    return ClientError(
        f"{message}, so the rule would match nothing; check the name or id, or pass "
        f"--allow-unknown-scope to grant it before the {scope_type.value} first reports",
        ExitCode.NOT_FOUND,
    )


def _require_scope(client: ApiClient, scope_type: ScopeType, scope_id: str) -> None:
    """Refuse a rule on a cluster, department or project the server does not know (yet)."""
    try:
        client.get(SCOPE_PATHS[scope_type].format(scope_id))
    except ClientError as exc:
        if exc.exit_code not in (ExitCode.NOT_FOUND, ExitCode.USAGE):
            raise
        raise _unknown_scope(f"no {scope_type.value} {scope_id!r} is known", scope_type) from None


def _revoke(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        client.send("DELETE", f"{RULES}/{args.rule_id}")
    print(f"revoked access rule {args.rule_id}")
    return 0


def _signing_keys(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        match args.signing_command:
            case "rotate":
                answer = client.send("POST", SIGNING_KEYS).json()
            case "revoke":
                answer = client.send("POST", f"{SIGNING_KEYS}/{args.kid}/revoke").json()
            case _:
                answer = client.get_json(SIGNING_KEYS)
    show(answer["signingKeys"], SIGNING_KEY_COLUMNS, args.output, "signing keys")
    return 0


def _audit(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {
        "start": format_rfc3339(datetime(1970, 1, 1, tzinfo=UTC)),
        "end": format_rfc3339(datetime.now(UTC)),
        "sortOrder": "desc",
        "numberOfSamples": args.limit,
    }
    if args.filter:
        params["filterBy"] = args.filter
    with open_client(args) as client:
        entries = client.get_json(AUDIT_LOG, params)["audit_logs"]
    show(entries, AUDIT_COLUMNS, args.output, "audit log entries")
    return 0


def _leaf(parent, name: str, help_text: str, handler: Handler) -> argparse.ArgumentParser:
    parser = parent.add_parser(name, help=help_text)
    parser.add_argument("-o", "--output", choices=OUTPUTS, default="table")
    add_connection_flags(parser)
    parser.set_defaults(handler=guarded(handler))
    return parser


def _register_accounts(groups) -> None:
    accounts = groups.add_parser(
        "service-accounts",
        aliases=["keys"],
        help="service accounts (what scripts and cluster agents sign in with)",
    )
    commands = accounts.add_subparsers(dest="account_command", required=True)
    _leaf(commands, "list", "list service accounts", _list_accounts)
    _leaf(commands, "create", "create a service account", _create_account).add_argument("name")
    per_account = {
        "regenerate-secret": ("give a service account a new secret", _regenerate_secret),
        "disable": ("refuse a service account's tokens and logins", _set_enabled),
        "enable": ("accept a disabled service account again", _set_enabled),
        "delete": ("delete a service account", _delete_account),
    }
    for name, (help_text, handler) in per_account.items():
        _leaf(commands, name, help_text, handler).add_argument(
            "account", help="id, client id or name of the service account"
        )


def _register_rules(groups) -> None:
    rules = groups.add_parser("rules", help="access rules: a role granted to a subject in a scope")
    commands = rules.add_subparsers(dest="rule_command", required=True)
    listing = _leaf(commands, "list", "list access rules", _list_rules)
    add_filter_flag(listing, "roleName==Viewer")
    grant = _leaf(commands, "grant", "grant a role in a scope", _grant)
    grant.add_argument(
        "--subject-type", choices=[s.value for s in SubjectType], default="service-account"
    )
    grant.add_argument(
        "--subject-id",
        required=True,
        help="id, client id or name of a service account, or a user or group name",
    )
    grant.add_argument(
        "--role", type=role_named, required=True, help=f"role id, name or slug: {ROLE_CHOICES}"
    )
    grant.add_argument("--scope-type", choices=[s.value for s in ScopeType], required=True)
    grant.add_argument(
        "--scope-id",
        default="",
        metavar="NAME|ID",
        help="the cluster, department or project: its name or id",
    )
    grant.add_argument(
        "--allow-unknown-scope",
        action="store_true",
        help="grant in a cluster, department or project that has not reported yet",
    )
    revoke = _leaf(commands, "revoke", "delete an access rule", _revoke)
    revoke.add_argument("rule_id", type=int)


def _register_signing_keys(groups) -> None:
    signing = groups.add_parser("signing-keys", help="the keys that sign access tokens")
    commands = signing.add_subparsers(dest="signing_command", required=True)
    _leaf(commands, "list", "list signing keys", _signing_keys)
    _leaf(commands, "rotate", "add a key that signs from now on", _signing_keys)
    _leaf(commands, "revoke", "stop trusting a key", _signing_keys).add_argument("kid")


def register(groups: argparse._SubParsersAction) -> None:
    """Add ``service-accounts``, ``rules``, ``signing-keys`` and ``audit`` under ``access``."""
    _register_accounts(groups)
    _register_rules(groups)
    _register_signing_keys(groups)
    log = _leaf(groups, "audit", "show the newest audit log entries", _audit)
    log.add_argument("--limit", type=int, default=50, help="entries to show (at most 1000)")
    add_filter_flag(log, "action==sign-in")
