"""Fixtures of the Prometheus backend tests, loaded with ``pytest_plugins``.

``dataset`` builds the generated TSDB once per session, ``prom`` serves a copy of it, ``t0`` is
where the generated data starts (epoch seconds).
"""

from __future__ import annotations

import time

import pytest

from tests.support import prometheus as data
from tests.support.prometheus_app import copy_tsdb


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    """(data start in epoch seconds, pristine TSDB directory), built once; servers use copies."""
    if not data.prometheus_available():
        pytest.fail("prometheus and promtool are required (Debian package 'prometheus')")
    start = data.data_start(time.time())
    return start, data.build_tsdb(tmp_path_factory.mktemp("prom") / "tsdb", start)


@pytest.fixture(scope="module")
def prom(dataset, tmp_path_factory):
    _, tsdb = dataset
    tmp = tmp_path_factory.mktemp("prom-main")
    server = data.PrometheusServer(copy_tsdb(tsdb, tmp), tmp).start()
    yield server
    server.stop()


@pytest.fixture
def t0(dataset) -> int:
    return dataset[0]
