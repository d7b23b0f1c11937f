"""Onboarding a cluster: ``gpufleet clusters register`` against a real server's database, then
the agent, configured by nothing but the Secret it wrote, pushing the emulated cluster's
workloads to that server: the agent of the installed package, and the agent of the container
image under a read-only root filesystem (with the image tests, see docs/testing.md).

Also ``gpufleet access rules grant``: a service account's name resolves to its client id, and a
scope that does not exist is refused unless ``--allow-unknown-scope``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gpufleet.agent.kinds import KINDS
from gpufleet.agent.manifests import AGENT_SECRET, CLUSTER_ANNOTATION
from gpufleet.cli import main
from tests.support.image import ImageContainer, Volume, ensure_image
from tests.support.k8s_emulator import KubernetesEmulator, resources_from, write_kubeconfig
from tests.support.manifests import DEPLOY, kustomize, validate_all
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e

NAMESPACE = "team-a"
WAIT_SECONDS = 120.0
# Fast timings for the test; the rest comes from the registration Secret alone.
AGENT_FLAGS = [
    "--health-host", "127.0.0.1", "--health-port", "0", "--push-interval-seconds", "0.1",
    "--crd-retry-seconds", "1", "--backoff-max-seconds", "1", "--watch-timeout-seconds", "5",
]  # fmt: skip


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def server(module_database_url: str, tmp_path_factory) -> Iterator[ServerProcess]:
    with ServerProcess(module_database_url, log_dir=tmp_path_factory.mktemp("server")) as process:
        yield process


@pytest.fixture(scope="module")
def image_container() -> Iterator[ImageContainer]:
    working = ImageContainer(ensure_image())
    try:
        yield working
    finally:
        working.remove()


def package_agent(settings: dict[str, str], kubeconfig: Path, request) -> tuple[list, dict]:
    """The agent of the installed package: its command and environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUFLEET_")} | settings
    command = [sys.executable, "-m", "gpufleet.cli", "agent", "--kubeconfig", str(kubeconfig)]
    return [*command, *AGENT_FLAGS], env


def image_agent(settings: dict[str, str], kubeconfig: Path, request) -> tuple[list, dict]:
    """The agent of the image, as deploy/ runs it: read-only root and no writable volume; the
    kubeconfig is mounted read-only where in a cluster the service account token would be."""
    container: ImageContainer = request.getfixturevalue("image_container")
    mounted = Volume(kubeconfig.parent, "/etc/gpufleet-kube", writable=False)
    args = ["gpufleet", "agent", "--kubeconfig", f"{mounted.target}/{kubeconfig.name}"]
    command = container.read_only_command([*args, *AGENT_FLAGS], settings, [mounted])
    return command, dict(os.environ)


@pytest.fixture(
    params=[
        pytest.param(package_agent, id="package"),
        # Building the image takes minutes: a fixture's setup is part of the test's time.
        pytest.param(image_agent, id="image", marks=[pytest.mark.image, pytest.mark.timeout(3600)]),
    ]
)
def agent_command(request):
    return lambda settings, kubeconfig: request.param(settings, kubeconfig, request)


@pytest.fixture
def emulator() -> Iterator[KubernetesEmulator]:
    served = KubernetesEmulator(list(resources_from(KINDS)), bookmark_interval=0.5).start()
    yield served
    served.stop()


def register(server: ServerProcess, name: str, output: Path) -> dict[str, Any]:
    """Run the real command line, as an operator would, and read what it wrote."""
    command = [sys.executable, "-m", "gpufleet.cli", "clusters", "register", name]
    command += ["--server-url", server.base_url + "/", "--output-dir", str(output)]
    command += ["--base", str(DEPLOY / "overlays" / "agent")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUFLEET_")}
    env["GPUFLEET_DATABASE_URL"] = server.database_url
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "kubectl apply -k" in done.stdout
    return {path.name: yaml.safe_load(path.read_text()) for path in output.glob("*.yaml")}


def wait_for_workload(server: ServerProcess, name: str, agent_log) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        found = httpx.get(
            server.base_url + "/api/v1/workloads",
            params={"filterBy": f"name=={name}"},
            headers=server.auth_headers(),
            timeout=30,
        ).json()["workloads"]
        if found:
            return found[0]
        time.sleep(0.5)
    raise AssertionError(f"{name} never reached the server; agent log:\n{agent_log()[-4000:]}")


def job_with_pod(emulator: KubernetesEmulator, name: str) -> None:
    container = {
        "name": "main",
        "image": "trainer:1",
        "resources": {"limits": {"nvidia.com/gpu": "1"}},
    }
    job = emulator.create(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"template": {"spec": {"containers": [container]}}},
        }
    )
    owner = {"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": job["metadata"]["uid"]}
    emulator.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{name}-0",
                "namespace": NAMESPACE,
                "ownerReferences": [{**owner, "controller": True}],
            },
            "spec": {"containers": [container], "nodeName": "gpu-node-1"},
            "status": {"phase": "Running"},
        }
    )


def test_registered_cluster_agent_pushes_to_the_server(
    server: ServerProcess, emulator: KubernetesEmulator, agent_command, tmp_path: Path
) -> None:
    written = register(server, "gpu-east", tmp_path / "gpu-east")
    secret = written["agent-secret.yaml"]
    settings = secret["stringData"]
    assert settings["GPUFLEET_AGENT_SERVER"] == server.base_url
    assert settings["GPUFLEET_AGENT_CLUSTER_NAME"] == "gpu-east"

    # The directory extends the agent overlay: rendered, the agent reads this Secret and
    # restarts when the registration changes.
    rendered = kustomize(tmp_path / "gpu-east")
    validate_all(rendered)
    (deployment,) = [d for d in rendered if d["kind"] == "Deployment"]
    (rendered_secret,) = [d for d in rendered if d["kind"] == "Secret"]
    assert rendered_secret["metadata"]["name"] == AGENT_SECRET
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations[CLUSTER_ANNOTATION] == settings["GPUFLEET_AGENT_CLUSTER_ID"]
    assert rendered[0]["kind"] == "Namespace"

    kubeconfig = tmp_path / "kube" / "config"
    kubeconfig.parent.mkdir()
    write_kubeconfig(kubeconfig, emulator.url)
    job_with_pod(emulator, "onboarded-job")
    log_path = tmp_path / "agent.log"
    # The agent's whole configuration is the Secret's environment plus where Kubernetes is.
    command, env = agent_command(settings, kubeconfig)
    with open(log_path, "ab") as log:
        agent = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        record = wait_for_workload(server, "onboarded-job", log_path.read_text)
    finally:
        agent.terminate()
        agent.wait(timeout=30)
    assert record["clusterId"] == settings["GPUFLEET_AGENT_CLUSTER_ID"]
    assert record["namespace"] == NAMESPACE


def test_registering_a_name_twice_is_refused(capsys, database_url: str) -> None:
    db = ["--database-url", database_url, "--server-url", "http://gpufleet:8080"]
    code, out, _ = cli(capsys, "clusters", "register", "gpu-west", *db)
    assert code == 0
    secret = yaml.safe_load(out)
    assert secret["kind"] == "Secret"
    code, _, err = cli(capsys, "clusters", "register", "gpu-west", *db)
    assert code == 2
    assert secret["stringData"]["GPUFLEET_AGENT_CLUSTER_ID"] in err
    code, out, _ = cli(capsys, "clusters", "list", "--json", "--database-url", database_url)
    assert [c["name"] for c in json.loads(out)] == ["gpu-west"]
