"""The kinds of workloads the demo simulates, with the defaults each kind brings.

Native types carry their Run:ai category; third-party kinds use the Kubernetes Kind as their
type and the category Run:ai assigns that Kind by default. Priorities follow the current
Run:ai priority dictionary, and a priority below 100 means preemptible, as in the scheduler.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gpufleet.demo.weighted import Weighted
from gpufleet.schemas.enums import Phase

BUILD, TRAIN, DEPLOY = "Build", "Train", "Deploy"

# Default priority class of each category, then the occasional override a user picks.
CATEGORY_PRIORITIES: dict[str, Weighted[str]] = {
    BUILD: Weighted((("high", 0.85), ("medium-low", 0.15))),
    TRAIN: Weighted((("low", 0.75), ("medium", 0.15), ("very-low", 0.1))),
    DEPLOY: Weighted((("very-high", 0.85), ("high", 0.15))),
}

P = Phase
# How the phases of a kind are spread; "batch" kinds finish, services and workspaces do not.
_SHAPE_PHASES: dict[str, dict[Phase, float]] = {
    "batch": {
        P.RUNNING: 28, P.COMPLETED: 34, P.PENDING: 11, P.FAILED: 9, P.INITIALIZING: 3,
        P.CREATING: 1.5, P.DEGRADED: 1.5, P.STOPPED: 3, P.STOPPING: 0.5, P.RESUMING: 0.5,
        P.TERMINATING: 1, P.DELETING: 0.5, P.UNKNOWN: 0.5,
    },
    "service": {
        P.RUNNING: 55, P.PENDING: 8, P.FAILED: 4, P.INITIALIZING: 4, P.CREATING: 1.5,
        P.DEGRADED: 4, P.UPDATING: 4, P.STOPPED: 4, P.STOPPING: 0.5, P.RESUMING: 0.5,
        P.TERMINATING: 1, P.DELETING: 1, P.UNKNOWN: 0.5,
    },
    "interactive": {
        P.RUNNING: 45, P.STOPPED: 15, P.PENDING: 10, P.FAILED: 4, P.INITIALIZING: 4,
        P.COMPLETED: 3, P.CREATING: 1.5, P.DEGRADED: 2, P.STOPPING: 1, P.RESUMING: 1,
        P.TERMINATING: 1, P.DELETING: 1, P.UNKNOWN: 0.5,
    },
}  # fmt: skip
_SUSPEND_PHASES = frozenset({P.STOPPED, P.STOPPING, P.RESUMING})

# The raw state a kind's root object reports, per phase; the phase name where absent.
_K8S_PHASES: dict[str, dict[Phase, str]] = {
    "pod": {
        P.CREATING: "Pending", P.PENDING: "Pending", P.INITIALIZING: "ContainerCreating",
        P.DEGRADED: "CrashLoopBackOff", P.UPDATING: "Running", P.STOPPING: "Terminating",
        P.STOPPED: "Suspended", P.RESUMING: "Pending", P.DELETING: "Terminating",
        P.COMPLETED: "Succeeded",
    },
    "kubeflow": {
        P.CREATING: "Created", P.PENDING: "Created", P.INITIALIZING: "Created",
        P.RESUMING: "Created", P.DEGRADED: "Restarting", P.STOPPING: "Running",
        P.STOPPED: "Suspended", P.TERMINATING: "Running", P.DELETING: "Running",
        P.COMPLETED: "Succeeded",
    },
    "job": {
        P.CREATING: "Pending", P.INITIALIZING: "Pending", P.RUNNING: "Active",
        P.DEGRADED: "Active", P.STOPPING: "Active", P.STOPPED: "Suspended", P.RESUMING: "Pending",
        P.TERMINATING: "Active", P.DELETING: "Active", P.COMPLETED: "Complete",
    },
    "rollout": {
        P.CREATING: "Progressing", P.PENDING: "Progressing", P.INITIALIZING: "Progressing",
        P.RUNNING: "Available", P.UPDATING: "Progressing", P.RESUMING: "Progressing",
        P.DEGRADED: "MinimumReplicasUnavailable", P.FAILED: "ProgressDeadlineExceeded",
        P.TERMINATING: "Available", P.DELETING: "Available",
    },
    "raycluster": {
        P.CREATING: "pending", P.PENDING: "pending", P.INITIALIZING: "pending",
        P.RUNNING: "ready", P.DEGRADED: "ready", P.FAILED: "failed", P.STOPPING: "suspending",
        P.STOPPED: "suspended", P.RESUMING: "pending", P.TERMINATING: "ready",
        P.DELETING: "ready", P.COMPLETED: "ready", P.UNKNOWN: "unknown",
    },
    "rayjob": {
        P.CREATING: "PENDING", P.PENDING: "PENDING", P.INITIALIZING: "PENDING",
        P.RUNNING: "RUNNING", P.DEGRADED: "RUNNING", P.FAILED: "FAILED", P.STOPPING: "RUNNING",
        P.STOPPED: "STOPPED", P.RESUMING: "PENDING", P.TERMINATING: "RUNNING",
        P.DELETING: "RUNNING", P.COMPLETED: "SUCCEEDED", P.UNKNOWN: "UNKNOWN",
    },
    "nim": {
        P.CREATING: "Pending", P.PENDING: "Pending", P.INITIALIZING: "NotReady",
        P.RUNNING: "Ready", P.DEGRADED: "NotReady", P.UPDATING: "NotReady",
        P.RESUMING: "Pending", P.TERMINATING: "Ready", P.DELETING: "Ready",
    },
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class WorkloadKind:
    """One kind of workload: its wire type, category and how it behaves."""

    type: str
    category: str
    native: bool
    weight: float
    shape: str
    family: str
    suspendable: bool
    images: tuple[str, ...]
    stems: tuple[str, ...]
    # Relative odds of (no GPU, whole GPUs, a fraction of one GPU, GPU memory).
    gpu_modes: tuple[float, float, float, float]
    # Runs several pods (master and workers, replicas or leader groups).
    multi_pod: bool = False
    frameworks: tuple[str, ...] = ()
    serves_urls: bool = False
    phase_weights: dict[Phase, float] = field(init=False, compare=False)
    phases: Weighted[Phase] = field(init=False, compare=False)
    gpu_mode: Weighted[str] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        weights = {
            phase: weight
            for phase, weight in _SHAPE_PHASES[self.shape].items()
            if self.suspendable or phase not in _SUSPEND_PHASES
        }
        object.__setattr__(self, "phase_weights", weights)
        object.__setattr__(self, "phases", Weighted(weights.items()))
        modes = zip(("none", "whole", "fraction", "memory"), self.gpu_modes, strict=True)
        object.__setattr__(self, "gpu_mode", Weighted(modes))

    def k8s_phase(self, phase: Phase) -> str:
        """The raw status string the root object of this kind shows in ``phase``."""
        return _K8S_PHASES[self.family].get(phase, phase.value)


_PYTORCH = ("nvcr.io/nvidia/pytorch:24.05-py3", "nvcr.io/nvidia/nemo:24.05")
_TRAINER = (
    "registry.example.com/research/trainer:1.8.2",
    "nvcr.io/nvidia/tensorflow:24.03-tf2-py3",
)
_SERVING = (
    "vllm/vllm-openai:v0.5.0",
    "nvcr.io/nvidia/tritonserver:24.05-py3",
    "ghcr.io/huggingface/text-generation-inference:2.0",
)
_NOTEBOOK = ("jupyter/scipy-notebook:2024-05-27", "codercom/code-server:4.89.1")
_TRAIN_STEMS = ("train", "finetune", "pretrain", "sweep", "eval")
_SERVE_STEMS = ("serve", "api", "chat", "embed", "rank")

KINDS: tuple[WorkloadKind, ...] = (
    WorkloadKind("Workspace", BUILD, True, 14, "interactive", "pod", True,
                 (*_NOTEBOOK, _PYTORCH[0]), ("ws", "dev", "explore", "notebook"),
                 (0.1, 0.4, 0.3, 0.2)),
    WorkloadKind("Training", TRAIN, True, 16, "batch", "pod", True,
                 (*_TRAINER, _PYTORCH[0]), _TRAIN_STEMS, (0.05, 0.7, 0.15, 0.1)),
    WorkloadKind("Distributed", TRAIN, True, 8, "batch", "kubeflow", True,
                 _PYTORCH, _TRAIN_STEMS, (0.0, 1.0, 0.0, 0.0), multi_pod=True,
                 frameworks=("PyTorch", "PyTorch", "PyTorch", "MPI", "TF", "XGBoost", "JAX")),
    WorkloadKind("Inference", DEPLOY, True, 7, "service", "rollout", True,
                 _SERVING, _SERVE_STEMS, (0.05, 0.45, 0.3, 0.2), serves_urls=True),
    WorkloadKind("DistributedInference", DEPLOY, True, 2, "service", "rollout", True,
                 _SERVING[:1], ("serve", "llm"), (0.0, 1.0, 0.0, 0.0), multi_pod=True,
                 serves_urls=True),
    WorkloadKind("Job", BUILD, False, 6, "batch", "job", True,
                 ("nvidia/cuda:12.4.1-base-ubuntu22.04", "registry.example.com/ci/gpu-tests:main"),
                 ("batch", "preprocess", "gpu-test", "convert"), (0.2, 0.6, 0.15, 0.05)),
    WorkloadKind("PyTorchJob", TRAIN, False, 5, "batch", "kubeflow", True, _PYTORCH,
                 _TRAIN_STEMS, (0.0, 1.0, 0.0, 0.0), multi_pod=True, frameworks=("PyTorch",)),
    WorkloadKind("MPIJob", TRAIN, False, 2, "batch", "kubeflow", True,
                 ("mpioperator/mpi-pi:openmpi", "horovod/horovod:0.28.1"), ("mpi", "horovod"),
                 (0.0, 1.0, 0.0, 0.0), multi_pod=True, frameworks=("MPI",)),
    WorkloadKind("TFJob", TRAIN, False, 1, "batch", "kubeflow", True, _TRAINER[1:],
                 _TRAIN_STEMS, (0.0, 1.0, 0.0, 0.0), multi_pod=True, frameworks=("TF",)),
    WorkloadKind("XGBoostJob", TRAIN, False, 0.5, "batch", "kubeflow", True,
                 ("docker.io/kubeflow/xgboost-dist-iris:latest",), ("xgb", "gbdt"),
                 (0.0, 1.0, 0.0, 0.0), multi_pod=True, frameworks=("XGBoost",)),
    WorkloadKind("JAXJob", TRAIN, False, 0.5, "batch", "kubeflow", True,
                 ("nvcr.io/nvidia/jax:24.04-py3",), ("jax", "train"), (0.0, 1.0, 0.0, 0.0),
                 multi_pod=True, frameworks=("JAX",)),
    WorkloadKind("RayCluster", TRAIN, False, 2, "interactive", "raycluster", True,
                 ("rayproject/ray-ml:2.23.0-gpu",), ("ray", "raycluster"), (0.0, 1.0, 0.0, 0.0),
                 multi_pod=True),
    WorkloadKind("RayJob", TRAIN, False, 2, "batch", "rayjob", True,
                 ("rayproject/ray-ml:2.23.0-gpu",), ("rayjob", "tune"), (0.0, 1.0, 0.0, 0.0),
                 multi_pod=True),
    WorkloadKind("Deployment", DEPLOY, False, 4, "service", "rollout", False,
                 ("registry.example.com/platform/embedder:3.1.0", _SERVING[1]), _SERVE_STEMS,
                 (0.3, 0.4, 0.2, 0.1), serves_urls=True),
    WorkloadKind("StatefulSet", DEPLOY, False, 1.5, "service", "rollout", False,
                 ("milvusdb/milvus:v2.4.4", "registry.example.com/platform/feature-store:2.0.1"),
                 ("vectordb", "cache", "store"), (0.5, 0.3, 0.2, 0.0)),
    WorkloadKind("InferenceService", DEPLOY, False, 2, "service", "rollout", False, _SERVING,
                 _SERVE_STEMS, (0.0, 0.6, 0.25, 0.15), serves_urls=True),
    WorkloadKind("LeaderWorkerSet", DEPLOY, False, 1, "service", "rollout", False,
                 _SERVING[:1], ("llm", "serve"), (0.0, 1.0, 0.0, 0.0), multi_pod=True,
                 serves_urls=True),
    WorkloadKind("NIMService", DEPLOY, False, 2, "service", "nim", False,
                 ("nvcr.io/nim/meta/llama3-8b-instruct:1.0.0",
                  "nvcr.io/nim/nvidia/nv-embedqa-e5-v5:1.0.0"),
                 ("nim", "llm"), (0.0, 1.0, 0.0, 0.0), serves_urls=True),
    WorkloadKind("Pod", DEPLOY, False, 4, "batch", "pod", False,
                 ("nvidia/cuda:12.4.1-base-ubuntu22.04", "python:3.12-slim"),
                 ("debug", "smoke", "nvidia-smi", "bench"), (0.25, 0.5, 0.15, 0.1)),
    WorkloadKind("Notebook", BUILD, False, 1, "interactive", "pod", False, _NOTEBOOK,
                 ("notebook", "lab"), (0.1, 0.4, 0.3, 0.2)),
    WorkloadKind("JobSet", TRAIN, False, 0.5, "batch", "job", True, _PYTORCH, _TRAIN_STEMS,
                 (0.0, 1.0, 0.0, 0.0), multi_pod=True),
)  # fmt: skip
KIND_CHOICE = Weighted((kind, kind.weight) for kind in KINDS)
# Kinds able to be in a phase, for guaranteeing every phase appears in a small demo.
KINDS_BY_PHASE: dict[Phase, Weighted[WorkloadKind]] = {
    phase: Weighted((kind, kind.weight) for kind in KINDS if phase in kind.phase_weights)
    for phase in Phase
}

TOPICS = (
    "llama3", "mistral", "resnet50", "bert", "whisper", "sdxl", "ppo", "xgb", "vit", "t5",
    "clip", "gpt2", "yolo", "unet", "dlrm", "moe", "rag", "asr", "ocr", "tts",
)  # fmt: skip
