"""THE table of Kubernetes kinds the agent understands, as data.

Each row says how to watch the kind, how its pods are found, where its status lives (as
matchers per normalised status), its category, default priority class and suspend field.
Adding a kind means adding a row here (and fixtures), never a class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from gpufleet.agent.matchers import AllOf, Compare, Condition, Differs, Field, Matcher, Not

# workload: can be the root of a workload; wrapper: a root whose own status is secondary (KAI's
# skip-top-owner kinds); podgroup: KAI scheduling evidence; priorityclass: priority values;
# node and queue: the cluster's inventory (``INVENTORY_KINDS``), reported apart from workloads.
Role = Literal["workload", "wrapper", "podgroup", "priorityclass", "node", "queue"]


@dataclass(frozen=True)
class TemplateSet:
    """Where pod templates live and how many pods each stands for.

    ``items`` selects one or more mappings (``spec.workerGroupSpecs.*``); within each,
    ``template`` is the pod template (or the pod spec holder) and ``replicas`` the count
    (1 when absent). ``per_replica`` multiplies it (pods per replica, e.g. Ray ``numOfHosts``)
    and ``factor`` is an absolute path multiplying the whole set (LWS ``spec.replicas``).
    """

    items: str
    template: str = "template"
    replicas: str | None = "replicas"
    per_replica: str | None = None
    factor: str | None = None


@dataclass(frozen=True)
class Kind:
    """One supported Kubernetes kind."""

    group: str
    version: str
    kind: str
    plural: str
    role: Role = "workload"
    category: str = "Train"
    type_name: str | None = None
    namespaced: bool = True
    default_priority_class: str = "train"
    suspend_path: str | None = None
    statuses: Mapping[str, tuple[Matcher, ...]] = field(default_factory=dict)
    raw_phase_path: str | None = None
    templates: tuple[TemplateSet, ...] = ()
    parallelism_path: str | None = None
    completions_path: str | None = None
    min_pods_path: str | None = None
    max_pods_path: str | None = None
    member_label: str | None = None
    priority_label: str | None = None
    distributed_framework: str | None = None

    @property
    def api_version(self) -> str:
        """``group/version`` (or just ``version`` for the core group)."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """A stable name for the kind: ``Kind.group`` (``Pod`` for core)."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def workload_type(self) -> str:
        """The Run:ai ``type``: the native type name, or the Kubernetes Kind."""
        return self.type_name or self.kind

    @property
    def path(self) -> str:
        """The collection path on the API server (all namespaces)."""
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        return f"{prefix}/{self.plural}"


def _kubeflow(kind: str, plural: str, specs: str, framework: str, version: str = "v1") -> Kind:
    return Kind(
        "kubeflow.org",
        version,
        kind,
        plural,
        category="Train",
        suspend_path="spec.runPolicy.suspend",
        statuses={
            "Completed": (Condition("Succeeded"),),
            "Failed": (Condition("Failed"),),
            "Suspended": (Condition("Suspended"),),
            "Degraded": (Condition("Restarting"),),
            "Running": (Condition("Running"),),
            "Initializing": (Condition("Created"),),
        },
        templates=(TemplateSet(f"spec.{specs}.*"),),
        min_pods_path="spec.runPolicy.schedulingPolicy.minAvailable",
        distributed_framework=framework,
    )


def _runai(kind: str, plural: str, type_name: str, category: str, priority: str) -> Kind:
    return Kind(
        "run.ai",
        "v2alpha1",
        kind,
        plural,
        role="wrapper",
        category=category,
        type_name=type_name,
        default_priority_class=priority,
    )


def _all(*matchers: Matcher) -> AllOf:
    return AllOf(matchers)


_JOB_STATUSES: Mapping[str, tuple[Matcher, ...]] = {
    "Completed": (Condition("Complete"),),
    "Failed": (Condition("Failed"),),
    "Suspended": (Condition("Suspended"),),
    "Running": (Compare("status.ready", ">", 0),),
    "Initializing": (_all(Compare("status.active", ">", 0), Compare("status.ready", "==", 0)),),
}

