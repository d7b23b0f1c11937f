"""Wire shapes of access administration: Run:ai's service accounts, access keys, access rules,
roles, permissions and audit log, and gpufleet's own signing keys."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gpufleet.schemas.storable import StorableModel

# Run:ai's rule for the names of service accounts and access keys.
NAME_PATTERN = r"^[a-z][-_a-z0-9]*[a-z0-9]$"


class ServiceAccountCreationRequest(StorableModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN, max_length=253)


class ServiceAccountPatchRequest(StorableModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool


class ServiceAccount(BaseModel):
    id: str
    name: str
    clientId: str
    tenantId: str | None = None
    enabled: bool
    createdBy: str
    createdAt: datetime | None
    updatedAt: datetime | None
    lastLogin: datetime | None


class ServiceAccountPostResponse(BaseModel):
    id: str
    name: str
    clientId: str | None = None
    clientSecret: str


class RegenerateSecretResponse(BaseModel):
    clientSecret: str


class AccessKeyCreationRequest(StorableModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN, max_length=253)


class AccessKey(BaseModel):
    id: str
    name: str
    clientId: str
    createdAt: datetime | None
    lastLogin: datetime | None


class AccessKeys(BaseModel):
    accessKeys: list[AccessKey]


class AccessKeyAdministration(AccessKey):
    createdBy: str


class AccessKeysAdministration(BaseModel):
    accessKeys: list[AccessKeyAdministration]


class AccessKeyPostResponse(BaseModel):
    id: str
    name: str
    clientId: str
    clientSecret: str
    createdAt: datetime | None


SubjectTypeName = Literal["user", "app", "service-account", "group"]
ScopeTypeName = Literal["system", "tenant", "cluster", "department", "project"]


class AccessRuleCreationFields(StorableModel):
    model_config = ConfigDict(extra="forbid")
    subjectId: str = Field(min_length=1, max_length=253)
    subjectType: SubjectTypeName
    roleId: int = Field(ge=-(2**31), le=2**31 - 1)
    scopeId: str = Field(max_length=64)
    scopeType: ScopeTypeName
    clusterId: str | None = Field(None, max_length=64)


class AccessRuleStatus(BaseModel):
    phase: Literal["Creating", "Ready", "NotReady", "Deleting"] | None = None
    message: str | None = None
    details: str | None = None


class MeAccessRule(BaseModel):
    id: int
    tenantId: int
    subjectId: str
    subjectType: str
    roleId: int
    roleName: str
    scopeId: str
    scopeType: str
    scopeName: str
    clusterId: str | None = None


class AccessRule(MeAccessRule):
    createdAt: datetime
    updatedAt: datetime
    createdBy: str
    deletedAt: datetime | None = None
    status: AccessRuleStatus | None = None


class AccessRuleById(AccessRule):
    scopePath: str | None = None


class AccessRules(BaseModel):
    totalRecords: int
    displayRecords: int
    accessRules: list[AccessRule]


class Count(BaseModel):
    count: int


class MeAccessRulesPage(BaseModel):
    totalRecords: int
    displayRecords: int
    accessRules: list[MeAccessRule]


class MeAccessRulesResponse(BaseModel):
    accessRules: MeAccessRulesPage


class Permission(BaseModel):
    resourceType: str
    displayName: str
    groupId: str
    actions: list[Literal["create", "read", "update", "delete", "sync"]]


class Role(BaseModel):
    id: int
    name: str
    description: str
    permissions: list[Permission]
    createdAt: datetime
    updatedAt: datetime
    createdBy: str
    custom: bool
    enabled: bool | None = None
    effectiveEnabled: bool
    deletedAt: datetime | None = None


class AuditLog(BaseModel):
    id: str | None = None
    tenant_id: str
    timestamp: datetime | None = None
    subject: str
    subject_type: Literal["User", "App"]
    action: Literal["create", "update", "delete", "sign-in", "sign-out", "reset-password"]
    result: Literal["Succeeded", "Failed"]
    source_ip: str | None = None
    entity_type: str | None = None
    entity_id: str | None = None
    entity_name: str | None = None
    metadata: dict[str, str] | None = None


class AuditLogPage(BaseModel):
    logs: list[AuditLog]
    audit_logs: list[AuditLog] | None = None
    next: int | None = None
    total: int | None = None


class SigningKey(BaseModel):
    kid: str
    algorithm: str
    createdAt: datetime
    active: bool


class SigningKeyList(BaseModel):
    signingKeys: list[SigningKey]
