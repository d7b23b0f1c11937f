"""Bringing a database to a servable state: schema, signing key, administrator credentials."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.engine import Connection, Engine

from gpufleet.auth.secrets import generate_client_id, generate_secret, hash_secret, verify_secret
from gpufleet.core.errors import Invalid
from gpufleet.core.roles import Role, ScopeType, SubjectType
from gpufleet.settings import Settings
from gpufleet.store import access_rules, credentials
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


def _grant_administrator(conn: Connection, client_id: str) -> None:
    existing = access_rules.list_rules(
        conn, subject_type=SubjectType.SERVICE_ACCOUNT.value, subject_id=client_id
    )
    if not any(
        rule.role == ADMIN_ROLE and rule.scope_type == ScopeType.TENANT for rule in existing
    ):
        access_rules.create_rule(
            conn,
            subject_type=SubjectType.SERVICE_ACCOUNT.value,
            subject_id=client_id,
            role=ADMIN_ROLE,
            scope_type=ScopeType.TENANT.value,
            scope_id="",
            created_by="bootstrap",
        )


def _has_administrator(conn: Connection) -> bool:
    rules = access_rules.list_rules(conn, subject_type=SubjectType.SERVICE_ACCOUNT.value)
    return any(rule.role == ADMIN_ROLE for rule in rules)


def _create_administrator(conn: Connection, client_id: str, secret: str) -> None:
    credentials.put_access_key(
        conn, client_id=client_id, name="administrator", secret_hash=hash_secret(secret)
    )
    _grant_administrator(conn, client_id)


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
            _create_administrator(conn, settings.admin_client_id, secret)
            return None
        generated = GeneratedAdmin(generate_client_id("admin"), generate_secret())
        _create_administrator(conn, generated.client_id, generated.client_secret)
        return generated


def restore_admin(conn: Connection, settings: Settings) -> str:
    """Break-glass: the configured administrator enabled, with the environment's secret and the
    tenant's system-administrator rule, whatever happened to it; its earlier tokens are revoked.

    Returns its client id. Needs ``admin_client_id`` and ``admin_client_secret``.
    """
    if not (settings.admin_client_id and settings.admin_client_secret):
        raise Invalid(
            "restore-admin needs GPUFLEET_ADMIN_CLIENT_ID and GPUFLEET_ADMIN_CLIENT_SECRET."
        )
    secret = settings.admin_client_secret.get_secret_value()
    _create_administrator(conn, settings.admin_client_id, secret)
    return settings.admin_client_id


def prepare_store(engine: Engine, settings: Settings) -> GeneratedAdmin | None:
    # One replica at a time: two creating the first key or the administrator would collide.
    with exclusive(engine, BOOTSTRAP_LOCK_ID):
        upgrade(engine)
        with engine.begin() as conn:
            credentials.ensure_signing_key(conn)
        return ensure_admin(engine, settings)
