"""Every setting is a CLI flag and a ``GPUFLEET_*`` variable; the flag wins; bad values exit 2.

Sample values are derived from each field's type and bounds, so a setting added later is
covered without touching this module (unless it needs a special value, listed in SAMPLES).
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
import typing
from pathlib import Path

import annotated_types
import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from pydantic.fields import FieldInfo

from gpufleet.cli import build_parser, main
from gpufleet.settings import Settings
from gpufleet.settings_flags import settings_from_flags

# Two distinct valid values for settings whose values are checked beyond their type.
SAMPLES: dict[str, tuple[str, str]] = {
    "database_url": ("sqlite:///./one.db", "sqlite:///./two.db"),
    "log_level": ("debug", "warning"),
    "log_format": ("json", "text"),
    "prometheus_url": ("http://prometheus.example:9090", "https://thanos.example/api"),
    "prometheus_headers": ("X-Scope-OrgID=team-a", "X-Scope-OrgID=team-b,X-Other=1"),
    "oidc_jwks_url": ("https://idp.example/jwks", "https://idp2.example/jwks"),
    "oidc_algorithms": ("RS256", "ES256"),
    "trusted_proxies": ("10.0.0.1", "10.1.0.0/16,::1"),
}
# Settings that are only valid together with others; those are given too, as flags.
COMPANIONS: dict[str, dict[str, str]] = {
    "oidc_issuer": {"oidc_audience": "aud", "oidc_jwks_url": "https://idp.example/jwks"},
    "oidc_audience": {"oidc_issuer": "https://idp.example", "oidc_jwks_url": "https://j/x"},
    "oidc_jwks_url": {"oidc_issuer": "https://idp.example", "oidc_audience": "aud"},
    "prometheus_username": {"prometheus_password": "pw"},
    "prometheus_password": {"prometheus_username": "user"},
}
SUBCOMMANDS = (["serve"], ["db", "upgrade"], ["demo", "seed"])


def _bounds(field: FieldInfo) -> tuple[float, float]:
    low, high = -(10**9), 10**9
    for item in field.metadata:
        if isinstance(item, annotated_types.Ge):
            low = item.ge
        elif isinstance(item, annotated_types.Gt):
            low = item.gt + 0.5
        elif isinstance(item, annotated_types.Le):
            high = item.le
        elif isinstance(item, annotated_types.Lt):
            high = item.lt - 0.5
    return low, high


def _base_type(field: FieldInfo) -> object:
    """The annotation without ``| None``."""
    annotation = field.annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation


def sample_values(name: str, field: FieldInfo) -> tuple[str, str]:
    """Two distinct valid values of a setting, as they would be typed on a command line."""
    if name in SAMPLES:
        return SAMPLES[name]
    kind = _base_type(field)
    if typing.get_origin(kind) is typing.Literal:
        choices = [str(c) for c in typing.get_args(kind) if c != field.default]
        return choices[0], choices[-1]
    if kind is bool:
        return str(not field.default).lower(), str(bool(field.default)).lower()
    if kind in (int, float):
        low, high = _bounds(field)
        candidates = [c for c in (low + 1, low + 2, high - 1, high) if low <= c <= high]
        first, second = candidates[0], candidates[1]
        if kind is int:
            return str(int(first)), str(int(second))
        return str(float(first)), str(float(second))
    # Plain text; also a valid Prometheus label name for the settings that must be one.
    return f"sample_{name}_one", f"sample_{name}_two"


def as_given(value: object) -> str:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def companion_flags(name: str) -> list[str]:
    return [part for key, value in COMPANIONS.get(name, {}).items() for part in (flag(key), value)]


PARSER = build_parser()


def parsed(argv: list[str]) -> Settings:
    return settings_from_flags(PARSER.parse_args(argv), Settings)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    # Building the parser imports every command; one parser serves all in-process calls.
    monkeypatch.setattr("gpufleet.cli.build_parser", lambda: PARSER)
    for key in list(os.environ):
        if key.startswith("GPUFLEET_") and key != "GPUFLEET_TEST_DATABASE":
            monkeypatch.delenv(key)


FIELDS = sorted(Settings.model_fields)


def _equal(value: object, given: str, name: str) -> bool:
    if isinstance(value, float):
        return value == float(given)
    return as_given(value) == given


@pytest.mark.parametrize("name", FIELDS)
def test_every_setting_is_a_flag_of_every_command(name):
    first, _ = sample_values(name, Settings.model_fields[name])
    for command in SUBCOMMANDS:
        settings = parsed([*command, flag(name), first, *companion_flags(name)])
        assert _equal(getattr(settings, name), first, name), (command, name)


@pytest.mark.parametrize("name", FIELDS)
def test_every_setting_is_an_environment_variable(name, monkeypatch):
    first, _ = sample_values(name, Settings.model_fields[name])
    monkeypatch.setenv(f"GPUFLEET_{name.upper()}", first)
    settings = parsed(["serve", *companion_flags(name)])
    assert _equal(getattr(settings, name), first, name)


@pytest.mark.parametrize("name", FIELDS)
def test_the_flag_wins_over_the_environment(name, monkeypatch):
    first, second = sample_values(name, Settings.model_fields[name])
    assert first != second
    monkeypatch.setenv(f"GPUFLEET_{name.upper()}", first)
    settings = parsed(["serve", flag(name), second, *companion_flags(name)])
    assert _equal(getattr(settings, name), second, name)


def _invalid_values(name: str, field: FieldInfo) -> list[str]:
    kind = _base_type(field)
    if typing.get_origin(kind) is typing.Literal:
        return ["neither", "", "BOTH ", "🙂"]
    if kind is bool:
        return ["maybe", "2", "ja"]
    if kind in (int, float):
        low, high = _bounds(field)
        values = ["abc"]
        if low > -(10**9):
            values.append(str(low - 1))
        if high < 10**9:
            values.append(str(high + 1))
        return values
    return []


INVALID = [
    (name, value) for name in FIELDS for value in _invalid_values(name, Settings.model_fields[name])
] + [
    *(
        (name, value)
        for name in ("port", "db_pool_timeout_seconds")
        for value in ("", "1;DROP TABLE workloads", "٣", "1e999999", str(10**40), "nan", "-inf")
    ),
    ("database_url", "mysql://localhost/x"),
    ("database_url", "' OR 1=1 --"),
    ("prometheus_url", "ftp://prometheus"),
    ("prometheus_gpu_label", "not a label"),
    ("prometheus_pod_label", "pod}[5m]) or vector(1"),
    ("admin_client_id", "bootstrap"),
    ("admin_client_id", "cli"),
]


@pytest.mark.parametrize(("name", "value"), INVALID)
def test_invalid_values_exit_2_naming_the_setting(name, value, capsys, monkeypatch):
    if name not in Settings.model_fields:
        pytest.fail(f"{name} is no longer a setting; update INVALID")
    # --name=value, so values that start with a dash stay values.
    assert main(["serve", f"{flag(name)}={value}"]) == 2
    err = capsys.readouterr().err
    assert name in err
    assert "Traceback" not in err
    # The same value from the environment is refused the same way.
    monkeypatch.setenv(f"GPUFLEET_{name.upper()}", value)
    assert main(["serve"]) == 2
    assert name in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags",
    [
        ["--oidc-issuer", "https://idp.example"],
        ["--prometheus-username", "only-user"],
    ],
)
def test_settings_that_belong_together_are_refused_alone(flags, capsys):
    assert main(["serve", *flags]) == 2
    err = capsys.readouterr().err
    assert "together" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--demo-speed", "60"], ["--demo-speed"]),
        (["--demo-workloads", "10", "--seed", "3"], ["--demo-workloads", "--seed"]),
    ],
)
def test_demo_flags_without_demo_are_refused(flags, named, capsys):
    # Refused before the port is bound or the database opened: a plain server never starts.
    assert main(["serve", "--port", "1", *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "together with --demo" in err
    assert all(flag in err for flag in named)


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GPUFLEET_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "gpufleet.cli", *args],
        env=environment,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_the_real_command_refuses_bad_values_with_exit_2():
    result = run_cli("serve", "--port", "eighty")
    assert result.returncode == 2
    assert "port" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_flags_exit_2(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--no-such-flag", "1"])
    assert exited.value.code == 2
    assert "no-such-flag" in capsys.readouterr().err


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_db_upgrade_migrates_the_database(database_url, capsys):
    result = run_cli("db", "upgrade", env={"GPUFLEET_DATABASE_URL": database_url})
    assert result.returncode == 0, result.stderr
    assert "revision" in result.stdout
    assert {"workloads", "alembic_version"} <= _tables(database_url)
    # Upgrading an up-to-date database changes nothing and says the same.
    assert main(["db", "upgrade", "--database-url", database_url]) == 0
    assert capsys.readouterr().out == result.stdout


def test_db_upgrade_flag_beats_the_environment(tmp_path):
    from_env, from_flag = tmp_path / "env.db", tmp_path / "flag.db"
    result = run_cli(
        "db",
        "upgrade",
        "--database-url",
        f"sqlite:///{from_flag}",
        env={"GPUFLEET_DATABASE_URL": f"sqlite:///{from_env}"},
    )
    assert result.returncode == 0, result.stderr
    assert from_flag.exists()
    assert not from_env.exists()
    assert "workloads" in _tables(f"sqlite:///{from_flag}")


def test_client_commands_do_not_read_the_server_settings(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GPUFLEET_PORT", "abc")
    monkeypatch.setenv("GPUFLEET_CONFIG", str(tmp_path / "absent.json"))
    code = main(["workloads", "list"])
    err = capsys.readouterr().err
    assert "invalid setting" not in err
    assert code == 3 and "gpufleet: error:" in err  # not logged in: the client's own error


def _help(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


def test_access_commands_offer_only_their_own_settings(capsys):
    # Administration talks HTTP as the logged-in profile: no server settings at all.
    help_text = _help(capsys, "access", "keys", "create")
    assert "--profile" in help_text and "--database-url" not in help_text
    # Bootstrapping works on the database: its settings and the administrator's, no others.
    help_text = _help(capsys, "access", "bootstrap")
    assert "--database-url" in help_text and "--admin-client-id" in help_text
    assert "--port" not in help_text and "--prometheus-url" not in help_text
    assert len(help_text.splitlines()) < 40
