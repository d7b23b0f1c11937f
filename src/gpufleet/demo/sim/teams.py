"""The teams of the demo organisation: what each submits, where, how often and how it runs.

Each project of the organisation is one team. A team submits its kinds of work to its node
pools at a rate that follows the working day (UTC office hours, quieter at night and at
weekends); each kind of work has its size, its duration and its character: steady training,
bursty notebooks, idle hoarders, or services that serve requests around the clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from gpufleet.demo.catalog import KINDS, WorkloadKind
from gpufleet.demo.organisation import OPERATORS, PROJECTS, RESEARCH, Project

STEADY, BURSTY, IDLE, SERVING = "steady", "bursty", "idle", "serving"
_KIND = {kind.type: kind for kind in KINDS}


@dataclass(frozen=True, slots=True)
class Work:
    """One kind of work a team submits."""

    kind: WorkloadKind
    weight: float
    pool: str
    pods: tuple[int, ...]
    # GPUs per pod: whole devices, a fraction of one, or 0.
    gpus: tuple[float, ...]
    # How long it runs, in hours (shortest, longest); services run until deleted.
    hours: tuple[float, float]
    character: str
    topics: tuple[str, ...]
    # The priority class when not the category's default.
    priority_class: str | None = None
    # Chance that a run fails before it is done.
    failure: float = 0.05


@dataclass(frozen=True, slots=True)
class Team:
    """A project's people, its work, its arrival rate and its quota per node pool."""

    project: Project
    people: tuple[str, ...]
    # Submissions per hour at the peak of a working day.
    rate: float
    work: tuple[Work, ...]
    # Deserved GPUs per pool, and the limit where one is set.
    quota: dict[str, float]
    limit: dict[str, float]
    over_quota_weight: float
    # Work already running when the simulation starts (services, long runs).
    standing: tuple[Work, ...] = ()
    # Services submitted with the standing work that ask, with it, for more than the project's
    # deserved GPUs for non-preemptible work: one of them waits in the queue with that reason
    # while the standing services run, at night too (as some workload does in most fleets).
    queued: tuple[Work, ...] = ()

    @property
    def cluster(self):
        return self.project.department.cluster


def _work(kind: str, weight: float, pool: str, pods, gpus, hours, character, topics, **extra):
    return Work(_KIND[kind], weight, pool, tuple(pods), tuple(gpus), hours, character,
                tuple(topics), **extra)  # fmt: skip


_P = {project.name: project for project in PROJECTS}
_LLM = ("llama3-70b", "llama3-8b", "mixtral-8x7b", "moe-16b", "gpt-neox-20b")
_VISION = ("resnet50", "vit-l16", "yolov8", "sdxl", "clip-vit", "unet-seg")
_SPEECH = ("whisper-large", "conformer", "wav2vec2", "tts-fastpitch", "asr-streaming")
_RL = ("ppo-humanoid", "impala-atari", "sac-manipulation", "muzero")
_SERVING = ("llama3-8b-chat", "embedqa-e5", "rerank-mistral", "mixtral-chat", "codellama-13b")
_NOTEBOOK = ("explore", "eda", "prototype", "analysis", "debug")
_CI = ("cuda-smoke", "nccl-tests", "gpu-burn", "driver-check", "unit-gpu")
_RECSYS = ("dlrm", "two-tower", "wide-deep", "din", "xgb-ctr")
_FRAUD = ("gbdt-fraud", "graphsage-fraud", "tabnet", "anomaly-ae")
_SEARCH = ("bert-ranker", "colbert", "embedder", "query-intent")
_NLP = ("t5-summarise", "bert-ner", "llama3-8b-sft", "sentiment", "rag-qa")