_RAY_CLUSTER_TEMPLATES = (
    TemplateSet("headGroupSpec", replicas=None),
    TemplateSet("workerGroupSpecs.*", per_replica="numOfHosts"),
)


def _prefixed(prefix: str, sets: tuple[TemplateSet, ...]) -> tuple[TemplateSet, ...]:
    return tuple(
        TemplateSet(f"{prefix}.{s.items}", s.template, s.replicas, s.per_replica, s.factor)
        for s in sets
    )


KINDS: tuple[Kind, ...] = (
    Kind(
        "",
        "v1",
        "Pod",
        "pods",
        category="Deploy",
        raw_phase_path="status.phase",
        statuses={
            "Completed": (Field("status.phase", ("Succeeded",)),),
            "Failed": (Field("status.phase", ("Failed",)),),
            "Running": (Field("status.phase", ("Running",)),),
            "Initializing": (Field("status.phase", ("Pending",)),),
        },
        templates=(TemplateSet("", template="", replicas=None),),
    ),
    Kind(
        "batch",
        "v1",
        "Job",
        "jobs",
        category="Build",
        suspend_path="spec.suspend",
        statuses=_JOB_STATUSES,
        templates=(TemplateSet("spec", replicas="parallelism"),),
        parallelism_path="spec.parallelism",
        completions_path="spec.completions",
    ),
    Kind(
        "batch",
        "v1",
        "CronJob",
        "cronjobs",
        category="Deploy",
        suspend_path="spec.suspend",
        statuses={"Running": (Not(Field("status.lastScheduleTime", ("",))),)},
        templates=(TemplateSet("spec.jobTemplate.spec", replicas="parallelism"),),
    ),
    Kind(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        category="Deploy",
        default_priority_class="inference",
        statuses={
            "Failed": (Condition("Progressing", "False", ("ProgressDeadlineExceeded",)),),
            "Updating": (
                _all(
                    Condition("Available"), Condition("Progressing", "True", ("ReplicaSetUpdated",))
                ),
                Differs("metadata.generation", "status.observedGeneration"),
            ),
            "Degraded": (
                AllOf(
                    (
                        Condition("Available", "False", ("MinimumReplicasUnavailable",)),
                        Compare("status.readyReplicas", ">", 0),
                    )
                ),
            ),
            "Running": (
                _all(
                    Condition("Available"), Compare("status.readyReplicas", ">=", "spec.replicas")
                ),
            ),
            "Initializing": (_all(Condition("Progressing"), Condition("Available", "False")),),
        },
        templates=(TemplateSet("spec"),),
    ),
    Kind(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        category="Deploy",
        statuses={
            "Updating": (Differs("status.currentRevision", "status.updateRevision"),),
            "Degraded": (
                AllOf(
                    (
                        Compare("status.readyReplicas", ">", 0),
                        Compare("status.readyReplicas", "<", "spec.replicas"),
                    )
                ),
            ),
            "Running": (Compare("status.readyReplicas", ">=", "spec.replicas"),),
            "Initializing": (
                _all(Compare("status.replicas", ">", 0), Compare("status.readyReplicas", "==", 0)),
            ),
        },
        templates=(TemplateSet("spec"),),
    ),
    Kind(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        category="Deploy",
        statuses={
            "Degraded": (
                AllOf(
                    (
                        Compare("status.readyReplicas", ">", 0),
                        Compare("status.readyReplicas", "<", "spec.replicas"),
                    )
                ),
            ),
            "Running": (Compare("status.readyReplicas", ">=", "spec.replicas"),),
        },
        templates=(TemplateSet("spec"),),
    ),
    _kubeflow("PyTorchJob", "pytorchjobs", "pytorchReplicaSpecs", "PyTorch"),
    _kubeflow("TFJob", "tfjobs", "tfReplicaSpecs", "TF"),
    _kubeflow("MPIJob", "mpijobs", "mpiReplicaSpecs", "MPI", version="v2beta1"),
    _kubeflow("XGBoostJob", "xgboostjobs", "xgbReplicaSpecs", "XGBoost"),
    _kubeflow("JAXJob", "jaxjobs", "jaxReplicaSpecs", "JAX"),
    Kind(
        "trainer.kubeflow.org",
        "v1alpha1",
        "TrainJob",
        "trainjobs",
        role="wrapper",
        category="Train",
        suspend_path="spec.suspend",
        statuses={
            "Completed": (Condition("Complete"),),
            "Failed": (Condition("Failed"),),
            "Suspended": (Condition("Suspended"),),
        },
    ),
    Kind(
        "jobset.x-k8s.io",
        "v1alpha2",
        "JobSet",
        "jobsets",
        category="Train",
        suspend_path="spec.suspend",
        statuses={
            "Completed": (Condition("Completed"),),
            "Failed": (Condition("Failed"),),
            "Suspended": (Condition("Suspended"),),
        },
        templates=(
            TemplateSet(
                "spec.replicatedJobs.*",
                template="template.spec.template",
                per_replica="template.spec.parallelism",
            ),
        ),
    ),
    Kind(
        "ray.io",
        "v1",
        "RayCluster",
        "rayclusters",
        category="Train",
        suspend_path="spec.suspend",
        raw_phase_path="status.state",
        priority_label="ray.io/priority-class-name",
        statuses={
            "Failed": (Field("status.state", ("failed",)),),
            "Suspended": (Field("status.state", ("suspended",)),),
            "Running": (Field("status.state", ("ready",)),),
        },
        templates=_prefixed("spec", _RAY_CLUSTER_TEMPLATES),
    ),
    Kind(
        "ray.io",
        "v1",
        "RayJob",
        "rayjobs",
        category="Train",
        suspend_path="spec.suspend",
        raw_phase_path="status.jobStatus",
        priority_label="ray.io/priority-class-name",
        statuses={
            "Completed": (Field("status.jobStatus", ("SUCCEEDED",)),),
            "Failed": (
                Field("status.jobStatus", ("FAILED",)),
                Field("status.jobDeploymentStatus", ("Failed", "ValidationFailed")),
            ),
            "Suspended": (Field("status.jobDeploymentStatus", ("Suspended",)),),
            "Suspending": (Field("status.jobDeploymentStatus", ("Suspending",)),),
            "Running": (Field("status.jobStatus", ("RUNNING",)),),
            "Initializing": (
                Field("status.jobStatus", ("PENDING",)),
                Field("status.jobDeploymentStatus", ("Initializing",)),
            ),
        },
        templates=_prefixed("spec.rayClusterSpec", _RAY_CLUSTER_TEMPLATES),
    ),
    Kind(
        "ray.io",
        "v1",
        "RayService",
        "rayservices",
        category="Deploy",
        default_priority_class="inference",
        raw_phase_path="status.serviceStatus",
        priority_label="ray.io/priority-class-name",
        statuses={
            "Failed": (Condition("Ready", "False", ("InitializingTimeout", "ValidationFailed")),),
            "Updating": (Condition("UpgradeInProgress"),),
            "Degraded": (Condition("Ready", "False", ("ZeroServeEndpoints",)),),
            "Running": (Condition("Ready"),),
            "Initializing": (Condition("Ready", "False", ("Initializing",)),),
        },
        templates=_prefixed("spec.rayClusterConfig", _RAY_CLUSTER_TEMPLATES),
    ),
    Kind(
        "leaderworkerset.x-k8s.io",
        "v1",
        "LeaderWorkerSet",
        "leaderworkersets",
        category="Deploy",
        default_priority_class="inference",
        statuses={
            "Failed": (
                AllOf(
                    (
                        Condition("Available", "False"),
                        Condition("Progressing", "False"),
                        Condition("UpdateInProgress", "False"),
                    )
                ),
            ),
            "Updating": (Condition("UpdateInProgress"),),
            "Running": (Condition("Available"),),
            "Initializing": (_all(Condition("Progressing"), Condition("Available", "False")),),
        },
        templates=(
            TemplateSet(
                "spec.leaderWorkerTemplate",
                template="workerTemplate",
                replicas=None,
                per_replica="size",
                factor="spec.replicas",
            ),
        ),
    ),
    Kind(
        "serving.knative.dev",
        "v1",
        "Service",
        "services",
        category="Deploy",
        default_priority_class="inference",
        member_label="serving.knative.dev/service",
        statuses={
            "Updating": (
                AllOf(
                    (
                        Condition("Ready"),
                        Differs(
                            "status.latestCreatedRevisionName", "status.latestReadyRevisionName"
                        ),
                    )
                ),
            ),
            "Failed": (Condition("Ready", "False", ("RevisionFailed", "ContainerMissing")),),
            "Running": (Condition("Ready"),),
        },
        templates=(TemplateSet("spec", replicas=None),),
    ),
    Kind(
        "serving.kserve.io",
        "v1beta1",
        "InferenceService",
        "inferenceservices",
        category="Deploy",
        default_priority_class="inference",
        member_label="serving.kserve.io/inferenceservice",
        statuses={
            "Failed": (
                AllOf(
                    (
                        Condition("PredictorReady", "False"),
                        Condition("PredictorConfigurationReady", "False"),
                        Condition("RoutesReady", "False"),
                    )
                ),
            ),
            "Running": (_all(Condition("PredictorReady"), Condition("Ready")),),
        },
        templates=(TemplateSet("spec", template="predictor", replicas=None),),
    ),
    Kind(
        "apps.nvidia.com",
        "v1alpha1",
        "NIMService",
        "nimservices",
        category="Deploy",
        default_priority_class="inference",
        raw_phase_path="status.state",
        statuses={
            "Failed": (Field("status.state", ("Failed",)),),
            "Running": (Field("status.state", ("Ready",)),),
            "Initializing": (Field("status.state", ("Pending", "NotReady")),),
        },
    ),
    Kind(
        "argoproj.io",
        "v1alpha1",
        "Workflow",
        "workflows",
        role="wrapper",
        category="Deploy",
        raw_phase_path="status.phase",
        suspend_path="spec.suspend",
        statuses={
            "Completed": (Field("status.phase", ("Succeeded",)),),
            "Failed": (Field("status.phase", ("Failed", "Error")),),
            "Running": (Field("status.phase", ("Running",)),),
        },
    ),
    _runai("TrainingWorkload", "trainingworkloads", "Training", "Train", "train"),
    _runai("InteractiveWorkload", "interactiveworkloads", "Workspace", "Build", "build"),
    _runai("DistributedWorkload", "distributedworkloads", "Distributed", "Train", "train"),
    _runai("InferenceWorkload", "inferenceworkloads", "Inference", "Deploy", "inference"),
    _runai(
        "DistributedInferenceWorkload",
        "distributedinferenceworkloads",
        "DistributedInference",
        "Deploy",
        "inference",
    ),
    Kind("scheduling.run.ai", "v2alpha2", "PodGroup", "podgroups", role="podgroup"),
    Kind(
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        "priorityclasses",
        role="priorityclass",
        namespaced=False,
    ),
)

