"""The living demo as a user starts it: ``gpufleet serve --demo`` on a fresh store.

For each speed asked (default: real time, then 60), a fresh SQLite file (or ``--database-url``)
and a real server process: time until ``/readyz`` answers and until an authenticated list of
workloads answers; time until the demo's status says the fast past is reported (``state``
``live``) and, at speed 1, that it reached the present (``historyComplete``); the process's CPU
(percent of one core) and resident memory, sampled from ``/proc`` every five seconds, while the
past is reported and then over ``--minutes`` of the live demo.

    .venv/bin/python -m bench.demo_live                 # speeds 1 and 60, 3 live minutes each
    .venv/bin/python -m bench.demo_live --speed 1 --minutes 10
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ADMIN_ID = "bench-admin"
ADMIN_SECRET = "bench-admin-secret-0123456789abcdef"
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Run:
    speed: float
    first_ready: float | None = None
    first_list: float | None = None
    past_reported: float | None = None
    history_complete: float | None = None
    # (CPU percent, RSS MiB) samples while the past is reported, and while live.
    past: list[tuple[float, float]] = field(default_factory=list)
    live: list[tuple[float, float]] = field(default_factory=list)
    status: dict = field(default_factory=dict)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _rss_mib(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 2**20


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _token(base: str) -> dict[str, str]:
    body = {"grantType": "client_credentials", "clientID": ADMIN_ID, "clientSecret": ADMIN_SECRET}
    answer = httpx.post(f"{base}/api/v1/token", json=body, timeout=30)
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['accessToken']}"}


def measure(speed: float, minutes: float, database_url: str | None, log: Path) -> Run:
    """One fresh demo server at ``speed``, measured."""
    run = Run(speed)
    workdir = Path(tempfile.mkdtemp(prefix="gpufleet-demo-live-"))
    url = database_url or f"sqlite:///{workdir / 'demo.db'}"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUFLEET_")}
    env.update(GPUFLEET_DATABASE_URL=url, GPUFLEET_ADMIN_CLIENT_ID=ADMIN_ID,
               GPUFLEET_ADMIN_CLIENT_SECRET=ADMIN_SECRET)  # fmt: skip
    command = [sys.executable, "-m", "gpufleet.cli", "serve", "--demo", "--port", str(port),
               "--host", "127.0.0.1", "--demo-speed", str(speed)]  # fmt: skip
    started = time.monotonic()
    with open(log, "ab") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        while run.first_ready is None:
            if process.poll() is not None:
                raise SystemExit(f"the server exited; see {log}")
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    run.first_ready = time.monotonic() - started
            except httpx.HTTPError:
                time.sleep(0.05)
        headers = _token(base)
        answer = httpx.get(f"{base}/api/v1/workloads", headers=headers, timeout=30)
        answer.raise_for_status()
        run.first_list = time.monotonic() - started
        last_cpu, last_at = _cpu_seconds(process.pid), time.monotonic()
        end = None
        while end is None or time.monotonic() < end:
            time.sleep(5)
            cpu, now = _cpu_seconds(process.pid), time.monotonic()
            measured = (100 * (cpu - last_cpu) / (now - last_at), _rss_mib(process.pid))
            last_cpu, last_at = cpu, now
            (run.past if run.past_reported is None else run.live).append(measured)
            run.status = httpx.get(f"{base}/api/v1/demo/status", headers=headers,
                                   timeout=30).json()  # fmt: skip
            if run.past_reported is None and run.status.get("state") == "live":
                run.past_reported = now - started
                end = now + minutes * 60
            if run.history_complete is None and run.status.get("historyComplete"):
                run.history_complete = now - started
    finally:
        process.terminate()
        process.wait(30)
    return run


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def _print(runs: list[Run], minutes: float) -> None:
    def cell(samples: list[tuple[float, float]], index: int) -> str:
        values = [sample[index] for sample in samples]
        return f"{_mean(values):.0f} ({max(values, default=0):.0f})"

    print(
        "| speed | first /readyz | first workload list | fast past reported | present reached "
        "| CPU % while past | RSS MiB while past | CPU % live | RSS MiB live |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for run in runs:
        reached = "—" if run.history_complete is None else f"{run.history_complete:.0f} s"
        print(
            f"| {run.speed:g} | {run.first_ready:.1f} s | {run.first_list:.1f} s "
            f"| {run.past_reported:.0f} s | {reached} | {cell(run.past, 0)} | {cell(run.past, 1)} "
            f"| {cell(run.live, 0)} | {cell(run.live, 1)} |"
        )
    print(f"CPU and RSS: mean (max) of samples every 5 s; live: {minutes:g} minutes")
    for run in runs:
        print(f"speed {run.speed:g}: last status {run.status}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=float, action="append", help="demo speeds (1 and 60)")
    parser.add_argument("--minutes", type=float, default=3.0, help="live time measured")
    parser.add_argument("--database-url", help="a store to use instead of a fresh SQLite file")
    args = parser.parse_args()
    log = Path(tempfile.gettempdir()) / "gpufleet-demo-live.log"
    runs = [measure(speed, args.minutes, args.database_url, log) for speed in args.speed or [1, 60]]
    _print(runs, args.minutes)
    print(f"server log: {log}")


if __name__ == "__main__":
    main()
