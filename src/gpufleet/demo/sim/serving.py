"""How busy a service is and how fast it answers, each service its own.

A service's demand follows the day's rhythm (``service_load``) times its popularity and a slow
drift of its own (a value per quarter hour, blended into the next), so no two services draw
the same line and nights are not flat. What one pod serves at full load and how long it takes
follow the model's size (the GPUs a pod holds): a larger model answers fewer requests a second,
each more slowly. Past 70 % of what its pods can take, a service's latencies grow with its load.
Every figure is drawn from a stream of the service (and the quarter hour), never from the
simulation's own, so adding services changes nothing else.
"""

from __future__ import annotations

import bisect
import functools
import math
import random
from dataclasses import dataclass
from datetime import datetime

from gpufleet.demo.metrics_history import LATENCY_BUCKETS
from gpufleet.demo.sim.jobs import Job
from gpufleet.demo.sim.records import service_load
from gpufleet.metrics.types import WorkloadMetricType

_QUARTER_SECONDS = 900
# A service's share of the day's demand at the busiest, drawn between these; the usage
# history draws a service's utilisation at the mean.
POPULARITY = (0.4, 1.0)
MEAN_POPULARITY = sum(POPULARITY) / 2
# Load from which requests queue and latencies grow, and how fast they grow beyond it.
_CONGESTED, _CONGESTION = 0.7, 2.0


@dataclass(frozen=True, slots=True)
class Service:
    popularity: float  # its share of the day's demand, at the busiest
    per_pod: float  # requests a second one pod serves at full load
    latency: float  # its latencies against the reference shape (``LATENCY_BUCKETS``)
    failing: float  # share of its requests that fail


@functools.lru_cache(maxsize=4096)
def service(job_id: str, gpus: float) -> Service:
    """The service ``job_id`` whose pods hold ``gpus`` GPUs each."""
    rng = random.Random(f"{job_id}/service")
    size = math.sqrt(max(gpus, 0.5))
    return Service(
        popularity=rng.uniform(*POPULARITY),
        per_pod=rng.uniform(24.0, 56.0) / size,
        latency=rng.uniform(0.7, 1.3) * size,
        failing=rng.uniform(0.0005, 0.004),
    )


@functools.lru_cache(maxsize=16384)
def _quarter(stream: str, quarter: int) -> float:
    return random.Random(f"{stream}/{quarter}").uniform(0.85, 1.15)


def _drift(stream: str, moment: datetime) -> float:
    """A factor of 0.85 … 1.15 that wanders from one quarter hour to the next."""
    quarters = moment.timestamp() / _QUARTER_SECONDS
    first = math.floor(quarters)
    before, after = _quarter(stream, first), _quarter(stream, first + 1)
    return before + (after - before) * (quarters - first)


def load(job_id: str, gpus: float, moment: datetime) -> float:
    """Demand on the service at ``moment``, as a share of what its pods can serve (0 … 1)."""
    drift = _drift(job_id, moment)
    return min(1.0, service_load(moment) * service(job_id, gpus).popularity * drift)


def latency_scale(profile: Service, busy: float) -> float:
    """How much slower than the reference shape the service answers at load ``busy``."""
    return profile.latency * (1.0 + _CONGESTION * max(0.0, busy - _CONGESTED))


@functools.lru_cache(maxsize=4096)
def latency_shares(metric_type: WorkloadMetricType, scale: float) -> tuple[float, ...]:
    """Share of requests at or under each bound of ``LATENCY_BUCKETS[metric_type]`` when every
    latency is ``scale`` times the reference's: the reference's shares, read between its
    bounds on a log scale (linearly from 0 below the first)."""
    table = LATENCY_BUCKETS[metric_type]
    finite = [(bound, share) for bound, share in table if math.isfinite(bound)]
    logs = [math.log(bound) for bound, _ in finite]
    shares = []
    for bound, _ in table:
        if not math.isfinite(bound):
            shares.append(1.0)
            continue
        at = bound / scale
        index = bisect.bisect_left(logs, math.log(at))
        if index == 0:
            first_bound, first_share = finite[0]
            shares.append(first_share * min(at / first_bound, 1.0))
        elif index == len(finite):
            shares.append(1.0)
        else:
            (low, low_share), (high, high_share) = finite[index - 1], finite[index]
            part = (math.log(at) - math.log(low)) / (math.log(high) - math.log(low))
            shares.append(low_share + (high_share - low_share) * part)
    return tuple(shares)


def serve(job: Job, moment: datetime, seconds: float) -> None:
    """Count the requests the service ``job`` answers in the ``seconds`` up to ``moment``:
    its totals of requests served and failed, and of those at or under each latency bound."""
    profile = service(job.id, job.gpus)
    busy = load(job.id, job.gpus, moment)
    served = busy * profile.per_pod * seconds * job.pods
    job.served += served
    job.failed_requests += served * profile.failing
    # Latencies wander by half as much as the demand does, on a stream of their own.
    wander = 1.0 + (_drift(f"{job.id}/latency", moment) - 1.0) / 2
    scale = round(latency_scale(profile, busy) * wander, 2)
    for metric_type in LATENCY_BUCKETS:
        totals = job.latencies.setdefault(metric_type, [0.0] * len(LATENCY_BUCKETS[metric_type]))
        for index, share in enumerate(latency_shares(metric_type, scale)):
            totals[index] += served * share
