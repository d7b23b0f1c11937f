"""The store's reading of a caller's rules and key, on every authenticated request."""

from __future__ import annotations

from gpufleet.store import access_keys as access_key_store
from gpufleet.store.access_rules import (
    KeyStanding,
    create_rule,
    delete_rule,
    rules_for_subjects,
    rules_with_key,
)
from gpufleet.store.credentials import get_access_key, put_access_key


def _grant(conn, subject_type: str, subject_id: str, scope_id: str) -> int:
    rule = create_rule(
        conn,
        subject_type=subject_type,
        subject_id=subject_id,
        role="viewer",
        scope_type="project",
        scope_id=scope_id,
        created_by="test",
    )
    return rule.id


def test_callers_with_as_many_groups_each_get_their_own_rules(engine):
    """The statement is built once per number of subjects; what it binds is each caller's."""
    with engine.begin() as conn:
        _grant(conn, "user", "ann", "p-ann")
        _grant(conn, "user", "bob", "p-bob")
        _grant(conn, "group", "red", "p-red")
        _grant(conn, "group", "blue", "p-blue")
        revoked = _grant(conn, "group", "blue", "p-revoked")
        delete_rule(conn, revoked)

    def scopes(*subjects: tuple[str, str]) -> list[str]:
        with engine.connect() as conn:
            return [rule.scope_id for rule in rules_for_subjects(conn, subjects)]

    for _ in range(2):  # the second time through the statements built the first
        assert scopes(("user", "ann")) == ["p-ann"]
        assert scopes(("user", "bob")) == ["p-bob"]
        assert scopes(("user", "ann"), ("group", "red")) == ["p-ann", "p-red"]
        assert scopes(("user", "bob"), ("group", "blue")) == ["p-bob", "p-blue"]
        assert scopes(("user", "ann"), ("group", "blue"), ("group", "red")) == [
            "p-ann",
            "p-red",
            "p-blue",
        ]
        assert scopes(("group", "ann"), ("user", "red")) == []  # a type is part of the subject
        assert scopes() == []


def test_each_key_is_read_as_it_is_now(engine):
    with engine.begin() as conn:
        put_access_key(conn, client_id="key-a", name="a", secret_hash="x")
        put_access_key(conn, client_id="key-b", name="b", secret_hash="y")
    with engine.connect() as conn:
        assert get_access_key(conn, "key-a").name == "a"
        assert get_access_key(conn, "key-b").name == "b"
        assert get_access_key(conn, "key-c") is None
    with engine.begin() as conn:
        access_key_store.set_disabled(conn, "key-a", True)
    with engine.connect() as conn:
        assert get_access_key(conn, "key-a").disabled
        assert not get_access_key(conn, "key-b").disabled


def test_a_keys_standing_and_its_rules_are_read_together(engine):
    """What every request of a key's token reads, in one statement: the key's standing, and
    the rules in force of the caller's subjects (none is not the same as no key)."""
    with engine.begin() as conn:
        put_access_key(conn, client_id="key-a", name="a", secret_hash="x")
        put_access_key(conn, client_id="key-b", name="b", secret_hash="y")
        _grant(conn, "app", "key-a", "p-a")
        _grant(conn, "group", "ops", "p-ops")
        delete_rule(conn, _grant(conn, "app", "key-a", "p-revoked"))
        _grant(conn, "app", "key-b", "p-b")

    def read(client_id: str, *subjects: tuple[str, str]):
        with engine.connect() as conn:
            key, rules = rules_with_key(conn, client_id, subjects)
        return key, [rule.scope_id for rule in rules]

    for _ in range(2):  # the second time through the statements built the first
        assert read("key-a", ("app", "key-a")) == (KeyStanding(False, 0), ["p-a"])
        assert read("key-a", ("app", "key-a"), ("group", "ops")) == (
            KeyStanding(False, 0),
            ["p-a", "p-ops"],
        )
        assert read("key-a", ("app", "nobody")) == (KeyStanding(False, 0), [])
        assert read("key-c", ("app", "key-c")) == (None, [])
    with engine.begin() as conn:
        access_key_store.set_disabled(conn, "key-a", True)
        put_access_key(conn, client_id="key-b", name="b", secret_hash="z")  # a rotation
    disabled, _ = read("key-a", ("app", "key-a"))
    rotated, rules = read("key-b", ("app", "key-b"))
    assert disabled.disabled and disabled.token_generation == get_key_generation(engine, "key-a")
    assert not rotated.disabled and rotated.token_generation == get_key_generation(engine, "key-b")
    assert rotated.token_generation > 0 and rules == ["p-b"]


def get_key_generation(engine, client_id: str) -> int:
    with engine.connect() as conn:
        return get_access_key(conn, client_id).token_generation
