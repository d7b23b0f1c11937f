"""Wire shapes of the access administration API (keys, rules, roles, audit log)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gpufleet.core.roles import Role, ScopeType, SubjectType
from gpufleet.schemas.storable import StorableModel


class AccessKeyCreate(StorableModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=253)


class AccessKey(BaseModel):
    clientId: str
    name: str
    createdAt: datetime
    lastUsedAt: datetime | None = None
    disabled: bool


class AccessKeyWithSecret(AccessKey):
    clientSecret: str = Field(description="Shown once; only a hash is stored.")


class AccessKeyList(BaseModel):
    accessKeys: list[AccessKey]


class AccessRuleCreate(StorableModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)
    subjectType: SubjectType
    subjectId: str = Field(min_length=1, max_length=253)
    roleName: Role
    scopeType: ScopeType
    scopeId: str = Field("", max_length=64, description="Empty for the tenant scope.")


class AccessRule(BaseModel):
    id: int
    subjectType: str
    subjectId: str
    roleName: str
    scopeType: str
    scopeId: str
    createdAt: datetime
    createdBy: str


class AccessRuleList(BaseModel):
    accessRules: list[AccessRule]


class RoleDescription(BaseModel):
    name: str
    description: str
    permissions: list[str]
    scopeTypes: list[str]


class RoleList(BaseModel):
    roles: list[RoleDescription]


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target: str | None = None
    sourceIp: str | None = None
    details: dict[str, Any] | None = None


class AuditLog(BaseModel):
    next: int | None = None
    entries: list[AuditEntry]


class SigningKey(BaseModel):
    kid: str
    algorithm: str
    createdAt: datetime
    active: bool


class SigningKeyList(BaseModel):
    signingKeys: list[SigningKey]
