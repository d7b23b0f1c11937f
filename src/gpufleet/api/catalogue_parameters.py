"""The filter, sort and paging parameters of the lists over a field catalogue (nodes, node
pools, projects, departments), declared once as FastAPI dependencies.

``catalogue_listing(name, fields, search=...)`` builds, per catalogue, ``Selection`` (what a
count reads: ``filterBy``, and ``search`` where the reference has it) and ``Page`` (a list's:
the selection plus ``sortBy``, ``sortOrder``, ``offset``, ``limit``); a route names them in its
signature instead of repeating the parameters and the lines that build the page. Annotations
are evaluated eagerly in this module, so the per-catalogue types built inside the factory can
be named in the dependencies' signatures.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query

from gpufleet.api.authorization import ReadScope
from gpufleet.api.parameters import (
    LimitParam,
    OptionalOffsetParam,
    SearchParam,
    SortOrderParam,
    sort_field_enum,
)
from gpufleet.api.routes.workloads import FILTER_DESCRIPTION
from gpufleet.core.workload_fields import WorkloadField
from gpufleet.query.org_units import (
    OrgUnitPage,
    OrgUnitSelection,
    build_org_unit_page,
    build_org_unit_selection,
)
from gpufleet.schemas.enums import SortOrder


@dataclass(frozen=True)
class CatalogueListing:
    """The two dependencies of one catalogue's list and count routes, as ``Annotated`` types."""

    Selection: Any
    Page: Any


def catalogue_listing(
    name: str, fields: Mapping[str, WorkloadField], *, search: bool
) -> CatalogueListing:
    """The list parameters over ``fields``; ``name`` names the catalogue's sort enum."""
    sort_field = sort_field_enum(f"{name}SortField", fields)
    filter_param = Annotated[
        list[str] | None,
        Query(
            description=FILTER_DESCRIPTION + " Fields: " + ", ".join(fields) + ".",
            examples=["name!=some-name"],
        ),
    ]
    sort_param = Annotated[sort_field | None, Query(description="Sort results by.")]

    async def searched(
        scope: ReadScope, filterBy: filter_param = None, search: SearchParam = None
    ) -> OrgUnitSelection:
        return build_org_unit_selection(fields, filter_by=filterBy, search=search, scope=scope)

    async def filtered(scope: ReadScope, filterBy: filter_param = None) -> OrgUnitSelection:
        return build_org_unit_selection(fields, filter_by=filterBy, scope=scope)

    selection = Annotated[OrgUnitSelection, Depends(searched if search else filtered)]

    async def page(
        chosen: selection,
        sortBy: sort_param = None,
        sortOrder: SortOrderParam = SortOrder.ASC,
        offset: OptionalOffsetParam = None,
        limit: LimitParam = 50,
    ) -> OrgUnitPage:
        return build_org_unit_page(
            fields,
            chosen,
            sort_by=sortBy.value if sortBy else None,
            sort_order=sortOrder.value,
            offset=offset,
            limit=limit,
        )

    return CatalogueListing(selection, Annotated[OrgUnitPage, Depends(page)])
