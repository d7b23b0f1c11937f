"""A real Prometheus server on a TSDB built from generated exporter series.

``write_openmetrics`` renders three hours of dcgm-exporter, kube-state-metrics, cAdvisor, NIM and
vLLM series (one sample every ``SCRAPE_SECONDS``) for the workloads in ``WORKLOADS``;
``build_tsdb`` turns that text into blocks with ``promtool tsdb create-blocks-from openmetrics``;
``PrometheusServer`` runs Debian's ``prometheus`` on those blocks on a free loopback port.

Every value is a plain function of the sample index ``k`` (time ``start + k x 15s``), so tests can
work out by hand what any query must return. The data ends an hour or more before the wall
clock, as imported blocks must lie in the past.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.ports import PORT_ATTEMPTS, bind_refused, free_port, listens_on

SCRAPE_SECONDS = 15
SAMPLES = 3 * 3600 // SCRAPE_SECONDS  # three hours
MIB = 1024 * 1024
GIB = 1024 * MIB
# What dcgm-exporter exports for a field the GPU does not support (DCGM_INT64_BLANK + 2).
DCGM_SENTINEL = 9223372036854775794
SENTINEL_K = 240  # one hour in: train-1's GPU 1 reports the sentinel once
TRAIN_SLOWDOWN_K = 480  # two hours in: train-0's GPU 0 drops from 80% to 40%
TRAIN_1_RUNNING_K = 120  # train-1 is Pending for its first 30 minutes
INFERENCE_QUIET_K = 600  # after 2.5 hours the NIM workload receives no more requests
FB_TOTAL_MIB = 80_000

TTFT_BOUNDS = ("0.1", "0.5", "1.0", "2.0", "+Inf")
TTFT_PER_SCRAPE = (1, 3, 4, 5, 5)  # cumulative across le, added every scrape
E2E_BOUNDS = ("0.5", "1.0", "5.0", "10.0", "+Inf")
E2E_PER_SCRAPE = (0, 2, 4, 5, 6)


@dataclass(frozen=True)
class Gpu:
    node: str
    index: int
    pod: str | None  # None: not assigned to a workload
    namespace: str | None
    utilisation: Callable[[int], float]
    fb_used_mib: float


@dataclass(frozen=True)
class Workload:
    name: str
    namespace: str
    pods: tuple[str, ...]
    allocated_gpus: float


TEAM_A, TEAM_B = "team-a", "team-b"
TRAIN = Workload("train", TEAM_A, ("train-0", "train-1", "train-2"), 4.0)
LLM = Workload("llm", TEAM_B, ("llm-7d9f-abcde",), 1.0)
CHAT = Workload("chat", TEAM_B, ("chat-0",), 1.0)
IDLE = Workload("idle", TEAM_A, ("idle-0",), 1.0)
WORKLOADS = (TRAIN, LLM, CHAT, IDLE)


def _train_0_gpu_0(k: int) -> float:
    return 80.0 if k < TRAIN_SLOWDOWN_K else 40.0


def _train_1_gpu_1(k: int) -> float:
    return float(DCGM_SENTINEL) if k == SENTINEL_K else 0.0


GPUS = (
    Gpu("node-a", 0, "train-0", TEAM_A, _train_0_gpu_0, 1000),
    Gpu("node-a", 1, "train-0", TEAM_A, lambda k: 60.0, 2000),
    Gpu("node-b", 0, "train-1", TEAM_A, lambda k: 20.0, 3000),
    Gpu("node-b", 1, "train-1", TEAM_A, _train_1_gpu_1, 4000),
    Gpu("node-a", 2, "llm-7d9f-abcde", TEAM_B, lambda k: 70.0, 50_000),
    Gpu("node-a", 3, "chat-0", TEAM_B, lambda k: 10.0, 20_000),
    Gpu("node-c", 0, "idle-0", TEAM_A, lambda k: 0.0, 500),
    Gpu("node-c", 1, None, None, lambda k: 0.0, 0),
)
NVLINK_TX_BYTES = 1e9
NVLINK_RX_BYTES = 5e8
PCIE_TX_BYTES = 3e8
PCIE_RX_BYTES = 2e8


def profiling_ratio(field_index: int, gpu_index: int, k: int) -> float:
    """DCGM profiling fields (ratios 0-1): distinct per field and GPU, changing every scrape."""
    return round(((field_index + 1) * 0.07 + gpu_index * 0.05 + (k % 8) * 0.01) % 1, 4)


PROFILING_FIELDS = (
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
    "DCGM_FI_PROF_SM_ACTIVE",
    "DCGM_FI_PROF_SM_OCCUPANCY",
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
    "DCGM_FI_PROF_PIPE_FP64_ACTIVE",
    "DCGM_FI_PROF_PIPE_FP32_ACTIVE",
    "DCGM_FI_PROF_PIPE_FP16_ACTIVE",
    "DCGM_FI_PROF_DRAM_ACTIVE",
)


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    node: str
    phase: Callable[[int], str]
    gpus: int
    cpu_request: float = 4.0
    cpu_limit: float = 8.0
    memory_request: float = 16 * GIB
    memory_limit: float = 32 * GIB
    cpu_cores_used: float = 1.5
    memory_used: float = 2 * GIB


PODS = (
    Pod("train-0", TEAM_A, "node-a", lambda k: "Running", 2),
    Pod(
        "train-1", TEAM_A, "node-b", lambda k: "Pending" if k < TRAIN_1_RUNNING_K else "Running", 2
    ),
    Pod("train-2", TEAM_A, "node-b", lambda k: "Succeeded", 0),
    Pod("llm-7d9f-abcde", TEAM_B, "node-a", lambda k: "Running", 1, cpu_request=2, cpu_limit=4),
    Pod("chat-0", TEAM_B, "node-a", lambda k: "Running", 1, cpu_request=2, cpu_limit=4),
    Pod("idle-0", TEAM_A, "node-c", lambda k: "Running", 1, cpu_cores_used=0.25),
)
PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")


@dataclass
class _Family:
    name: str
    type: str
    lines: list[str] = field(default_factory=list)


def _labels(labels: dict[str, str]) -> str:
    body = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in labels.items()
    )
    return "{" + body + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class _Writer:
    def __init__(self, start_s: int) -> None:
        self.start_s = start_s
        self.families: dict[str, _Family] = {}

    def series(self, family: str, kind: str, name: str, labels, value: Callable[[int], float]):
        fam = self.families.setdefault(family, _Family(family, kind))
        text = name + _labels(labels)
        fam.lines.extend(
            f"{text} {_number(value(k))} {self.start_s + k * SCRAPE_SECONDS}"
            for k in range(SAMPLES + 1)
        )

    def histogram(self, family: str, labels, bounds, per_scrape, active: Callable[[int], bool]):
        fam = self.families.setdefault(family, _Family(family, "histogram"))
        counts = [0] * len(bounds)
        total = 0.0
        for k in range(SAMPLES + 1):
            if k > 0 and active(k):
                counts = [c + d for c, d in zip(counts, per_scrape, strict=True)]
                total += per_scrape[-1] * 0.4
            ts = self.start_s + k * SCRAPE_SECONDS
            for bound, count in zip(bounds, counts, strict=True):
                fam.lines.append(f"{family}_bucket{_labels({**labels, 'le': bound})} {count} {ts}")
            fam.lines.append(f"{family}_count{_labels(labels)} {counts[-1]} {ts}")
            fam.lines.append(f"{family}_sum{_labels(labels)} {_number(total)} {ts}")

    def text(self) -> str:
        out: list[str] = []
        for fam in self.families.values():
            out.append(f"# TYPE {fam.name} {fam.type}")
            out.extend(fam.lines)
        out.append("# EOF")
        return "\n".join(out) + "\n"


def _dcgm(writer: _Writer) -> None:
    for gpu in GPUS:
        labels = {
            "gpu": str(gpu.index),
            "UUID": f"GPU-{gpu.node}-{gpu.index}",
            "modelName": "NVIDIA H100 80GB HBM3",
            "Hostname": gpu.node,
            # Scraped without honorLabels: the exporter's own pod takes namespace/pod.
            "namespace": "gpu-operator",
            "pod": f"nvidia-dcgm-exporter-{gpu.node}",
        }
        if gpu.pod is not None:
            labels |= {
                "exported_namespace": gpu.namespace,
                "exported_pod": gpu.pod,
                "exported_container": "main",
            }
        used = gpu.fb_used_mib
        for family, value in (
            ("DCGM_FI_DEV_GPU_UTIL", gpu.utilisation),
            ("DCGM_FI_DEV_FB_USED", lambda k, used=used: used),
            ("DCGM_FI_DEV_FB_FREE", lambda k, used=used: FB_TOTAL_MIB - used),
            ("DCGM_FI_PROF_NVLINK_TX_BYTES", lambda k: NVLINK_TX_BYTES),
            ("DCGM_FI_PROF_NVLINK_RX_BYTES", lambda k: NVLINK_RX_BYTES),
            ("DCGM_FI_PROF_PCIE_TX_BYTES", lambda k: PCIE_TX_BYTES),
            ("DCGM_FI_PROF_PCIE_RX_BYTES", lambda k: PCIE_RX_BYTES),
        ):
            writer.series(family, "gauge", family, labels, value)
        for field_index, family in enumerate(PROFILING_FIELDS):
            writer.series(
                family,
                "gauge",
                family,
                labels,
                lambda k, f=field_index, g=gpu.index: profiling_ratio(f, g, k),
            )


NODE_CPU_CORES = 64
NODE_MEMORY_BYTES = 512 * GIB


def _kube_state_metrics(writer: _Writer) -> None:
    for node in sorted({gpu.node for gpu in GPUS}):
        gpus = sum(1 for gpu in GPUS if gpu.node == node)
        for resource, unit, value in (
            ("cpu", "core", NODE_CPU_CORES),
            ("memory", "byte", NODE_MEMORY_BYTES),
            ("nvidia_com_gpu", "integer", gpus),
        ):
            for family in ("kube_node_status_capacity", "kube_node_status_allocatable"):
                labels = {"node": node, "resource": resource, "unit": unit}
                writer.series(family, "gauge", family, labels, lambda k, v=value: v)
    for pod in PODS:
        base = {"namespace": pod.namespace, "pod": pod.name, "uid": f"uid-{pod.name}"}
        for phase in PHASES:
            writer.series(
                "kube_pod_status_phase",
                "gauge",
                "kube_pod_status_phase",
                base | {"phase": phase},
                lambda k, pod=pod, phase=phase: 1.0 if pod.phase(k) == phase else 0.0,
            )
        container = base | {"container": "main", "node": pod.node}
        for kind, resource, unit, value in (
            ("requests", "cpu", "core", pod.cpu_request),
            ("limits", "cpu", "core", pod.cpu_limit),
            ("requests", "memory", "byte", pod.memory_request),
            ("limits", "memory", "byte", pod.memory_limit),
            ("requests", "nvidia_com_gpu", "integer", pod.gpus),
        ):
            if value:
                family = f"kube_pod_container_resource_{kind}"
                labels = container | {"resource": resource, "unit": unit}
                writer.series(family, "gauge", family, labels, lambda k, v=value: v)


def _cadvisor(writer: _Writer) -> None:
    for pod in PODS:
        if pod.phase(0) == "Succeeded":
            continue
        base = {"namespace": pod.namespace, "pod": pod.name, "node": pod.node}
        # The pod-level cgroup (container="") and the pause container must not be counted.
        for container, cores, memory in (
            ("main", pod.cpu_cores_used, pod.memory_used),
            ("", 100.0, 10 * GIB),
            ("POD", 0.01, MIB),
        ):
            labels = base | {"container": container}
            writer.series(
                "container_cpu_usage_seconds",
                "counter",
                "container_cpu_usage_seconds_total",
                labels,
                lambda k, c=cores: c * SCRAPE_SECONDS * k,
            )
            writer.series(
                "container_memory_working_set_bytes",
                "gauge",
                "container_memory_working_set_bytes",
                labels,
                lambda k, m=memory: m,
            )


def _nim(writer: _Writer) -> None:
    labels = {"namespace": TEAM_B, "pod": LLM.pods[0], "model_name": "meta/llama-3.1-8b-instruct"}
    for family, value in (
        ("num_requests_running", 4.0),
        ("num_requests_waiting", 2.0),
        ("num_request_max", 256.0),
        ("gpu_cache_usage_perc", 0.25),
    ):
        writer.series(family, "gauge", family, labels, lambda k, v=value: v)
    writer.series("request_success", "counter", "request_success_total", labels, lambda k: 2.0 * k)
    writer.series(
        "request_failure", "counter", "request_failure_total", labels, lambda k: float(k // 4)
    )

    def active(k: int) -> bool:
        return k <= INFERENCE_QUIET_K

    writer.histogram("time_to_first_token_seconds", labels, TTFT_BOUNDS, TTFT_PER_SCRAPE, active)
    writer.histogram("e2e_request_latency_seconds", labels, E2E_BOUNDS, E2E_PER_SCRAPE, active)


def _vllm(writer: _Writer) -> None:
    labels = {"namespace": TEAM_B, "pod": CHAT.pods[0], "model_name": "mistral-7b"}
    for family, value in (
        ("vllm:num_requests_running", 3.0),
        ("vllm:num_requests_waiting", 1.0),
        ("vllm:kv_cache_usage_perc", 0.5),
    ):
        writer.series(family, "gauge", family, labels, lambda k, v=value: v)
    for reason, per_scrape in (("stop", 3.0), ("length", 1.0), ("abort", 0.5)):
        writer.series(
            "vllm:request_success",
            "counter",
            "vllm:request_success_total",
            labels | {"finished_reason": reason},
            lambda k, r=per_scrape: r * k,
        )
    writer.histogram(
        "vllm:time_to_first_token_seconds", labels, TTFT_BOUNDS, (2, 2, 4, 4, 4), lambda k: True
    )
    writer.histogram(
        "vllm:e2e_request_latency_seconds", labels, E2E_BOUNDS, (1, 1, 2, 2, 2), lambda k: True
    )


def data_start(now_s: float) -> int:
    """Where the generated data begins: an hour boundary, so the data ends >= 1h before now."""
    return int(now_s // 3600) * 3600 - 4 * 3600


def write_openmetrics(path: Path, start_s: int) -> Path:
    writer = _Writer(start_s)
    _dcgm(writer)
    _kube_state_metrics(writer)
    _cadvisor(writer)
    _nim(writer)
    _vllm(writer)
    path.write_text(writer.text())
    return path


def build_tsdb(directory: Path, start_s: int) -> Path:
    """A TSDB directory holding the generated series from ``start_s`` for three hours."""
    directory.mkdir(parents=True, exist_ok=True)
    source = write_openmetrics(directory.parent / "series.om.txt", start_s)
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(directory)],
        check=True,
        capture_output=True,
    )
    source.unlink()
    return directory


def prometheus_available() -> bool:
    return shutil.which("prometheus") is not None and shutil.which("promtool") is not None


class PrometheusServer:
    """``prometheus`` serving a TSDB directory on a free loopback port."""

    def __init__(self, tsdb: Path, workdir: Path) -> None:
        self.tsdb = tsdb
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen | None = None

    def start(
        self,
        timeout: float = 30.0,
        remote_read_url: str | None = None,
        web_config: Path | None = None,
        scrape_target: str | None = None,
    ) -> PrometheusServer:
        """Start and wait until ready; a failing ``remote_read_url`` makes every answer partial,
        a ``web_config`` (TLS) makes the server answer HTTPS, a ``scrape_target``
        (``host:port``) is scraped for ``/metrics`` every second as job ``gpufleet``."""
        config = self.workdir / "prometheus.yml"
        text = f"global:\n  scrape_interval: {SCRAPE_SECONDS}s\n"
        if remote_read_url:
            text += f"remote_read:\n  - url: {remote_read_url}\n    read_recent: true\n"
        if scrape_target:
            text += (
                "scrape_configs:\n  - job_name: gpufleet\n    scrape_interval: 1s\n"
                f"    static_configs:\n      - targets: ['{scrape_target}']\n"
            )
        config.write_text(text)
        for attempt in range(PORT_ATTEMPTS):
            if attempt:  # another worker's server took the port before this one bound it
                self.port = free_port()
            self.url = f"{'https' if web_config else 'http'}://127.0.0.1:{self.port}"
            log = self.workdir / f"prometheus-{self.port}.log"
            with log.open("wb") as output:
                self._process = subprocess.Popen(
                    [
                        "prometheus",
                        f"--config.file={config}",
                        f"--storage.tsdb.path={self.tsdb}",
                        # Imported blocks are hours old; keep them.
                        "--storage.tsdb.retention.time=3650d",
                        f"--web.listen-address=127.0.0.1:{self.port}",
                        *([f"--web.config.file={web_config}"] if web_config else []),
                    ],
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            if self._wait_ready(timeout):
                return self
            exited = self._process.poll() is not None
            self.stop()
            if exited and bind_refused(log.read_text(errors="replace")):
                continue
            break
        raise RuntimeError(f"prometheus did not become ready; see {log}")

    def _wait_ready(self, timeout: float) -> bool:
        """Whether this server (not another worker's on the same port) became ready."""
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._process.poll() is None:
            try:
                ready = httpx.get(f"{self.url}/-/ready", timeout=1, verify=False)
                ours = listens_on(self._process.pid, self.port) is not False
                if ready.status_code == 200 and ours:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def query(self, query: str) -> list[dict]:
        """The raw ``result`` of an instant query at the current time."""
        response = httpx.post(f"{self.url}/api/v1/query", data={"query": query}, timeout=30)
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]["result"]

    def query_range(self, query: str, start_s: float, end_s: float, step_s: float) -> list[dict]:
        """The raw ``result`` of a range query, straight from Prometheus."""
        response = httpx.post(
            f"{self.url}/api/v1/query_range",
            data={"query": query, "start": start_s, "end": end_s, "step": step_s},
            timeout=30,
        )
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]["result"]


def started_prometheus(tmp: Path, start_s: int) -> Iterator[PrometheusServer]:
    """Build the TSDB under ``tmp``, start Prometheus on it, stop it afterwards."""
    server = PrometheusServer(build_tsdb(tmp / "tsdb", start_s), tmp).start()
    try:
        yield server
    finally:
        server.stop()