TEAMS: tuple[Team, ...] = (
    Team(_P["llm-pretrain"], ("dmitri.volkov@example.com", "hana.sato@example.com",
                             "李伟@example.com"), 1.0,
         (_work("PyTorchJob", 3, "h100", (2, 3, 4), (8,), (6, 30), STEADY, _LLM),
          _work("Distributed", 2, "h100", (2, 4), (8,), (2, 12), STEADY, _LLM),
          _work("Training", 1, "h100", (1,), (4, 8), (1, 6), STEADY, _LLM)),
         {"h100": 64}, {}, 2,
         standing=(_work("PyTorchJob", 1, "h100", (9,), (8,), (30, 40), STEADY, _LLM),
                   _work("Distributed", 1, "h100", (4,), (8,), (20, 30), STEADY, _LLM))),
    Team(_P["vision"], ("carmen.ruiz@example.com", "kofi.mensah@example.com"), 6.0,
         (_work("Training", 4, "a100", (1,), (1, 2, 4, 8), (2, 14), STEADY, _VISION),
          _work("Workspace", 2, "a100", (1,), (1, 0.5), (2, 8), BURSTY, _VISION),
          _work("Distributed", 1, "a100", (2, 4), (8,), (3, 10), STEADY, _VISION)),
         {"a100": 48}, {}, 1),
    Team(_P["speech"], ("jules.martin@example.com", "erin@example.com"), 3.0,
         (_work("Training", 3, "a100", (1,), (1, 2, 4), (2, 12), STEADY, _SPEECH),
          _work("Job", 1, "a100", (1,), (1,), (0.2, 1), STEADY, _SPEECH, failure=0.1)),
         {"a100": 24}, {}, 1),
    Team(_P["rl-agents"], ("ivan.petrov@example.com", "zoë.lefèvre@example.com"), 1.5,
         (_work("RayCluster", 2, "a100", (2, 3), (2,), (6, 20), IDLE, _RL),
          _work("Training", 1, "a100", (1,), (1, 2), (2, 8), STEADY, _RL)),
         {"a100": 24}, {"a100": 48}, 1),
    Team(_P["inference-prod"], ("farah.haddad@example.com", "mlops-bot"), 0.1,
         (_work("Inference", 2, "a100", (2, 3), (1,), (100, 100), SERVING, _SERVING),
          _work("NIMService", 1, "h100", (1, 2), (1, 2), (100, 100), SERVING, _SERVING)),
         {"h100": 24, "a100": 24}, {}, 3,
         standing=(_work("NIMService", 1, "h100", (2,), (2,), (100, 100), SERVING, _SERVING),
                   _work("NIMService", 1, "h100", (2,), (1,), (100, 100), SERVING, _SERVING),
                   _work("Inference", 1, "a100", (3,), (1,), (100, 100), SERVING, _SERVING),
                   _work("DistributedInference", 1, "h100", (2,), (4,), (100, 100), SERVING,
                         _SERVING),
                   _work("Inference", 1, "a100", (2,), (0.5,), (100, 100), SERVING,
                         _SERVING)),
         queued=(_work("NIMService", 1, "h100", (2,), (8,), (100, 100), SERVING,
                       ("llama3-70b-chat",)),)),
    Team(_P["inference-staging"], ("gustavo@example.com", "lena.schmidt@example.com"), 1.5,
         (_work("Inference", 2, "default", (1,), (1, 0.5), (1, 6), SERVING, _SERVING),
          _work("Deployment", 1, "default", (1, 2), (1,), (1, 8), SERVING, _SERVING)),
         {"default": 16}, {}, 1),
    Team(_P["notebooks"], ("alice@example.com", "bob.nguyen@example.com", "erin@example.com",
                          "søren.østergaard@example.com"), 8.0,
         (_work("Workspace", 4, "default", (1,), (1, 0.5, 0.5), (1, 9), BURSTY, _NOTEBOOK),
          _work("Workspace", 2, "a100", (1,), (1, 2), (3, 12), IDLE, _NOTEBOOK),
          _work("Notebook", 1, "default", (1,), (1,), (2, 10), IDLE, _NOTEBOOK)),
         {"default": 48, "a100": 8}, {"default": 64}, 1),
    Team(_P["ci-gpu"], ("mlops-bot",), 12.0,
         (_work("Job", 3, "default", (1,), (1,), (0.1, 0.5), STEADY, _CI, failure=0.15),
          _work("Pod", 1, "default", (1,), (1, 0), (0.05, 0.3), STEADY, _CI, failure=0.1)),
         {"default": 16}, {"default": 32}, 1),
    Team(_P["recsys"], ("lena.schmidt@example.com", "gustavo@example.com"), 5.0,
         (_work("Training", 3, "a100", (1,), (1, 2, 4, 8), (2, 16), STEADY, _RECSYS),
          _work("XGBoostJob", 1, "a100", (3, 5), (1,), (0.5, 3), STEADY, _RECSYS),
          _work("TFJob", 1, "a100", (2, 4), (4,), (4, 18), STEADY, _RECSYS)),
         {"a100": 64}, {}, 2,
         standing=(_work("TFJob", 1, "a100", (4,), (4,), (30, 40), STEADY, _RECSYS),
                   _work("Training", 1, "a100", (1,), (8,), (20, 30), STEADY, _RECSYS))),
    Team(_P["fraud-detection"], ("farah.haddad@example.com", "kofi.mensah@example.com"), 6.0,
         (_work("Training", 3, "l40s", (1,), (1, 2, 4, 8), (1, 10), STEADY, _FRAUD),
          _work("Workspace", 1, "l40s", (1,), (1,), (2, 8), BURSTY, _FRAUD)),
         {"l40s": 40}, {}, 1,
         standing=(_work("Inference", 1, "l40s", (2,), (1,), (100, 100), SERVING, _FRAUD),)),
    Team(_P["search-ranking"], ("hana.sato@example.com", "jules.martin@example.com"), 4.0,
         (_work("Training", 2, "a100", (1,), (2, 4, 8), (3, 16), STEADY, _SEARCH),
          _work("Inference", 1, "l40s", (1, 2), (1,), (4, 24), SERVING, _SEARCH),
          _work("Training", 2, "l40s", (1,), (2, 4, 8), (2, 12), STEADY, _SEARCH)),
         {"l40s": 32, "a100": 32}, {}, 1,
         standing=(_work("Inference", 1, "l40s", (4,), (1,), (100, 100), SERVING, _SEARCH),)),
    Team(_P["nlp-apps"], ("zoë.lefèvre@example.com", "carmen.ruiz@example.com",
                         "bob.nguyen@example.com"), 6.0,
         (_work("Workspace", 3, "l40s", (1,), (1, 0.5), (1, 8), BURSTY, _NLP),
          _work("Training", 2, "a100", (1,), (1, 2, 4), (2, 10), STEADY, _NLP),
          _work("Workspace", 1, "default", (1,), (1,), (4, 12), IDLE, _NLP)),
         {"l40s": 40, "a100": 32, "default": 16}, {}, 1,
         standing=(_work("NIMService", 1, "l40s", (2,), (1,), (100, 100), SERVING, _NLP),)),
)  # fmt: skip

