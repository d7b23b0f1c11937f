"""Enumerations of the reference contract."""

from enum import StrEnum


class Phase(StrEnum):
    CREATING = "Creating"
    INITIALIZING = "Initializing"
    RESUMING = "Resuming"
    PENDING = "Pending"
    DELETING = "Deleting"
    RUNNING = "Running"
    UPDATING = "Updating"
    STOPPED = "Stopped"
    STOPPING = "Stopping"
    DEGRADED = "Degraded"
    FAILED = "Failed"
    COMPLETED = "Completed"
    TERMINATING = "Terminating"
    UNKNOWN = "Unknown"


TERMINAL_PHASES = frozenset({Phase.COMPLETED, Phase.FAILED})
# Workloads in these phases ask for no resources: finished, or stopped by their owner (a
# stopped workload holds nothing and waits for nothing until it is resumed).
NOT_ASKING_PHASES = frozenset({*TERMINAL_PHASES, Phase.STOPPED})


class NodeStatus(StrEnum):
    READY = "Ready"
    NOT_READY = "NotReady"
    UNKNOWN = "Unknown"


class NodepoolPhase(StrEnum):
    CREATING = "Creating"
    UPDATING = "Updating"
    DELETING = "Deleting"
    EMPTY = "Empty"
    UNSCHEDULABLE = "Unschedulable"
    READY = "Ready"
    DELETED = "Deleted"


class Source(StrEnum):
    CLI = "CLI"
    CONTROL_PLANE = "Control-plane"
    OTHER = "Other"


class SourceApi(StrEnum):
    WORKLOADS_V2 = "WorkloadsV2"


class GpuRequestType(StrEnum):
    PORTION = "portion"
    MEMORY = "memory"


class PhaseReason(StrEnum):
    NON_PREEMPTIBLE_OVER_QUOTA = "NonPreemptibleOverQuota"
    OVER_LIMIT = "OverLimit"


class OrgType(StrEnum):
    PROJECT = "PROJECT"
    DEPARTMENT = "DEPARTMENT"


class ReplicaType(StrEnum):
    MASTER = "Master"
    WORKER = "Worker"
    LEADER = "Leader"


class AuthorizationType(StrEnum):
    PUBLIC = "public"
    AUTHENTICATED_USERS = "authenticatedUsers"
    AUTHORIZED_USERS_OR_GROUPS = "authorizedUsersOrGroups"


class SortOrder(StrEnum):
    ASC = "asc"
    DESC = "desc"


class TokenGrantType(StrEnum):
    APP_TOKEN = "app_token"
    CLIENT_CREDENTIALS = "client_credentials"
    REFRESH_TOKEN = "refresh_token"
    EXCHANGE_TOKEN = "exchange_token"
    PASSWORD = "password"
    EXTERNAL_TOKEN_EXCHANGE = "external_token_exchange"
