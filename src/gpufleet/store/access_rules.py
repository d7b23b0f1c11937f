"""Access rules: create, list, delete, and the rules that apply to a caller."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.store.tables import access_rules, projects


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


def _rule(row) -> AccessRuleRow:
    return AccessRuleRow(
        id=row["id"],
        subject_type=row["subject_type"],
        subject_id=row["subject_id"],
        role=row["role"],
        scope_type=row["scope_type"],
        scope_id=row["scope_id"],
        created_at=row["created_at"],
        created_by=row["created_by"],
    )


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
    values = {
        "subject_type": subject_type,
        "subject_id": subject_id,
        "role": role,
        "scope_type": scope_type,
        "scope_id": scope_id,
        "created_at": datetime.now(UTC),
        "created_by": created_by,
    }
    rule_id = conn.execute(access_rules.insert().values(**values)).inserted_primary_key[0]
    return AccessRuleRow(id=rule_id, **values)


def get_rule(conn: Connection, rule_id: int) -> AccessRuleRow | None:
    row = (
        conn.execute(sa.select(access_rules).where(access_rules.c.id == rule_id)).mappings().first()
    )
    return None if row is None else _rule(row)


def inside_departments(department_ids: Iterable[str]) -> sa.ColumnElement[bool]:
    """Rules scoped to one of the departments or to a project of one of them."""
    departments = list(department_ids)
    projects_inside = sa.select(projects.c.id).where(projects.c.department_id.in_(departments))
    scope_type, scope_id = access_rules.c.scope_type, access_rules.c.scope_id
    return sa.or_(
        sa.and_(scope_type == "department", scope_id.in_(departments)),
        sa.and_(scope_type == "project", scope_id.in_(projects_inside)),
    )


def list_rules(
    conn: Connection,
    *,
    subject_type: str | None = None,
    subject_id: str | None = None,
    within_departments: Iterable[str] | None = None,
) -> list[AccessRuleRow]:
    """Rules, optionally of one subject; ``within_departments`` keeps those inside them only."""
    statement = sa.select(access_rules).order_by(access_rules.c.id)
    if within_departments is not None:
        statement = statement.where(inside_departments(within_departments))
    if subject_type is not None:
        statement = statement.where(access_rules.c.subject_type == subject_type)
    if subject_id is not None:
        statement = statement.where(access_rules.c.subject_id == subject_id)
    return [_rule(row) for row in conn.execute(statement).mappings()]


def delete_rule(conn: Connection, rule_id: int) -> bool:
    return conn.execute(access_rules.delete().where(access_rules.c.id == rule_id)).rowcount > 0


def delete_rules_of(conn: Connection, subject_type: str, subject_id: str) -> int:
    statement = access_rules.delete().where(
        access_rules.c.subject_type == subject_type, access_rules.c.subject_id == subject_id
    )
    return conn.execute(statement).rowcount


def rules_for_subjects(
    conn: Connection, subjects: Iterable[tuple[str, str]]
) -> list[AccessRuleRow]:
    """Every rule whose subject is one of ``(subject_type, subject_id)``."""
    pairs = list(subjects)
    if not pairs:
        return []
    condition = sa.or_(
        *(
            sa.and_(access_rules.c.subject_type == kind, access_rules.c.subject_id == ident)
            for kind, ident in pairs
        )
    )
    statement = sa.select(access_rules).where(condition).order_by(access_rules.c.id)
    return [_rule(row) for row in conn.execute(statement).mappings()]
