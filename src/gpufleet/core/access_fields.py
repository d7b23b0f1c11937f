"""The fields ``filterBy`` and ``sortBy`` may name on access rules and on the audit log, in the
order of the reference's enums. The parser, the SQL compiler and the OpenAPI enums read these."""

from __future__ import annotations

from gpufleet.core.workload_fields import FieldKind, WorkloadField

_T, _I, _D = FieldKind.TEXT, FieldKind.INTEGER, FieldKind.DATE


def _catalogue(*fields: tuple[str, FieldKind]) -> dict[str, WorkloadField]:
    return {
        name: WorkloadField(name, kind, column=name, sort_rank=rank)
        for rank, (name, kind) in enumerate(fields)
    }


# Columns of the access-rule listing; some are computed (role id and name, scope name, phase).
ACCESS_RULE_FIELDS = _catalogue(
    ("subjectId", _T),
    ("subjectType", _T),
    ("roleId", _I),
    ("scopeId", _T),
    ("scopeType", _T),
    ("roleName", _T),
    ("scopeName", _T),
    ("createdAt", _D),
    ("deletedAt", _D),
    ("createdBy", _T),
    ("phase", _T),
)
DEFAULT_ACCESS_RULE_SORT = "createdAt"

# The audit log's filterBy fields; sortBy takes these and three more.
AUDIT_FILTER_FIELDS = _catalogue(
    ("timestamp", _D),
    ("subject", _T),
    ("subject_type", _T),
    ("source_ip", _T),
    ("action", _T),
    ("result", _T),
    ("url", _T),
    ("entity_type", _T),
    ("entity_name", _T),
    ("cluster_name", _T),
)
AUDIT_SORT_FIELDS = (
    "timestamp",
    "subject",
    "subject_type",
    "source_ip",
    "action",
    "http_method",
    "result",
    "url",
    "entity_type",
    "entity_name",
    "entity_id",
)