BY_KEY: Mapping[str, Kind] = {kind.key: kind for kind in KINDS}

# The inventory: nodes and the scheduler's queues. Like every kind, a queue kind whose CRD is
# not installed is looked for again later; until then it simply has no objects.
NODE_KIND = Kind("", "v1", "Node", "nodes", role="node", namespaced=False)
KAI_QUEUE_KIND = Kind("scheduling.run.ai", "v2", "Queue", "queues", role="queue", namespaced=False)
KUEUE_CLUSTER_QUEUE_KIND = Kind(
    "kueue.x-k8s.io", "v1beta1", "ClusterQueue", "clusterqueues", role="queue", namespaced=False
)
KUEUE_LOCAL_QUEUE_KIND = Kind(
    "kueue.x-k8s.io", "v1beta1", "LocalQueue", "localqueues", role="queue"
)
INVENTORY_KINDS: tuple[Kind, ...] = (
    NODE_KIND,
    KAI_QUEUE_KIND,
    KUEUE_CLUSTER_QUEUE_KIND,
    KUEUE_LOCAL_QUEUE_KIND,
)


def group_of(api_version: str) -> str:
    """The API group of an ``apiVersion`` (``""`` for the core group)."""
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def kind_for(api_version: str, kind: str) -> Kind | None:
    """The table row for an object or owner reference, matched by group and Kind (any version)."""
    group = group_of(api_version)
    return BY_KEY.get(f"{kind}.{group}" if group else kind)
