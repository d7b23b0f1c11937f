"""The gpufleet container image, built with buildah and run without a container runtime.

``ensure_image()`` builds the Dockerfile through ``scripts/build-image`` (mmdebstrap base,
buildah with chroot isolation), once per content: the tag is a hash of every
file the build reads, so a run on an unchanged tree reuses the image kept in
``GPUFLEET_IMAGE_CACHE`` (default /var/cache/gpufleet, outside the checkout), and a changed tree
rebuilds on top of the cached base and dependency layers. ``ImageContainer`` runs a command of
the image, as the image's user, on the host network, either with ``buildah run`` or under a
read-only root filesystem with only the given volumes writable, as Kubernetes runs it with
``readOnlyRootFilesystem``.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import shlex
import shutil
import signal
import ssl
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("GPUFLEET_IMAGE_CACHE", "/var/cache/gpufleet"))
BUILD_IMAGE = ROOT / "scripts" / "build-image"
REPOSITORY = "localhost/gpufleet"
# What the build reads (the Dockerfile, the context that .dockerignore lets through, the script).
_INPUTS = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md", "scripts/build-image")


@functools.cache
def buildah_command() -> list[str]:
    """buildah on the image store that scripts/build-image uses (which also picks its storage
    driver: overlay where the kernel allows it, else vfs)."""
    options = subprocess.run(
        [str(BUILD_IMAGE), "--buildah-options"],
        env={**os.environ, "GPUFLEET_IMAGE_CACHE": str(CACHE)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    return ["buildah", *options]


def buildah(*args: str, check: bool = True, timeout: float = 600) -> str:
    """Run buildah on the cached image store; its standard output."""
    done = subprocess.run(
        [*buildah_command(), *args], capture_output=True, text=True, timeout=timeout, check=False
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
    """Untag earlier test builds, so that the next build removes what only they used; the
    base and the dependency layers stay, since that build uses them. An image that a
    container still uses (a test running elsewhere) keeps its tag."""
    for line in buildah(
        "images", "--format", "{{.Name}}:{{.Tag}}", REPOSITORY, check=False
    ).split():
        if line.startswith(f"{REPOSITORY}:test-") and line != keep:
            buildah("rmi", line, check=False)


# What the image tests built, for the end of the test report: "TAG: SIZE".
BUILT: list[str] = []


def ensure_image() -> str:
    """The tag of an image built from the current tree, building it when needed."""
    tag = content_tag()
    CACHE.mkdir(parents=True, exist_ok=True)
    # One build at a time across test workers and concurrent runs on the machine.
    with open(CACHE / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not image_exists(tag):
            _remove_older_builds(keep=tag)
            env = {
                **os.environ,
                "PIP_CA_BUNDLE": _pip_ca_bundle(),
                "GPUFLEET_IMAGE_CACHE": str(CACHE),
            }
            built = subprocess.run(
                [str(BUILD_IMAGE), tag],
                env=env,
                capture_output=True,
                text=True,
                timeout=3000,
                check=False,
            )
            assert built.returncode == 0, (
                f"scripts/build-image failed:\n{built.stdout}\n{built.stderr}"
            )
    report = f"{tag}: {image_size(tag) / 10**6:.0f} MB"
    if report not in BUILT:
        BUILT.append(report)
    return tag


def image_config(tag: str) -> dict[str, Any]:
    return json.loads(buildah("inspect", "--type", "image", tag))["Docker"]["config"]


_UNITS = {"B": 1, "kB": 10**3, "MB": 10**6, "GB": 10**9}


def image_size(tag: str) -> int:
    """Bytes of the image's layers, as ``buildah images`` counts them ("456 MB")."""
    number, unit = json.loads(buildah("images", "--json", tag))[0]["size"].split()
    return round(float(number) * _UNITS[unit])


@dataclass(frozen=True)
class Volume:
    """A host directory mounted into the container at ``target``."""

    source: Path
    target: str
    writable: bool = True


