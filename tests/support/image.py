"""The gpufleet container image, built with buildah and run without a container runtime.

``ensure_image()`` builds the Dockerfile through ``scripts/build-image`` (mmdebstrap base,
buildah with chroot isolation and vfs storage), once per content: the tag is a hash of every
file the build reads, so a run on an unchanged tree reuses the image kept in
``GPUFLEET_IMAGE_CACHE`` (default /var/cache/gpufleet, outside the checkout), and a changed tree
rebuilds on top of the cached base and dependency layers. ``ImageContainer`` runs a command of
the image (``buildah run``, host network) with the image's user, entrypoint directory and a
root filesystem that the image's user cannot write.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("GPUFLEET_IMAGE_CACHE", "/var/cache/gpufleet"))
STORE = CACHE / "containers"
REPOSITORY = "localhost/gpufleet"
# What the build reads (the Dockerfile, the context that .dockerignore lets through, the script).
_INPUTS = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md", "scripts/build-image")


# The image store outside the checkout; vfs works where overlay mounts are not allowed.
BUILDAH = ["buildah", "--root", str(STORE / "storage"), "--runroot", str(STORE / "run")]
BUILDAH += ["--storage-driver", "vfs"]


def buildah(*args: str, check: bool = True, timeout: float = 600) -> str:
    """Run buildah on the cached image store; its standard output."""
    done = subprocess.run(
        [*BUILDAH, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} failed ({done.returncode}): {done.stderr}")
    return done.stdout


def _in_context(path: Path) -> bool:
    # What .dockerignore keeps out: byte-code, and the metadata of an editable install.
    return not any(part == "__pycache__" or part.endswith(".egg-info") for part in path.parts)


def content_tag() -> str:
    digest = hashlib.sha256()
    files = [ROOT / name for name in _INPUTS]
    files += sorted(p for p in (ROOT / "src").rglob("*") if p.is_file() and _in_context(p))
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{REPOSITORY}:test-{digest.hexdigest()[:16]}"


def image_exists(tag: str) -> bool:
    return bool(buildah("images", "--quiet", tag, check=False).strip())


def _pip_ca_bundle() -> str:
    # The machine's CA bundle, so pip inside the build trusts what pip outside it trusts.
    paths = ssl.get_default_verify_paths()
    for candidate in (
        os.environ.get("PIP_CERT"),
        paths.cafile,
        "/etc/ssl/certs/ca-certificates.crt",
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    return ""


def _remove_older_builds(keep: str) -> None:
    """Drop earlier test builds; the base and dependency images stay cached under their tags.

    Their untagged intermediate images stay too: pruning them walks the vfs store for minutes,
    more than the space is worth between runs."""
    for line in buildah(
        "images", "--format", "{{.Name}}:{{.Tag}}", REPOSITORY, check=False
    ).split():
        if line.startswith(f"{REPOSITORY}:test-") and line != keep:
            buildah("rmi", line, check=False)


def ensure_image() -> str:
    """The tag of an image built from the current tree, building it when needed."""
    tag = content_tag()
    CACHE.mkdir(parents=True, exist_ok=True)
    # One build at a time across test workers and concurrent runs on the machine.
    with open(CACHE / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not image_exists(tag):
            env = {
                **os.environ,
                "PIP_CA_BUNDLE": _pip_ca_bundle(),
                "GPUFLEET_IMAGE_CACHE": str(CACHE),
            }
            built = subprocess.run(
                [str(ROOT / "scripts" / "build-image"), tag],
                env=env,
                capture_output=True,
                text=True,
                timeout=3000,
                check=False,
            )
            assert built.returncode == 0, (
                f"scripts/build-image failed:\n{built.stdout}\n{built.stderr}"
            )
            _remove_older_builds(keep=tag)
    return tag


def image_config(tag: str) -> dict[str, Any]:
    return json.loads(buildah("inspect", "--type", "image", tag))["Docker"]["config"]


_UNITS = {"B": 1, "kB": 10**3, "MB": 10**6, "GB": 10**9}


def image_size(tag: str) -> int:
    """Bytes of the image's layers, as ``buildah images`` counts them ("456 MB")."""
    number, unit = json.loads(buildah("images", "--json", tag))[0]["size"].split()
    return round(float(number) * _UNITS[unit])


class ImageContainer:
    """A working container of the image, its root filesystem visible at ``rootfs``.

    Commands run as the image's user with ``/data`` bound to a fresh host directory (the
    image's volume) and an empty ``/tmp``, like the manifests in deploy/ mount them.
    """

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.name = buildah("from", "--pull-never", "--quiet", tag).strip()
        self.data = Path(tempfile.mkdtemp(prefix="gpufleet-image-data-"))
        self.tmp = Path(tempfile.mkdtemp(prefix="gpufleet-image-tmp-"))
        user = image_config(tag)["User"]
        uid, gid = (int(part) for part in user.split(":"))
        for directory in (self.data, self.tmp):
            os.chown(directory, uid, gid)
        self.rootfs = buildah("mount", self.name).strip()

    def command(self, args: Sequence[str], env: dict[str, str] | None = None) -> list[str]:
        command = [
            *BUILDAH,
            "run",
            "--isolation",
            "chroot",
            "--network",
            "host",
            "--volume",
            f"{self.data}:/data:rw",
            "--volume",
            f"{self.tmp}:/tmp:rw",
        ]
        for key, value in (env or {}).items():
            command += ["--env", f"{key}={value}"]
        return [*command, self.name, "--", *args]

    def run(
        self, args: Sequence[str], env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.command(args, env), capture_output=True, text=True, timeout=300, check=False
        )

    def start(
        self, args: Sequence[str], env: dict[str, str] | None, log_path: Path
    ) -> subprocess.Popen:
        with open(log_path, "ab") as log:
            # Its own process group, so stopping it reaches the process inside the chroot.
            return subprocess.Popen(
                self.command(args, env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def remove(self) -> None:
        buildah("umount", self.name, check=False)
        buildah("rm", self.name, check=False)
        shutil.rmtree(self.data, ignore_errors=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


def stop(process: subprocess.Popen) -> int:
    """SIGTERM to the container's process group, then SIGKILL."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode
