"""Bringing a database to a servable state: schema, signing key, administrator credentials."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection, Engine

from gpufleet.auth.secrets import generate_client_id, generate_secret, hash_secret, verify_secret
from gpufleet.core.roles import Role, ScopeType, SubjectType
from gpufleet.settings import Settings
from gpufleet.store import access_rules, credentials
from gpufleet.store.dialect import exclusive
from gpufleet.store.migrate import upgrade

ADMIN_ROLE = Role.SYSTEM_ADMINISTRATOR.value
# Differs from the migration lock, which is taken inside this one.
BOOTSTRAP_LOCK_ID = 4711002


@dataclass(frozen=True, slots=True)
class GeneratedAdmin:
    client_id: str
    client_secret: str


def _grant_administrator(conn: Connection, client_id: str) -> None:
    existing = access_rules.list_rules(
        conn, subject_type=SubjectType.ACCESS_KEY.value, subject_id=client_id
    )
    if not any(
        rule.role == ADMIN_ROLE and rule.scope_type == ScopeType.TENANT for rule in existing
    ):
        access_rules.create_rule(
            conn,
            subject_type=SubjectType.ACCESS_KEY.value,
            subject_id=client_id,
            role=ADMIN_ROLE,
            scope_type=ScopeType.TENANT.value,
            scope_id="",
            created_by="bootstrap",
        )


def ensure_admin(engine: Engine, settings: Settings) -> GeneratedAdmin | None:
    """Make the configured administrator usable, or create one when none exists.

    A generated secret is returned so the caller can print it once; only its hash is stored.
    """
    with engine.begin() as conn:
        if settings.admin_client_id and settings.admin_client_secret:
            secret = settings.admin_client_secret.get_secret_value()
            existing = credentials.get_access_key(conn, settings.admin_client_id)
            if existing is None or not verify_secret(secret, existing.secret_hash):
                credentials.put_access_key(
                    conn,
                    client_id=settings.admin_client_id,
                    name="administrator",
                    secret_hash=hash_secret(secret),
                )
            _grant_administrator(conn, settings.admin_client_id)
            return None
        administrators = access_rules.list_rules(conn, subject_type=SubjectType.ACCESS_KEY.value)
        if any(rule.role == ADMIN_ROLE for rule in administrators):
            return None
        generated = GeneratedAdmin(generate_client_id("admin"), generate_secret())
        credentials.put_access_key(
            conn,
            client_id=generated.client_id,
            name="administrator",
            secret_hash=hash_secret(generated.client_secret),
        )
        _grant_administrator(conn, generated.client_id)
        return generated


def prepare_store(engine: Engine, settings: Settings) -> GeneratedAdmin | None:
    # One replica at a time: two creating the first key or the administrator would collide.
    with exclusive(engine, BOOTSTRAP_LOCK_ID):
        upgrade(engine)
        with engine.begin() as conn:
            credentials.ensure_signing_key(conn)
        return ensure_admin(engine, settings)
