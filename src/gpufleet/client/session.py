"""What every client command shares: the profile flags, an API client, errors as one line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from gpufleet.client.config import ConfigError, load_config, save_config
from gpufleet.client.http import TIMEOUT_SECONDS, ApiClient, ClientError
from gpufleet.core.exit_codes import ExitCode

Handler = Callable[[argparse.Namespace], int]


def guarded(handler: Handler) -> Callable[[argparse.Namespace, Any], int]:
    """Wrap a command so a failure is one ``gpufleet: error: ...`` line and an exit code."""

    def run(args: argparse.Namespace, _settings: Any) -> int:
        try:
            return handler(args)
        except ClientError as exc:
            print(f"gpufleet: error: {exc.message}", file=sys.stderr)
            return int(exc.exit_code)
        except ConfigError as exc:
            print(f"gpufleet: error: {exc}", file=sys.stderr)
            return int(ExitCode.AUTH)
        except KeyboardInterrupt:
            return ExitCode.INTERRUPTED
        except BrokenPipeError:
            # `gpufleet workloads list | head` closes the pipe early; that is not an error.
            sys.stderr.close()
            return int(ExitCode.OK)

    return run


def positive_seconds(text: str) -> float:
    """An argparse ``type`` for a number of seconds: finite and above zero (httpx takes 0 as
    "fail at once" and refuses a negative one with a traceback)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, not {text}")
    return value


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    """``--profile`` and ``--timeout``, on every command that talks to a server."""
    parser.add_argument("--profile", help="profile to use [env GPUFLEET_PROFILE]")
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"seconds to wait for the server ({TIMEOUT_SECONDS:g})",
    )


def add_param_flag(parser: argparse.ArgumentParser) -> None:
    """``--param NAME=VALUE``: a query parameter this client has no flag for, sent as is."""
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra query parameter sent as is (repeatable); the server warns about unknown ones",
    )


def extra_parameters(pairs: list[str]) -> dict[str, str]:
    """The ``--param`` pairs as query parameters."""
    params = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not name or not equals:
            raise ClientError(f"--param {pair!r}: use NAME=VALUE", ExitCode.USAGE)
        params[name] = value
    return params


@contextmanager
def open_client(args: argparse.Namespace) -> Iterator[ApiClient]:
    """An API client for the chosen profile; renewed tokens are written back to the file."""
    config = load_config()
    _, profile = config.profile(args.profile)
    with ApiClient(profile, lambda _p: save_config(config), timeout=args.timeout) as client:
        yield client
