"""Profiles of the terminal client, kept in one per-user JSON file.

The file is ``$GPUFLEET_CONFIG`` when set, else ``$XDG_CONFIG_HOME/gpufleet/config.json``
(``~/.config/gpufleet/config.json``). Like kubectl's kubeconfig and the AWS CLI's credentials
file, it holds the access key's secret; it is written with mode 0600 and replaced atomically.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_PROFILE = "default"


class ConfigError(Exception):
    """The configuration file is missing a profile or cannot be read."""


@dataclass
class Profile:
    """One server and the access key used on it, with the cached access token."""

    url: str
    client_id: str
    client_secret: str
    token: str | None = None
    token_expires_at: float | None = None  # epoch seconds


@dataclass
class ClientConfig:
    """All profiles and the one used when ``--profile`` is not given."""

    current: str | None = None
    profiles: dict[str, Profile] = field(default_factory=dict)

    def profile(self, name: str | None) -> tuple[str, Profile]:
        """The named profile, else ``$GPUFLEET_PROFILE``, else the current one."""
        chosen = name or os.environ.get("GPUFLEET_PROFILE") or self.current or DEFAULT_PROFILE
        if chosen not in self.profiles:
            if not self.profiles:
                raise ConfigError(
                    "not logged in; run 'gpufleet login URL --client-id CLIENT_ID' first "
                    "(the secret is prompted for, or read from --client-secret or stdin)"
                )
            known = ", ".join(sorted(self.profiles))
            raise ConfigError(f"no profile named {chosen!r} (known: {known})")
        return chosen, self.profiles[chosen]


def config_path() -> Path:
    """Where the profiles live for this user."""
    explicit = os.environ.get("GPUFLEET_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "gpufleet" / "config.json"


def load_config(path: Path | None = None) -> ClientConfig:
    """Read the profiles; a missing file is an empty configuration."""
    path = path or config_path()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ClientConfig()
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    try:
        profiles = {name: Profile(**values) for name, values in raw.get("profiles", {}).items()}
    except TypeError as exc:
        raise ConfigError(f"{path} has an unexpected profile entry: {exc}") from None
    return ClientConfig(current=raw.get("currentProfile"), profiles=profiles)


def save_config(config: ClientConfig, path: Path | None = None) -> Path:
    """Write the profiles readable by the owner only, replacing the file in one rename."""
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    body = {
        "currentProfile": config.current,
        "profiles": {name: asdict(profile) for name, profile in config.profiles.items()},
    }
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".config-", suffix=".json")
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(body, stream, indent=2, sort_keys=True)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
