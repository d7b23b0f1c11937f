"""Agent latency and footprint: time from an object change in the Kubernetes emulator to the
server's record, and the agent's CPU and memory while it tracks N pods.

A real ``gpufleet serve`` (SQLite) and a real ``gpufleet agent`` process are started against the
list/watch emulator holding N pods (Jobs of 10 pods each). Reported:

- initial sync: time until every workload is on the server, and the agent's CPU seconds for it;
- change latency p50/p95 over M changes (a Job's pod becomes Ready -> record Running), beside
  its floor: one ingest request of the same record straight to the server;
- the agent's resident memory and CPU use while idle with everything tracked.

    .venv/bin/python -m bench.agent_latency --pods 10000 --changes 50
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from tests.support.k8s_emulator import KubernetesEmulator, resources_from, write_kubeconfig
from tests.support.server import ADMIN_ID, ADMIN_SECRET, ServerProcess

from gpufleet.agent.kinds import KINDS

CLUSTER_ID = "3d6f0a2b-9c1e-4f5a-8b7d-2e4c6a8b0d1f"
NAMESPACE = "runai-bench"
PODS_PER_JOB = 10
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def job(index: int) -> dict:
    container = {
        "name": "c",
        "image": "trainer:1",
        "resources": {"limits": {"nvidia.com/gpu": "1"}},
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": f"job-{index}", "namespace": NAMESPACE},
        "spec": {"parallelism": PODS_PER_JOB, "template": {"spec": {"containers": [container]}}},
    }


def pod(owner: dict, index: int, ready: bool) -> dict:
    meta = owner["metadata"]
    reference = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
    }
    status = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{meta['name']}-{index}",
            "namespace": NAMESPACE,
            "ownerReferences": [reference],
        },
        "spec": {"nodeName": f"node-{index}", **owner["spec"]["template"]["spec"]},
        "status": status,
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--changes", type=int, default=50)
    args = parser.parse_args()
    jobs = max(args.pods // PODS_PER_JOB, 1)
    workdir = Path(tempfile.mkdtemp(prefix="gpufleet-agent-bench-"))

    emulator = KubernetesEmulator(resources_from(KINDS), bookmark_interval=5.0).start()
    created = []
    for index in range(jobs):
        owner = emulator.create(job(index))
        created.append(owner)
        for pod_index in range(PODS_PER_JOB):
            # The last pod of each job starts not ready; the latency changes flip it.
            emulator.create(pod(owner, pod_index, ready=pod_index < PODS_PER_JOB - 1))
    print(f"emulator: {jobs} jobs, {jobs * PODS_PER_JOB} pods")

    server = ServerProcess(f"sqlite:///{workdir / 'bench.db'}", log_dir=workdir).start()
    client = httpx.Client(base_url=server.base_url, headers=server.auth_headers(), timeout=30)
    kubeconfig = workdir / "kubeconfig"
    write_kubeconfig(kubeconfig, emulator.url)
    command = [
        sys.executable, "-m", "gpufleet.cli", "agent", "--cluster-id", CLUSTER_ID,
        "--server", server.base_url, "--client-id", ADMIN_ID, "--client-secret", ADMIN_SECRET,
        "--kubeconfig", str(kubeconfig), "--health-port", "0", "--health-host", "127.0.0.1",
        "--push-interval-seconds", "0.05", "--push-batch-size", "1000",
        "--metrics-interval-seconds", "3600", "--log-level", "warning",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUFLEET_")}
    log = open(workdir / "agent.log", "wb")  # noqa: SIM115
    started = time.monotonic()
    agent = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        count = 0
        while count < jobs:
            time.sleep(0.2)
            count = client.get("/api/v1/workloads/count").json()["count"]
            if agent.poll() is not None:
                raise SystemExit(f"agent exited; see {workdir / 'agent.log'}")
        initial = time.monotonic() - started
        initial_cpu = cpu_seconds(agent.pid)
        print(f"initial sync: {jobs} workloads after {initial:.1f}s; agent CPU {initial_cpu:.1f}s")

        latencies = []
        for owner in created[: args.changes]:
            name = owner["metadata"]["name"]
            uid = owner["metadata"]["uid"]
            changed = time.monotonic()
            emulator.patch(
                "v1",
                "Pod",
                NAMESPACE,
                f"{name}-{PODS_PER_JOB - 1}",
                {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
            )
            while client.get(f"/api/v1/workloads/{uid}").json()["phase"] != "Running":
                time.sleep(0.02)
            latencies.append(time.monotonic() - changed)

        record = client.get(f"/api/v1/workloads/{created[0]['metadata']['uid']}").json()
        floors = []
        for _ in range(args.changes):
            body = {
                "workloads": [
                    {
                        **{k: v for k, v in record.items() if k not in ("updatedAt", "deletedAt")},
                        "observedAt": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                        "pods": [],
                    }
                ],
            }
            begin = time.monotonic()
            client.post(
                f"/api/v1/ingest/clusters/{CLUSTER_ID}/workloads", json=body
            ).raise_for_status()
            floors.append(time.monotonic() - begin)
        p50, p95 = statistics.median(latencies), percentile(latencies, 0.95)
        floor = statistics.median(floors)
        print(
            f"change -> record: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms "
            f"over {len(latencies)} changes"
        )
        print(
            f"floor (one ingest request): p50 {floor * 1000:.0f} ms; "
            f"ratio p50/floor {p50 / floor:.1f}x"
        )

        before = cpu_seconds(agent.pid)
        time.sleep(10)
        idle = (cpu_seconds(agent.pid) - before) / 10
        print(
            f"agent while tracking {jobs * PODS_PER_JOB} pods: RSS {rss_mib(agent.pid):.0f} MiB, "
            f"idle CPU {idle * 100:.1f}% of a core"
        )
    finally:
        agent.terminate()
        agent.wait(timeout=30)
        log.close()
        server.stop()
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
