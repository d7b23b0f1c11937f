"""``gpufleet agent`` options: flags, environment, and clear refusals of bad values."""

from __future__ import annotations

import pytest

from gpufleet.agent.runner import selected_kinds
from gpufleet.agent.settings import AgentSettings
from gpufleet.cli import build_parser, main
from gpufleet.core.exit_codes import ExitCode
from gpufleet.settings_flags import settings_from_flags

REQUIRED = [
    "--cluster-id", "7c1a4f3e-1b2d-4c5e-8f90-a1b2c3d4e5f6",
    "--server", "http://gpufleet.example:8080/",
    "--client-id", "agent",
    "--client-secret", "s3cret",
]  # fmt: skip


def test_flags_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUFLEET_AGENT_PUSH_BATCH_SIZE", "42")
    monkeypatch.setenv("GPUFLEET_AGENT_FULL_SYNC_SECONDS", "60")
    args = build_parser().parse_args(["agent", *REQUIRED, "--full-sync-seconds", "120"])
    settings = settings_from_flags(args, AgentSettings)
    assert settings.push_batch_size == 42
    assert settings.full_sync_seconds == 120
    assert settings.server == "http://gpufleet.example:8080"
    assert settings.client_secret.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    ("flag", "value", "setting"),
    [
        ("--cluster-id", "not-a-uuid", "cluster_id"),
        ("--cluster-id", "'; DROP TABLE workloads; --", "cluster_id"),
        ("--server", "ftp://files.example", "server"),
        ("--push-batch-size", "0", "push_batch_size"),
        ("--push-batch-size", "1e99", "push_batch_size"),
        ("--health-port", "70000", "health_port"),
        ("--department-configmap", "no-slash", "department_configmap"),
        ("--full-sync-seconds", "-1", "full_sync_seconds"),
    ],
)
def test_bad_values_exit_2_naming_the_setting(
    flag: str, value: str, setting: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["agent", *REQUIRED, flag, value]) == 2
    assert f"invalid setting {setting}" in capsys.readouterr().err


def test_missing_required_settings_are_all_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("CLUSTER_ID", "SERVER", "CLIENT_ID", "CLIENT_SECRET"):
        monkeypatch.delenv(f"GPUFLEET_AGENT_{name}", raising=False)
    assert main(["agent"]) == 2
    err = capsys.readouterr().err
    for setting in ("cluster_id", "server", "client_id", "client_secret"):
        assert f"invalid setting {setting}" in err


def test_kind_selection() -> None:
    assert [k.key for k in selected_kinds("Job, PyTorchJob.kubeflow.org")] == [
        "Job.batch",
        "PyTorchJob.kubeflow.org",
    ]
    assert len(selected_kinds(None)) > 20
    with pytest.raises(ValueError, match="Widget"):
        selected_kinds("Job,Widget")


def test_missing_kubeconfig_is_one_line_and_its_own_exit_code(
    capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    absent = tmp_path / "absent"
    code = main(["agent", *REQUIRED, "--kubeconfig", str(absent), "--health-port", "0"])
    assert code == ExitCode.NO_KUBERNETES_CONFIG
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(absent) in err
