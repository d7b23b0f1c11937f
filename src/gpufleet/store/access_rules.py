"""Access rules: create, list and count with Run:ai's filters, revoke, and the rules of a caller.

A revoked rule is kept with ``deleted_at`` set (Run:ai lists them with ``includeDeleted``); it
grants nothing from that moment.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from gpufleet.core.errors import Invalid
from gpufleet.core.roles import (
    ROLE_IDS,
    ROLE_NAMES,
    TENANT_ID,
    TENANT_NAME,
    Role,
    ScopeType,
    SubjectType,
)
from gpufleet.core.workload_fields import FieldKind
from gpufleet.query.access import AccessRulePage, AccessRuleSelection
from gpufleet.query.filters import FilterTerm
from gpufleet.store.access_keys import SERVICE_ACCOUNT
from gpufleet.store.dialect import lock_rows
from gpufleet.store.rows import row_as
from gpufleet.store.tables import (
    RULE_GRANT,
    access_keys,
    access_rules,
    clusters,
    departments,
    projects,
)
from gpufleet.store.workload_filters import compare


@dataclass(frozen=True, slots=True)
class AccessRuleRow:
    id: int
    subject_type: str
    subject_id: str
    role: str
    scope_type: str
    scope_id: str
    created_at: datetime
    created_by: str
    updated_at: datetime | None = None
    deleted_at: datetime | None = None
    # Read with listings: the scope's name and the cluster it lies in, where known.
    scope_name: str | None = None
    cluster_id: str | None = None


_rule = access_rules.c


def _unit(table, column: str = "name"):
    return sa.select(table.c[column]).where(table.c.id == _rule.scope_id).scalar_subquery()


# Computed columns of the listing, the ones filterBy/sortBy and the wire name.
_SCOPE_NAME = sa.func.coalesce(
    sa.case(
        (_rule.scope_type == "tenant", sa.literal(TENANT_NAME)),
        (_rule.scope_type == "cluster", _unit(clusters)),
        (_rule.scope_type == "department", _unit(departments)),
        (_rule.scope_type == "project", _unit(projects)),
        else_=sa.null(),
    ),
    _rule.scope_id,
)
_CLUSTER_ID = sa.case(
    (_rule.scope_type == "cluster", _rule.scope_id),
    (_rule.scope_type == "department", _unit(departments, "cluster_id")),
    (_rule.scope_type == "project", _unit(projects, "cluster_id")),
    else_=sa.null(),
)
_EXPRESSIONS: dict[str, sa.ColumnElement[Any]] = {
    "subjectId": _rule.subject_id,
    "subjectType": _rule.subject_type,
    "roleId": sa.case({r.value: ROLE_IDS[r] for r in Role}, value=_rule.role, else_=0),
    "scopeId": sa.case((_rule.scope_type == "tenant", str(TENANT_ID)), else_=_rule.scope_id),
    "scopeType": _rule.scope_type,
    "roleName": sa.case({r.value: ROLE_NAMES[r] for r in Role}, value=_rule.role, else_=_rule.role),
    "scopeName": _SCOPE_NAME,
    "createdAt": _rule.created_at,
    "deletedAt": _rule.deleted_at,
    "createdBy": _rule.created_by,
    "phase": sa.literal("Ready"),
}


def _row(row) -> AccessRuleRow:
    return row_as(AccessRuleRow, row)


def create_rule(
    conn: Connection,
    *,
    subject_type: str,
    subject_id: str,
    role: str,
    scope_type: str,
    scope_id: str,
    created_by: str,
) -> AccessRuleRow:
    now = datetime.now(UTC)
    values = {
        "subject_type": subject_type,
        "subject_id": subject_id,
        "role": role,
        "scope_type": scope_type,
        "scope_id": scope_id,
        "created_at": now,
        "created_by": created_by,
        "updated_at": now,
    }
    try:
        # A savepoint, so a refused insert leaves the caller's transaction usable.
        with conn.begin_nested():
            inserted = conn.execute(access_rules.insert().values(**values))
    except IntegrityError:
        # The unique index of the rules in force: this one is granted already (perhaps by a
        # grant that committed while this one waited on the index).
        same = sa.select(_rule.id).where(
            *(_rule[name] == values[name] for name in RULE_GRANT), _rule.deleted_at.is_(None)
        )
        existing = conn.execute(same).scalar()
        raise Invalid(
            f"Access rule {existing} grants this already; it was not granted again."
        ) from None
    return get_rule(conn, inserted.inserted_primary_key[0])


def _described():
    return sa.select(
        access_rules,
        _SCOPE_NAME.label("scope_name"),
        _CLUSTER_ID.label("cluster_id"),
    )


def get_rule(conn: Connection, rule_id: int) -> AccessRuleRow | None:
    """The rule with this id, revoked or not."""
    row = conn.execute(_described().where(_rule.id == rule_id)).mappings().first()
    return None if row is None else _row(row)


def inside_departments(department_ids: Iterable[str]) -> sa.ColumnElement[bool]:
    """Rules scoped to one of the departments or to a project of one of them."""
    departments_ = list(department_ids)
    projects_inside = sa.select(projects.c.id).where(projects.c.department_id.in_(departments_))
    return sa.or_(
        sa.and_(_rule.scope_type == "department", _rule.scope_id.in_(departments_)),
        sa.and_(_rule.scope_type == "project", _rule.scope_id.in_(projects_inside)),
    )


def is_inside(conn: Connection, rule_id: int, department_ids: Iterable[str]) -> bool:
    """Whether the rule lies inside one of the departments (or a project of one)."""
    statement = sa.select(_rule.id).where(_rule.id == rule_id, inside_departments(department_ids))
    return conn.execute(statement).first() is not None


def _term(term: FilterTerm) -> sa.ColumnElement[bool]:
    value: Any = term.value
    if term.field.kind is FieldKind.INTEGER:
        value = sa.literal(int(value) if float(value).is_integer() else value)
    return compare(_EXPRESSIONS[term.field.name], term.operator, value)


def _conditions(selection: AccessRuleSelection) -> list[sa.ColumnElement[bool]]:
    conditions = [_term(term) for term in selection.filters]
    if not selection.include_deleted:
        conditions.append(_rule.deleted_at.is_(None))
    if selection.within_departments is not None:
        conditions.append(inside_departments(selection.within_departments))
    if selection.search:
        text = f"%{selection.search}%"
        searched = ("subjectId", "roleName", "scopeName", "createdBy")
        conditions.append(sa.or_(*(sa.func.lower(_EXPRESSIONS[n]).like(text) for n in searched)))
    exact = {
        "subjectType": selection.subject_type,
        "scopeType": selection.scope_type,
        "scopeId": selection.scope_id,
        "roleId": selection.role_id,
    }
    conditions.extend(_EXPRESSIONS[name] == value for name, value in exact.items() if value)
    if selection.subject_id_part:
        conditions.append(_rule.subject_id.contains(selection.subject_id_part, autoescape=True))
    if selection.subject_ids is not None:
        conditions.append(_rule.subject_id.in_(selection.subject_ids))
    if selection.cluster_id is not None:
        conditions.append(_CLUSTER_ID.__eq__(selection.cluster_id))
    if selection.subjects is not None:
        conditions.append(
            sa.or_(
                sa.false(),
                *(
                    sa.and_(_rule.subject_type == kind, _rule.subject_id == ident)
                    for kind, ident in selection.subjects
                ),
            )
        )
    if selection.updated_since is not None:
        conditions.append(_rule.updated_at >= selection.updated_since)
    return conditions


def count_rules(conn: Connection, selection: AccessRuleSelection) -> int:
    statement = sa.select(sa.func.count()).select_from(access_rules)
    return conn.execute(statement.where(*_conditions(selection))).scalar_one()


def page_rules(conn: Connection, page: AccessRulePage) -> list[AccessRuleRow]:
    """One sorted page (the id breaks ties, so pages never overlap)."""
    key = _EXPRESSIONS[page.sort.field.name]
    order = [key.desc(), _rule.id.desc()] if page.sort.descending else [key.asc(), _rule.id]
    statement = (
        _described().where(*_conditions(page.selection)).order_by(*order).offset(page.offset)
    )
    if page.limit is not None:
        statement = statement.limit(page.limit)
    return [_row(row) for row in conn.execute(statement).mappings()]


def list_rules(
    conn: Connection,
    *,
    subject_type: str | None = None,
    subject_id: str | None = None,
) -> list[AccessRuleRow]:
    """Rules in force, optionally of one subject, by id."""
    statement = sa.select(access_rules).where(_rule.deleted_at.is_(None)).order_by(_rule.id)
    if subject_type is not None:
        statement = statement.where(_rule.subject_type == subject_type)
    if subject_id is not None:
        statement = statement.where(_rule.subject_id == subject_id)
    return [_row(row) for row in conn.execute(statement).mappings()]


def delete_rule(conn: Connection, rule_id: int) -> bool:
    """Revoke a rule in force; False when there is none with this id."""
    now = datetime.now(UTC)
    statement = (
        access_rules.update()
        .where(_rule.id == rule_id, _rule.deleted_at.is_(None))
        .values(deleted_at=now, updated_at=now)
    )
    return conn.execute(statement).rowcount > 0


# Rules in force that make their subject a System administrator of the tenant.
_ADMINISTRATOR = sa.and_(
    _rule.role == Role.SYSTEM_ADMINISTRATOR.value,
    _rule.scope_type == ScopeType.TENANT.value,
    _rule.deleted_at.is_(None),
)
# A user or group signs in through the identity provider, which gpufleet cannot ask; a service
# account signs in while it exists and is enabled.
_MAY_SIGN_IN = sa.or_(
    _rule.subject_type != SubjectType.SERVICE_ACCOUNT.value,
    sa.exists().where(
        access_keys.c.client_id == _rule.subject_id,
        access_keys.c.kind == SERVICE_ACCOUNT,
        access_keys.c.disabled_at.is_(None),
    ),
)


@dataclass(frozen=True, slots=True)
class AdministratorRule:
    id: int
    subject_type: str
    subject_id: str


def lock_administrators(conn: Connection) -> list[AdministratorRule]:
    """The tenant's System administrator rules in force whose subject may sign in, with every
    such rule held until the transaction ends: a change that could remove the last
    administrator reads them here first, so two such changes take turns and the second sees
    what the first left."""
    lock_rows(conn, access_rules, _ADMINISTRATOR)
    statement = (
        sa.select(_rule.id, _rule.subject_type, _rule.subject_id)
        .where(_ADMINISTRATOR, _MAY_SIGN_IN)
        .order_by(_rule.id)
    )
    return [row_as(AdministratorRule, row) for row in conn.execute(statement).mappings()]


def delete_rules_of(conn: Connection, subject_type: str, subject_id: str) -> int:
    now = datetime.now(UTC)
    statement = (
        access_rules.update()
        .where(
            _rule.subject_type == subject_type,
            _rule.subject_id == subject_id,
            _rule.deleted_at.is_(None),
        )
        .values(deleted_at=now, updated_at=now)
    )
    return conn.execute(statement).rowcount


def rules_for_subjects(
    conn: Connection, subjects: Iterable[tuple[str, str]]
) -> list[AccessRuleRow]:
    """Every rule in force whose subject is one of ``(subject_type, subject_id)``."""
    pairs = list(subjects)
    if not pairs:
        return []
    statement = _rules_of_subjects(len(pairs))
    return [_row(row) for row in conn.execute(statement, _subject_parameters(pairs)).mappings()]


@dataclass(frozen=True, slots=True)
class KeyStanding:
    """What a token issued for an access key depends on."""

    disabled: bool
    token_generation: int


def rules_with_key(
    conn: Connection, client_id: str, subjects: Iterable[tuple[str, str]]
) -> tuple[KeyStanding | None, list[AccessRuleRow]]:
    """``rules_for_subjects`` and the standing of the access key ``client_id``, read by one
    statement (both are read on every request of a key's token); ``(None, [])`` when the key
    does not exist."""
    pairs = list(subjects)
    parameters = _subject_parameters(pairs)
    parameters["client_id"] = client_id
    rows = conn.execute(_rules_with_key(len(pairs)), parameters).mappings().all()
    if not rows:
        return None, []
    first = rows[0]
    standing = KeyStanding(first["key_disabled_at"] is not None, first["key_token_generation"])
    return standing, [_row(row) for row in rows if row["id"] is not None]


def _subject_parameters(pairs: list[tuple[str, str]]) -> dict[str, str]:
    parameters = {}
    for position, (kind, ident) in enumerate(pairs):
        parameters[f"type_{position}"], parameters[f"id_{position}"] = kind, ident
    return parameters


def _in_force_of_subjects(count: int) -> sa.ColumnElement[bool]:
    """Rules in force of ``count`` subjects, bound as ``type_N`` and ``id_N`` (none: false)."""
    return sa.and_(
        sa.or_(
            sa.false(),
            *(
                sa.and_(
                    _rule.subject_type == sa.bindparam(f"type_{position}"),
                    _rule.subject_id == sa.bindparam(f"id_{position}"),
                )
                for position in range(count)
            ),
        ),
        _rule.deleted_at.is_(None),
    )


# Read on every authenticated request: built once per number of subjects (a caller and its
# groups) rather than per request, which was most of the lookup's time on SQLite.
@functools.lru_cache(maxsize=32)
def _rules_of_subjects(count: int) -> sa.Select:
    return sa.select(access_rules).where(_in_force_of_subjects(count)).order_by(_rule.id)


@functools.lru_cache(maxsize=32)
def _rules_with_key(count: int) -> sa.Select:
    key = access_keys.c
    return (
        sa.select(
            key.disabled_at.label("key_disabled_at"),
            key.token_generation.label("key_token_generation"),
            access_rules,
        )
        .select_from(access_keys.outerjoin(access_rules, _in_force_of_subjects(count)))
        .where(key.client_id == sa.bindparam("client_id"))
        .order_by(_rule.id)
    )


def scope_path(conn: Connection, rule: AccessRuleRow) -> str:
    """The names from the tenant down to the rule's scope, joined with ``/``."""
    names = [TENANT_NAME]
    unit_id, kind = rule.scope_id, rule.scope_type
    chain: list[str] = []
    if kind == "project":
        project = conn.execute(sa.select(projects).where(projects.c.id == unit_id)).first()
        if project is None:
            return "/".join([*names, unit_id])
        chain.insert(0, project.name)
        unit_id, kind = project.department_id, "department"
    if kind == "department":
        department = conn.execute(sa.select(departments).where(departments.c.id == unit_id)).first()
        if department is None:
            return "/".join([*names, unit_id, *chain])
        chain.insert(0, department.name)
        unit_id, kind = department.cluster_id, "cluster"
    if kind == "cluster":
        name = conn.execute(sa.select(clusters.c.name).where(clusters.c.id == unit_id)).scalar()
        chain.insert(0, name or unit_id)
    return "/".join([*names, *chain])
