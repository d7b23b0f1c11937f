"""The agent as an admin first runs it: kubeconfig found like kubectl finds it, a refused key
reported at once, and an unreachable API server warned about once per backoff period."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gpufleet.agent.failures import NoKubernetesConfig
from gpufleet.agent.kinds import KINDS
from gpufleet.agent.kubeconfig import kubeconfig_path
from gpufleet.core.exit_codes import ExitCode
from tests.support.k8s_emulator import KubernetesEmulator, resources_from, write_kubeconfig
from tests.support.server import ADMIN_ID, ADMIN_SECRET, ServerProcess

pytestmark = pytest.mark.e2e
CLUSTER_ID = "2b7d4c1e-9a8f-4e6d-b5c3-0f1e2d3c4b5a"
BACKOFF_SECONDS = 1.0
WAIT_SECONDS = 60.0
WARNING = "Kubernetes API requests failing"


def test_kubeconfig_is_looked_for_as_kubectl_does(tmp_path):
    token = tmp_path / "token"
    home = tmp_path / "home"
    in_cluster = {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}
    assert kubeconfig_path("given.yaml", in_cluster, home, token) == "given.yaml"
    assert kubeconfig_path(None, {"KUBECONFIG": "a:b"}, home, token) == "a:b"
    with pytest.raises(NoKubernetesConfig, match=r"\$KUBECONFIG unset"):
        kubeconfig_path(None, in_cluster, home, token)  # a service host but no token
    token.write_text("t")
    assert kubeconfig_path(None, {**in_cluster, "KUBECONFIG": "a"}, home, token) is None
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "config").write_text("apiVersion: v1\n")
    assert kubeconfig_path(None, {}, home, token) == str(home / ".kube" / "config")
    assert kubeconfig_path(None, {"KUBECONFIG": "x"}, home, token) == "x"


@pytest.fixture
def emulator() -> Iterator[KubernetesEmulator]:
    served = KubernetesEmulator(resources_from(KINDS), bookmark_interval=0.5).start()
    yield served
    served.stop()


class Agent:
    """``gpufleet agent`` without ``--kubeconfig``, in an environment the test chooses."""

    def __init__(self, server: ServerProcess, env: dict[str, str], log: Path, **options: str):
        command = [sys.executable, "-m", "gpufleet.cli", "agent"]
        flags = {
            "cluster-id": CLUSTER_ID,
            "server": server.base_url,
            "client-id": ADMIN_ID,
            "client-secret": ADMIN_SECRET,
            "health-host": "127.0.0.1",
            "health-port": "0",
            "backoff-max-seconds": str(BACKOFF_SECONDS),
            "watch-timeout-seconds": "5",
            **options,
        }
        for name, value in flags.items():
            command += [f"--{name}", value]
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GPUFLEET_", "KUBE")) and k != "HOME"
        }
        self.log_path = log
        self.stderr_path = log.with_suffix(".err")
        with open(log, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                command, env={**inherited, **env}, stdout=out, stderr=err, stdin=subprocess.DEVNULL
            )

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_exit(self) -> int:
        return self.process.wait(timeout=WAIT_SECONDS)

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.stderr()
            found = re.search(r"health on port (\d+)", self.log_path.read_text())
            if found:
                health = f"http://127.0.0.1:{found.group(1)}/healthz"
                try:
                    if httpx.get(health, timeout=2).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        raise AssertionError(f"agent not healthy:\n{self.stderr()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def run_agent(module_server, tmp_path) -> Iterator:
    started: list[Agent] = []

    def run(env: dict[str, str], **options: str) -> Agent:
        agent = Agent(module_server, env, tmp_path / f"agent-{len(started)}.log", **options)
        started.append(agent)
        return agent

    yield run
    for agent in started:
        agent.stop()


def test_kubeconfig_from_the_environment(run_agent, emulator, tmp_path):
    config = tmp_path / "elsewhere.yaml"
    write_kubeconfig(config, emulator.url)
    home = tmp_path / "empty-home"
    home.mkdir()
    run_agent({"KUBECONFIG": str(config), "HOME": str(home)}).wait_healthy()


def test_kubeconfig_from_home(run_agent, emulator, tmp_path):
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    write_kubeconfig(home / ".kube" / "config", emulator.url)
    run_agent({"HOME": str(home)}).wait_healthy()


def assert_one_line(agent: Agent, code: ExitCode, *fragments: str) -> None:
    assert agent.wait_exit() == code, agent.stderr()
    lines = agent.stderr().splitlines()
    assert len(lines) == 1, agent.stderr()
    for fragment in fragments:
        assert fragment in lines[0]


def test_no_kubernetes_configuration(run_agent, tmp_path):
    agent = run_agent({"HOME": str(tmp_path)})
    assert_one_line(agent, ExitCode.NO_KUBERNETES_CONFIG, "no Kubernetes configuration")


def test_a_refused_secret_is_reported_at_startup(run_agent, emulator, tmp_path):
    write_kubeconfig(tmp_path / "config", emulator.url)
    env = {"KUBECONFIG": str(tmp_path / "config"), "HOME": str(tmp_path)}
    agent = run_agent(env, **{"client-secret": "not-the-secret"})
    assert_one_line(agent, ExitCode.AUTH, ADMIN_ID, "refused")


def test_a_key_without_a_rule_for_the_cluster_is_reported_at_startup(
    run_agent, emulator, module_server, tmp_path
):
    key = httpx.post(
        module_server.base_url + "/api/v1/service-accounts",
        json={"name": "agent-without-rule"},
        headers=module_server.auth_headers(),
    )
    assert key.status_code == 201, key.text
    write_kubeconfig(tmp_path / "config", emulator.url)
    env = {"KUBECONFIG": str(tmp_path / "config"), "HOME": str(tmp_path)}
    options = {"client-id": key.json()["clientId"], "client-secret": key.json()["clientSecret"]}
    agent = run_agent(env, **options)
    assert_one_line(agent, ExitCode.AUTH, "403", CLUSTER_ID)


def test_an_unreachable_api_server_is_one_warning_per_backoff_period(run_agent, emulator, tmp_path):
    write_kubeconfig(tmp_path / "config", emulator.url)
    agent = run_agent({"KUBECONFIG": str(tmp_path / "config"), "HOME": str(tmp_path)})
    agent.wait_healthy()
    down = time.monotonic()
    emulator.restart(downtime=4 * BACKOFF_SECONDS)
    deadline = time.monotonic() + WAIT_SECONDS
    while "Kubernetes API answering again" not in agent.stderr():
        assert time.monotonic() < deadline, agent.stderr()
        time.sleep(0.1)
    outage = time.monotonic() - down
    warnings = [line for line in agent.stderr().splitlines() if WARNING in line]
    # Every one of the watched kinds retried several times; one warning per period remains.
    assert 1 <= len(warnings) <= outage / BACKOFF_SECONDS + 1, warnings
    assert not [line for line in agent.stderr().splitlines() if "watch of" in line]