class ImageContainer:
    """A working container of the image, its root filesystem visible at ``rootfs``.

    ``command`` runs under ``buildah run`` with ``/data`` bound to a fresh host directory (the
    image's volume) and an empty ``/tmp``, as deploy/ mounts them for the server.
    ``read_only_command`` runs under a read-only root filesystem with only the given volumes.
    """

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.name = buildah("from", "--pull-never", "--quiet", tag).strip()
        self.config = image_config(tag)
        self.data = Path(tempfile.mkdtemp(prefix="gpufleet-image-data-"))
        self.tmp = Path(tempfile.mkdtemp(prefix="gpufleet-image-tmp-"))
        uid, gid = (int(part) for part in self.config["User"].split(":"))
        for directory in (self.data, self.tmp):
            os.chown(directory, uid, gid)
        self.rootfs = buildah("mount", self.name).strip()

    @property
    def server_volumes(self) -> list[Volume]:
        return [Volume(self.data, "/data"), Volume(self.tmp, "/tmp")]

    def command(self, args: Sequence[str], env: dict[str, str] | None = None) -> list[str]:
        command = [*buildah_command(), "run", "--isolation", "chroot", "--network", "host"]
        for volume in self.server_volumes:
            command += ["--volume", f"{volume.source}:{volume.target}:rw"]
        for key, value in (env or {}).items():
            command += ["--env", f"{key}={value}"]
        return [*command, self.name, "--", *args]

    def read_only_command(
        self,
        args: Sequence[str],
        env: dict[str, str] | None = None,
        volumes: Sequence[Volume] = (),
    ) -> list[str]:
        """``args`` in the container with its root filesystem read-only (for root as well),
        ``volumes`` the only mounts besides /proc and /dev, the image's user, working
        directory and environment, and the host's network.

        A private mount namespace binds the root filesystem read-only onto itself, mounts the
        volumes, then chroot switches to the image's user; this needs nothing but util-linux
        and coreutils on the host."""
        root = shlex.quote(self.rootfs)
        lines = [
            "set -e",
            f"mount --bind {root} {root}",
            f"mount -o remount,bind,ro {root}",
            f"mount -t proc proc {root}/proc",
            f"mount --rbind /dev {root}/dev",
        ]
        for volume in volumes:
            target = Path(self.rootfs) / volume.target.lstrip("/")
            # A symbolic link on the way (/var/run) would lead out of the container.
            assert target.resolve() == target, f"{volume.target} is not a plain path"
            # The mount point, made while the container's root is still writable.
            target.mkdir(parents=True, exist_ok=True)
            quoted = shlex.quote(str(target))
            lines.append(f"mount --bind {shlex.quote(str(volume.source))} {quoted}")
            if not volume.writable:
                lines.append(f"mount -o remount,bind,ro {quoted}")
        environment = [*self.config.get("Env", [])]
        environment += [f"{key}={value}" for key, value in (env or {}).items()]
        inside = ["/usr/bin/env", "-i", "-C", self.config.get("WorkingDir") or "/"]
        inside += [*environment, *args]
        user = self.config["User"]
        lines.append(f"exec chroot --userspec={user} {root} {shlex.join(inside)}")
        script = "\n".join(lines)
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]

    def run(
        self, args: Sequence[str], env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        return self.run_command(self.command(args, env))

    @staticmethod
    def run_command(command: Sequence[str]) -> subprocess.CompletedProcess:
        return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)

    @staticmethod
    def start_command(command: Sequence[str], log_path: Path) -> subprocess.Popen:
        with open(log_path, "ab") as log:
            # Its own process group, so stopping it reaches the process inside the chroot.
            return subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start(
        self, args: Sequence[str], env: dict[str, str] | None, log_path: Path
    ) -> subprocess.Popen:
        return self.start_command(self.command(args, env), log_path)

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
