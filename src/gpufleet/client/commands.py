"""Registers the client commands on the ``gpufleet`` parser; ``login`` and ``token`` live here."""

from __future__ import annotations

import argparse
import getpass
import sys
from urllib.parse import urlsplit

import httpx

from gpufleet.client import (
    metric_commands,
    node_commands,
    pod_commands,
    project_commands,
    usage_commands,
    workload_commands,
)
from gpufleet.client.config import DEFAULT_PROFILE, Profile, load_config, save_config
from gpufleet.client.event_commands import register_fleet_events
from gpufleet.client.http import ClientError, request_token
from gpufleet.client.session import add_connection_flags, guarded, open_client
from gpufleet.core.exit_codes import ExitCode


def _read_secret(args: argparse.Namespace) -> str:
    if args.client_secret:
        return args.client_secret
    if sys.stdin.isatty():
        return getpass.getpass("Client secret: ")
    # Non-interactive: the secret is the first line of stdin, so it never shows in `ps`.
    return sys.stdin.readline().strip()


API_PREFIX = "/api/v1"


def server_root(url: str) -> str:
    """The URL the server is rooted at: without a trailing slash, nor the API's own prefix
    (``/api/v1``), which a URL copied from a request often carries."""
    url = url.rstrip("/")
    return url.removesuffix(API_PREFIX) if url.endswith(API_PREFIX) else url


def _login(args: argparse.Namespace) -> int:
    url = server_root(args.url)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ClientError(
            f"the server URL must be http(s)://host[:port], not {url!r}", ExitCode.USAGE
        )
    secret = _read_secret(args)
    if not args.client_id or not secret:
        raise ClientError("both a client id and a client secret are needed", ExitCode.USAGE)
    with httpx.Client(timeout=args.timeout) as http:
        try:
            token, expires_at = request_token(http, url, args.client_id, secret)
        except ClientError as exc:
            # Behind a path the token request meets some other route, which answers 401 or 404.
            if parts.path and exc.exit_code in (ExitCode.AUTH, ExitCode.NOT_FOUND):
                root = f"{parts.scheme}://{parts.netloc}"
                raise ClientError(
                    f"{exc.message}; {url} has a path: give the server's root URL, e.g. {root}",
                    exc.exit_code,
                ) from None
            raise
    config = load_config()
    name = args.profile or DEFAULT_PROFILE
    config.profiles[name] = Profile(url, args.client_id, secret, token, expires_at)
    config.current = name
    path = save_config(config)
    print(f"Logged in to {url} as {args.client_id} (profile {name!r}, saved in {path}).")
    return 0


def _token(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        print(client.token(force=args.refresh))
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``login``, ``token``, ``workloads``, ``telemetry`` and ``metrics`` to ``gpufleet``."""
    login = commands.add_parser("login", help="sign in to a gpufleet server with an access key")
    login.add_argument("url", help="the server's root URL, e.g. http://localhost:8080")
    login.add_argument("--client-id", required=True, help="access key client id")
    login.add_argument(
        "--client-secret", help="access key secret (read from the prompt or stdin when omitted)"
    )
    add_connection_flags(login)
    login.set_defaults(handler=guarded(_login))

    token = commands.add_parser("token", help="print a valid access token of the profile")
    token.add_argument("--refresh", action="store_true", help="get a new token even if cached")
    add_connection_flags(token)
    token.set_defaults(handler=guarded(_token))

    workload_commands.register(commands)
    pod_commands.register(commands)
    project_commands.register(commands)
    node_commands.register(commands)
    metric_commands.register(commands)
    usage_commands.register(commands)
    register_fleet_events(commands)
