"""The audit log: append-only records of token issuance and access changes.

An entry's ``action`` is gpufleet's own (``service_account.rotate``); Run:ai's audit log shows
an action among create, update, delete and sign-in, and the type of the entity acted on. Both
are derived from it in SQL, so ``filterBy`` and ``sortBy`` can name them.
"""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.core.roles import TENANT_ID
from gpufleet.core.times import format_rfc3339
from gpufleet.core.workload_fields import FieldKind
from gpufleet.query.access import AuditQuery
from gpufleet.query.filters import FilterTerm
from gpufleet.store.tables import audit_log
from gpufleet.store.workload_filters import compare

# The entity each prefix of an action acts on, as Run:ai's entity_type names it.
ENTITY_TYPES = {
    "token": "token",
    "service_account": "service-account",
    "access_key": "access-key",
    "access_rule": "access-rule",
    "signing_key": "signing-key",
    "cluster": "cluster",
}
# Actions whose Run:ai name is not what their last word says (rotate, enable … are updates).
# Rotating the signing keys adds one.
_RUNAI_ACTIONS = {
    "token.issue": "sign-in",
    "cluster.register": "create",
    "signing_key.rotate": "create",
}
_log = audit_log.c


def record(
    conn: Connection,
    *,
    actor: str,
    action: str,
    target: str | None = None,
    source_ip: str | None = None,
    details: dict[str, Any] | None = None,
    subject_type: str = "App",
    entity_name: str | None = None,
) -> None:
    """Append one entry; ``subject_type`` is Run:ai's ``User`` or ``App``."""
    conn.execute(
        audit_log.insert().values(
            at=datetime.now(UTC),
            actor=actor,
            subject_type=subject_type,
            action=action,
            target=target,
            entity_name=entity_name,
            source_ip=source_ip,
            details=details,
        )
    )


def _runai_action() -> sa.ColumnElement[str]:
    explicit = [(_log.action == ours, theirs) for ours, theirs in _RUNAI_ACTIONS.items()]
    return sa.case(
        *explicit,
        (_log.action.like("%.create"), "create"),
        (_log.action.like("%.delete"), "delete"),
        else_="update",
    )


def _entity_type() -> sa.ColumnElement[str]:
    return sa.case(
        *((_log.action.like(f"{prefix}.%"), name) for prefix, name in ENTITY_TYPES.items()),
        else_=sa.null(),
    )


_UNKNOWN = sa.cast(sa.null(), sa.String)
_EXPRESSIONS: dict[str, sa.ColumnElement[Any]] = {
    "timestamp": _log.at,
    "subject": _log.actor,
    "subject_type": _log.subject_type,
    "source_ip": _log.source_ip,
    "action": _runai_action(),
    "result": sa.literal("Succeeded"),
    # Not recorded: every term on them compares with NULL.
    "url": _UNKNOWN,
    "http_method": _UNKNOWN,
    "cluster_name": _UNKNOWN,
    "entity_type": _entity_type(),
    "entity_name": _log.entity_name,
    "entity_id": _log.target,
}


def _term(term: FilterTerm) -> sa.ColumnElement[bool]:
    value = term.value
    if term.field.kind is FieldKind.TEXT:
        value = sa.literal(value, sa.String)
    return compare(_EXPRESSIONS[term.field.name], term.operator, value)


def _conditions(query: AuditQuery) -> list[sa.ColumnElement[bool]]:
    return [_log.at >= query.start, _log.at <= query.end, *(_term(t) for t in query.filters)]


def count_entries(conn: Connection, query: AuditQuery) -> int:
    statement = sa.select(sa.func.count()).select_from(audit_log).where(*_conditions(query))
    return conn.execute(statement).scalar_one()


def list_entries(conn: Connection, query: AuditQuery) -> list[dict]:
    """One page of entries in Run:ai's ``AuditLog`` shape."""
    key = _EXPRESSIONS[query.sort_by]
    order = [key.desc(), _log.id.desc()] if query.descending else [key.asc(), _log.id]
    statement = (
        sa.select(audit_log, _EXPRESSIONS["action"].label("runai_action"))
        .where(*_conditions(query))
        .order_by(*order)
        .offset(query.offset)
        .limit(query.limit)
    )
    return [_wire(row) for row in conn.execute(statement).mappings()]


def _entity(action: str) -> str | None:
    return ENTITY_TYPES.get(action.split(".", 1)[0])


def _metadata(row) -> dict[str, str]:
    """What Run:ai's fields have no place for, as strings (at most ten)."""
    extra = {"operation": row["action"]}
    if row["source_ip"] and not _is_ipv4(row["source_ip"]):
        extra["sourceAddress"] = row["source_ip"]
    for key, value in (row["details"] or {}).items():
        if len(extra) == 10:
            break
        extra[str(key)] = value if isinstance(value, str) else str(value)
    return extra


def _is_ipv4(text: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(text), ipaddress.IPv4Address)
    except ValueError:
        return False


def _wire(row) -> dict:
    entry = {
        # Run:ai's ids are UUIDs; ours are a sequence, written in that form.
        "id": str(uuid.UUID(int=row["id"])),
        "tenant_id": str(TENANT_ID),
        "timestamp": format_rfc3339(row["at"]),
        "subject": row["actor"],
        "subject_type": row["subject_type"],
        "action": row["runai_action"],
        "result": "Succeeded",
        "metadata": _metadata(row),
    }
    if row["source_ip"] and _is_ipv4(row["source_ip"]):
        entry["source_ip"] = row["source_ip"]
    optional = {
        "entity_type": _entity(row["action"]),
        "entity_id": row["target"],
        "entity_name": row["entity_name"],
    }
    entry.update({key: value for key, value in optional.items() if value is not None})
    return entry