# A department's own quota in a pool, where it is not its projects' quotas added up: research
# promises its projects 64 H100s and is guaranteed 48 (over-subscribed), betting that not every
# project uses its quota at once.
DEPARTMENT_QUOTAS: dict[str, dict[str, float]] = {RESEARCH.id: {"h100": 48}}


def daily_rhythm(moment: datetime) -> float:
    """Share of the peak arrival rate at this moment: office hours UTC, calmer weekends."""
    hour = moment.hour + moment.minute / 60
    daytime = max(0.0, math.sin((hour - 6) / 14 * math.pi)) if 6 <= hour <= 20 else 0.0
    if moment.weekday() >= 5:
        return 0.15 + 0.25 * daytime
    return 0.25 + 0.75 * daytime


def submitter(team: Team, kind: WorkloadKind, pick: float) -> tuple[str, str | None, str | None]:
    """(source, sourceApi, submittedBy) of a submission: people submit native workloads
    through the CLI or the UI; third-party kinds are applied by operators or automation."""
    person = team.people[int(pick * len(team.people)) % len(team.people)]
    if kind.native:
        if person == "mlops-bot":
            return "Control-plane", "WorkloadsV2", person
        return ("CLI", None, person) if pick < 0.4 else ("Control-plane", None, person)
    if kind.type == "NIMService":
        return "Control-plane", "WorkloadsV2", person
    if kind.type in ("Deployment", "StatefulSet", "InferenceService"):
        return "Other", None, OPERATORS[0]
    if kind.type in ("Job", "Pod") and person == "mlops-bot":
        return "Other", None, OPERATORS[2]
    return "Other", None, person
