"""Bringing a database to a servable state: schema, signing key, administrator credentials."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.engine import Connection, Engine

from gpufleet.auth.administration import (
    BOOTSTRAP_ACTOR,
    Actor,
    grant_rule,
    record,
    record_creation,
)
from gpufleet.auth.secrets import generate_client_id, generate_secret, hash_secret, verify_secret
from gpufleet.core.errors import Invalid
from gpufleet.core.roles import Role, ScopeType, SubjectType
from gpufleet.settings import Settings
from gpufleet.store import access_keys, access_rules, credentials
from gpufleet.store.dialect import exclusive
from gpufleet.store.migrate import upgrade

log = logging.getLogger("gpufleet.bootstrap")
ADMIN_ROLE = Role.SYSTEM_ADMINISTRATOR.value
# Differs from the migration lock, which is taken inside this one.
BOOTSTRAP_LOCK_ID = 4711002


@dataclass(frozen=True, slots=True)
class GeneratedAdmin:
    client_id: str
    client_secret: str


def _grant_administrator(conn: Connection, actor: Actor, client_id: str) -> None:
    existing = access_rules.list_rules(
        conn, subject_type=SubjectType.SERVICE_ACCOUNT.value, subject_id=client_id
    )
    if not any(
        rule.role == ADMIN_ROLE and rule.scope_type == ScopeType.TENANT for rule in existing
    ):
        grant_rule(
            conn,
            actor,
            subject_type=SubjectType.SERVICE_ACCOUNT,
            subject_id=client_id,
            role=Role.SYSTEM_ADMINISTRATOR,
            scope_type=ScopeType.TENANT,
            scope_id="",
        )


def _has_administrator(conn: Connection) -> bool:
    rules = access_rules.list_rules(conn, subject_type=SubjectType.SERVICE_ACCOUNT.value)
    return any(rule.role == ADMIN_ROLE for rule in rules)


def _create_administrator(
    conn: Connection, actor: Actor, client_id: str, secret: str
) -> access_keys.CredentialRow:
    """The account created (or its secret reset and itself enabled) and its rule granted, each
    creation audited in the caller's transaction: a crash keeps both or neither."""
    created = credentials.put_access_key(
        conn,
        client_id=client_id,
        name="administrator",
        secret_hash=hash_secret(secret),
        created_by=actor.name,
    )
    row = access_keys.get_by_client_id(conn, client_id)
    if created:
        record_creation(conn, actor, row)
    _grant_administrator(conn, actor, client_id)
    return row


def _warn_if_changed(existing: credentials.AccessKey, secret: str) -> None:
    if existing.disabled:
        log.warning(
            "the bootstrap administrator %s is disabled and stays so; "
            "`gpufleet access restore-admin` enables it again",
            existing.client_id,
        )
    elif not verify_secret(secret, existing.secret_hash):
        log.warning(
            "the bootstrap administrator %s has another secret than GPUFLEET_ADMIN_CLIENT_SECRET "
            "(rotated since); `gpufleet access restore-admin` resets it",
            existing.client_id,
        )


def ensure_admin(engine: Engine, settings: Settings) -> GeneratedAdmin | None:
    """Create the bootstrap administrator when the store has no administrator yet.

    Once it exists, a restart leaves it alone: an administrator may have disabled it, rotated
    its secret or revoked its rule, and the environment's secret must not quietly undo that.
    The recovery path is ``gpufleet access restore-admin`` (``restore_admin``). A
    generated secret is returned so the caller can print it once; only its hash is stored.
    """
    with engine.begin() as conn:
        configured = settings.admin_client_id and settings.admin_client_secret
        if configured:
            secret = settings.admin_client_secret.get_secret_value()
            existing = credentials.get_access_key(conn, settings.admin_client_id)
            if existing is not None:
                _warn_if_changed(existing, secret)
                return None
        if _has_administrator(conn):
            return None
        if configured:
            _create_administrator(conn, BOOTSTRAP_ACTOR, settings.admin_client_id, secret)
            return None
        generated = GeneratedAdmin(generate_client_id("admin"), generate_secret())
        _create_administrator(conn, BOOTSTRAP_ACTOR, generated.client_id, generated.client_secret)
        return generated


def restore_admin(conn: Connection, settings: Settings, actor: Actor) -> str:
    """Break-glass: the configured administrator enabled, with the environment's secret and the
    tenant's system-administrator rule, whatever happened to it; its earlier tokens are revoked.

    Audited as ``actor``: the account's or rule's creation where either was missing, and the
    restoration itself. Returns its client id. Needs ``admin_client_id`` and
    ``admin_client_secret``.
    """
    if not (settings.admin_client_id and settings.admin_client_secret):
        raise Invalid(
            "restore-admin needs GPUFLEET_ADMIN_CLIENT_ID and GPUFLEET_ADMIN_CLIENT_SECRET."
        )
    secret = settings.admin_client_secret.get_secret_value()
    row = _create_administrator(conn, actor, settings.admin_client_id, secret)
    record(conn, actor, "service_account.restore_admin", row.client_id, row.name, id=row.id)
    return row.client_id


def _ensure_signing_key(conn: Connection) -> None:
    key = credentials.ensure_signing_key(conn)
    if key is not None:
        record(conn, BOOTSTRAP_ACTOR, "signing_key.create", key.kid)


def prepare_store(engine: Engine, settings: Settings) -> GeneratedAdmin | None:
    # One replica at a time: two creating the first key or the administrator would collide.
    with exclusive(engine, BOOTSTRAP_LOCK_ID):
        upgrade(engine)
        with engine.begin() as conn:
            _ensure_signing_key(conn)
        return ensure_admin(engine, settings)
