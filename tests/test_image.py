"""The container image: built from the Dockerfile, run as it ships, read with the official SDK.

The image is built by ``scripts/build-image`` (see tests/support/image.py) and its server runs
under ``buildah run`` on the host network, as the image's non-root user, which cannot write its
root filesystem, with /data and /tmp as volumes, as deploy/ runs it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from runai.api_client import ApiClient
from runai.configuration import Configuration
from runai.runai_client import RunaiClient

from tests.support.image import ImageContainer, ensure_image, image_config, image_size, stop
from tests.support.ports import free_port

# A build from a cold cache takes many minutes on a loaded machine; killing it midway would
# leave its working containers behind.
pytestmark = [pytest.mark.image, pytest.mark.timeout(3600)]

ADMIN_ID = "image-admin"
ADMIN_SECRET = "image-admin-secret-0123456789"
DEMO_WORKLOADS = 150
# Generous: under a loaded machine the first start compiles nothing but still imports a lot.
STARTUP_SECONDS = 180
COMPILERS = ("cc", "gcc", "g++", "c++", "clang", "x86_64-linux-gnu-gcc-12", "make")


@pytest.fixture(scope="module")
def image() -> str:
    return ensure_image()


@pytest.fixture(scope="module")
def container(image: str) -> Iterator[ImageContainer]:
    working = ImageContainer(image)
    try:
        yield working
    finally:
        working.remove()


@pytest.fixture(scope="module")
def demo_server(container: ImageContainer, tmp_path_factory) -> Iterator[str]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("image") / "serve.log"
    env = {"GPUFLEET_ADMIN_CLIENT_ID": ADMIN_ID, "GPUFLEET_ADMIN_CLIENT_SECRET": ADMIN_SECRET}
    args = ["gpufleet", "serve", "--demo", "--demo-workloads", str(DEMO_WORKLOADS)]
    args += ["--host", "127.0.0.1", "--port", str(port)]
    process = container.start(args, env, log_path)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url, process, log_path)
        yield base_url
    finally:
        stop(process)


def wait_ready(base_url: str, process, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, log_path.read_text(errors="replace")
        try:
            if httpx.get(base_url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"the image's server was not ready: {log_path.read_text(errors='replace')}")


def test_image_runs_gpufleet_as_a_fixed_non_root_user(image: str) -> None:
    config = image_config(image)
    assert config["Entrypoint"] == ["gpufleet"]
    assert config["Cmd"] == ["serve"]
    uid, gid = config["User"].split(":")
    assert int(uid) != 0 and int(gid) != 0
    assert "/data" in config["Volumes"]
    # A regression guard on the size reported in docs/deploy.md (about 460 MB).
    assert image_size(image) < 600 * 10**6


def test_final_image_has_no_compiler_and_no_installer(container: ImageContainer) -> None:
    root = Path(container.rootfs)
    for compiler in COMPILERS:
        assert not (root / "usr/bin" / compiler).exists(), compiler
    assert not (root / "opt/gpufleet/bin/pip").exists()
    # The command is on PATH through the virtual environment; the package has its own layer.
    assert os.readlink(root / "opt/gpufleet/bin/gpufleet") == "/opt/gpufleet-app/bin/gpufleet"
    assert (root / "opt/gpufleet-app/bin/gpufleet").is_file()


def test_image_user_cannot_write_outside_its_volumes(container: ImageContainer) -> None:
    probe = container.run(["python3", "-c", "open('/opt/gpufleet/probe', 'w')"])
    assert probe.returncode != 0
    assert "Permission denied" in probe.stderr, probe.stderr
    writable = container.run(["python3", "-c", "open('/data/probe', 'w').write('ok')"])
    assert writable.returncode == 0, writable.stderr


def test_demo_server_from_the_image_answers_the_official_sdk(demo_server: str) -> None:
    config = Configuration(
        client_id=ADMIN_ID, client_secret=ADMIN_SECRET, runai_base_url=demo_server
    )
    with RunaiClient(ApiClient(config)) as client:
        api = client.workloads.workloads
        # The demo deletes a few of its workloads; those are listed only on request.
        count = api.count_workloads().data["count"]
        assert 0 < count <= DEMO_WORKLOADS
        assert len(api.get_workloads(limit=500).data["workloads"]) == count
        page = api.get_workloads(limit=5, sort_by="name").data["workloads"]
        assert len(page) == 5
        one = api.get_workload(page[0]["id"]).data
        assert one["name"] == page[0]["name"]


def test_server_in_the_image_keeps_its_database_on_the_data_volume(
    demo_server: str, container: ImageContainer
) -> None:
    assert (container.data / "gpufleet.db").stat().st_size > 0


def test_agent_help_runs_from_the_image(container: ImageContainer) -> None:
    shown = container.run(["gpufleet", "agent", "--help"])
    assert shown.returncode == 0, shown.stderr
    assert "--cluster-id" in shown.stdout
