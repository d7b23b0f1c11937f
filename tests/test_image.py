"""The container image: built from the Dockerfile, run as it ships, read with the official SDK.

The image is built by ``scripts/build-image`` (see tests/support/image.py). Its server runs
under ``buildah run`` on the host network, as the image's non-root user, with /data and /tmp as
volumes, as deploy/ runs it; and again with the root filesystem read-only, as Kubernetes runs it
with ``readOnlyRootFilesystem``.
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

from tests.support.image import (
    ImageContainer,
    Volume,
    ensure_image,
    image_config,
    image_size,
    stop,
)
from tests.support.ports import free_port

# A build from a cold cache takes many minutes on a loaded machine; killing it midway would
# leave its working containers behind.
pytestmark = [pytest.mark.image, pytest.mark.timeout(3600)]

ADMIN_ID = "image-admin"
ADMIN_SECRET = "image-admin-secret-0123456789"
DEMO_WORKLOADS = 150
# Generous: under a loaded machine the first start compiles nothing but still imports a lot.
STARTUP_SECONDS = 180
COMPILERS = ("cc", "gcc", "g++", "c++", "cpp", "clang", "ld", "as", "make")


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


def serve_demo_args(port: int, workloads: int) -> list[str]:
    args = ["gpufleet", "serve", "--demo", "--demo-workloads", str(workloads)]
    return [*args, "--host", "127.0.0.1", "--port", str(port)]


SERVER_ENV = {"GPUFLEET_ADMIN_CLIENT_ID": ADMIN_ID, "GPUFLEET_ADMIN_CLIENT_SECRET": ADMIN_SECRET}


def serving(command: list[str], port: int, log_path: Path) -> Iterator[str]:
    process = ImageContainer.start_command(command, log_path)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url, process, log_path)
        yield base_url
    finally:
        stop(process)


@pytest.fixture(scope="module")
def demo_server(container: ImageContainer, tmp_path_factory) -> Iterator[str]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("image") / "serve.log"
    command = container.command(serve_demo_args(port, DEMO_WORKLOADS), SERVER_ENV)
    yield from serving(command, port, log_path)


def volume_dir(container: ImageContainer, tmp_path_factory, name: str) -> Path:
    """A fresh host directory the image's user owns, for a volume."""
    path = tmp_path_factory.mktemp(name)
    uid, gid = (int(part) for part in container.config["User"].split(":"))
    os.chown(path, uid, gid)
    return path


@pytest.fixture(scope="module")
def read_only_volumes(container: ImageContainer, tmp_path_factory) -> list[Volume]:
    """/data and /tmp, the server's volumes in deploy/; nothing else is writable."""
    return [
        Volume(volume_dir(container, tmp_path_factory, "ro-data"), "/data"),
        Volume(volume_dir(container, tmp_path_factory, "ro-tmp"), "/tmp"),
    ]


@pytest.fixture(scope="module")
def read_only_server(
    container: ImageContainer, read_only_volumes: list[Volume], tmp_path_factory
) -> Iterator[str]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("image-ro") / "serve.log"
    args = serve_demo_args(port, 20)
    command = container.read_only_command(args, SERVER_ENV, read_only_volumes)
    yield from serving(command, port, log_path)


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
    for directory in ("usr/bin", "usr/local/bin", "opt/gpufleet/bin"):
        names = {path.name for path in (root / directory).iterdir()}
        assert not names & set(COMPILERS), directory
        # Target-prefixed tool chains too (x86_64-linux-gnu-gcc-12 and the like).
        assert not [n for n in names if n.endswith(("-gcc", "-cc")) or "-gcc-" in n], directory
    assert not (root / "usr/lib/gcc").exists()
    site = next((root / "opt/gpufleet/lib").glob("python3*/site-packages"))
    assert not list(site.glob("pip*")) and not list(site.glob("setuptools*"))
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


def sdk_client(base_url: str) -> RunaiClient:
    config = Configuration(client_id=ADMIN_ID, client_secret=ADMIN_SECRET, runai_base_url=base_url)
    return RunaiClient(ApiClient(config))


def test_demo_server_from_the_image_answers_the_official_sdk(demo_server: str) -> None:
    with sdk_client(demo_server) as client:
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


def test_read_only_root_serves_the_demo(
    read_only_server: str, read_only_volumes: list[Volume]
) -> None:
    with sdk_client(read_only_server) as client:
        count = client.workloads.workloads.count_workloads().data["count"]
    assert 0 < count <= 20
    assert (read_only_volumes[0].source / "gpufleet.db").stat().st_size > 0


def test_read_only_root_refuses_writes_even_to_its_owner(
    container: ImageContainer, read_only_volumes: list[Volume]
) -> None:
    # The image's /data belongs to its user; with no volume on it, the read-only root is
    # what refuses the write, not ownership.
    probe = "import os; print(os.getuid()); open('/data/probe', 'w')"
    done = container.run_command(
        container.read_only_command(["python3", "-c", probe], volumes=read_only_volumes[1:])
    )
    assert done.returncode != 0
    assert done.stdout.strip() == container.config["User"].split(":")[0]
    assert "Read-only file system" in done.stderr, done.stderr


def test_entrypoint_commands_run_under_a_read_only_root(
    container: ImageContainer, tmp_path_factory
) -> None:
    """`db upgrade` and `demo seed` as an init container or a Job would run them."""
    data = Volume(volume_dir(container, tmp_path_factory, "ro-jobs"), "/data")
    for args in (["db", "upgrade"], ["demo", "seed", "--workloads", "5"], ["serve", "--help"]):
        done = container.run_command(
            container.read_only_command(["gpufleet", *args], volumes=[data])
        )
        assert done.returncode == 0, f"{args}: {done.stderr}"
    assert (data.source / "gpufleet.db").stat().st_size > 0
