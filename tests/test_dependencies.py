"""A route's dependencies go to a worker thread only when they touch the database.

FastAPI runs a plain-function dependency in a worker thread: a hand-off and a hand-back that
cost more than parsing a parameter or checking an ``Access`` does on the event loop. So a
dependency is a plain function only when it takes the request's connection (or is one that
checks it out); everything else is ``async``.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from gpufleet.api.deps import get_connection, open_session, session_connection

# The dependencies that check a connection out of the pool, and what hands it to the others.
_OPENERS = (get_connection, open_session)
_CONNECTION = (*_OPENERS, session_connection)


def _api_routes(routes) -> Iterator[APIRoute]:
    """Every API route, those of included routers too (FastAPI keeps a router included whole)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _api_routes(included.routes)


def _on_the_loop(call) -> bool:
    target = call if inspect.isfunction(call) or inspect.ismethod(call) else type(call).__call__
    return inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target)


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for dependency in dependant.dependencies:
        yield dependency
        yield from _dependencies(dependency)


def _touches_the_database(dependant: Dependant) -> bool:
    return dependant.call in _OPENERS or any(d.call in _CONNECTION for d in dependant.dependencies)


def test_only_dependencies_that_touch_the_database_run_in_a_thread(app):
    routes = list(_api_routes(app.routes))
    assert len(routes) > 50  # the walk reaches the included routers
    threaded = {
        f"{d.call.__module__}.{d.call.__qualname__}"
        for route in routes
        for d in _dependencies(route.dependant)
        if d.call is not None and not _on_the_loop(d.call) and not _touches_the_database(d)
    }
    assert threaded == set()


def test_the_check_tells_the_two_kinds_apart(app):
    async def on_loop() -> None: ...

    def in_thread() -> None: ...

    assert _on_the_loop(on_loop)
    assert not _on_the_loop(in_thread)
    checked = [d for r in _api_routes(app.routes) for d in _dependencies(r.dependant)]
    assert {get_connection, open_session} <= {d.call for d in checked}
    assert any(_touches_the_database(d) and d.call not in _OPENERS for d in checked)
