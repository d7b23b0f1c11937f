"""Settings as command-line flags, for the server's and the agent's commands alike.

Every field of a settings model is a flag named after it (``--database-url`` for
``database_url``); a flag given on the command line wins over the environment. Commands that
use no settings (the terminal client) add no flags and parse none.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from typing import TypeVar

from pydantic import BaseModel, ValidationError

_DEST = "setting_"
M = TypeVar("M", bound=BaseModel)


def add_settings_flags(
    parser: argparse.ArgumentParser,
    model: type[BaseModel],
    env_prefix: str,
    names: Iterable[str] | None = None,
) -> None:
    """A flag for each field of ``model`` (or the ``names`` given), documenting its variable."""
    for name in names or model.model_fields:
        field = model.model_fields[name]
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=_DEST + name,
            default=None,
            metavar=name.upper(),
            help=f"{field.description} [env {env_prefix}{name.upper()}]",
        )
    parser.set_defaults(settings_model=model)


def settings_from_flags(args: argparse.Namespace, model: type[M]) -> M:
    """``model`` read from the environment, overridden by the flags given."""
    overrides = {
        key.removeprefix(_DEST): value
        for key, value in vars(args).items()
        if key.startswith(_DEST) and value is not None
    }
    return model(**overrides)


def report_invalid(exc: ValidationError, program: str) -> int:
    """One line on stderr naming every invalid setting; the exit code of a usage error."""
    problems = []
    for error in exc.errors():
        # Checks across several settings (model validators) carry no field location.
        where = f"setting {error['loc'][0]}" if error["loc"] else "settings"
        problems.append(f"invalid {where}: {error['msg']}")
    print(f"{program}: {'; '.join(problems)}", file=sys.stderr)
    return 2
