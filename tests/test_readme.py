"""The README stays true: every setting in its table, its links resolve, its examples run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gpufleet.settings import Settings
from tests.support.databases import ADMIN_ID, ADMIN_SECRET
from tests.support.server import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCUMENTED_URL = "http://127.0.0.1:8080"
ROW = re.compile(r"^\| `(\w+)` \| `(GPUFLEET_\w+)` \| `(--[\w-]+)` \| (.+?) \| (.+) \|$")


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.S | re.M)


def table_rows() -> dict[str, tuple[str, str, str, str]]:
    rows = {}
    for line in README.splitlines():
        match = ROW.match(line)
        if match:
            name, *rest = match.groups()
            assert name not in rows, f"{name} is in the configuration table twice"
            rows[name] = tuple(rest)
    return rows


def documented_default(default: object) -> str:
    if default is None:
        return "(unset)"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    return f"`{default}`"


def test_the_configuration_table_lists_every_setting_exactly():
    rows = table_rows()
    missing = sorted(set(Settings.model_fields) - set(rows))
    stale = sorted(set(rows) - set(Settings.model_fields))
    assert not missing, f"settings missing from the README table: {missing}"
    assert not stale, f"README table rows for settings that no longer exist: {stale}"
    for name, field in Settings.model_fields.items():
        env, flag, default, meaning = rows[name]
        assert env == f"GPUFLEET_{name.upper()}"
        assert flag == "--" + name.replace("_", "-")
        assert default == documented_default(field.default), name
        assert meaning.strip(), name


def test_the_quick_start_is_two_commands():
    section = README.split("## Quick start", 1)[1]
    commands = code_blocks("sh")[0].strip().splitlines()
    assert commands == ["pip install -e . && gpufleet serve --demo", "./scripts/test"]
    assert section.index("```sh") < section.index("##")


def test_local_links_resolve():
    links = re.findall(r"\]\(([^)#:]+)\)", README)
    assert any(link.startswith("docs/") for link in links)
    for link in links:
        assert (ROOT / link).exists(), f"README links to missing {link}"


@pytest.fixture(scope="module")
def demo_server(module_database_url, tmp_path_factory):
    with ServerProcess(
        module_database_url,
        demo=True,
        demo_workloads=300,
        log_dir=tmp_path_factory.mktemp("server"),
    ) as server:
        yield server


def example_environment(server: ServerProcess) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUFLEET")}
    env.update(CLIENT_ID=ADMIN_ID, CLIENT_SECRET=ADMIN_SECRET)
    return env


def test_the_curl_examples_work_against_the_demo(demo_server):
    [script] = [block for block in code_blocks("sh") if "curl" in block]
    assert DOCUMENTED_URL in script
    script = script.replace(DOCUMENTED_URL, demo_server.base_url)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script + "\necho"],
        env=example_environment(demo_server),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    # Each curl prints one JSON document; they are not separated by newlines.
    decoder, text, documents = json.JSONDecoder(), result.stdout.strip(), []
    while text:
        document, end = decoder.raw_decode(text)
        documents.append(document)
        text = text[end:].lstrip()
    assert len(documents) == 5
    listed, searched, deleted, one, counted = documents
    assert isinstance(listed["workloads"], list)
    assert searched["workloads"]
    assert all(w["deletedAt"] for w in deleted["workloads"])
    assert one["id"]
    assert counted["count"] > 0


def test_the_sdk_example_works_against_the_demo(demo_server):
    [example] = [block for block in code_blocks("python") if "RunaiClient" in block]
    assert DOCUMENTED_URL in example
    result = subprocess.run(
        [sys.executable, "-c", example.replace(DOCUMENTED_URL, demo_server.base_url)],
        env=example_environment(demo_server),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    [(seen, counted)] = re.findall(r"^(\d+) workloads; (\d+) counted$", result.stdout, re.M)
    assert seen == counted
    assert int(seen) > 0
    assert json.loads(lines[-1].replace("'", '"'))["count"] > 0
