"""``gpufleet agent``: run the cluster agent.

Every option is a flag named after its setting (``--cluster-id`` for
``GPUFLEET_AGENT_CLUSTER_ID``); a flag given on the command line wins over the environment.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Any

from pydantic import ValidationError

from gpufleet.agent.settings import AgentSettings


def _add_flags(parser: argparse.ArgumentParser) -> None:
    for name, field in AgentSettings.model_fields.items():
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=f"agent_{name}",
            default=None,
            metavar=name.upper(),
            help=f"{field.description} [env GPUFLEET_AGENT_{name.upper()}]",
        )


def agent_settings_from_args(args: argparse.Namespace) -> AgentSettings:
    """AgentSettings from the environment, overridden by the flags given."""
    overrides = {
        key.removeprefix("agent_"): value
        for key, value in vars(args).items()
        if key.startswith("agent_") and value is not None
    }
    return AgentSettings(**overrides)


def _run(args: argparse.Namespace, _server_settings: Any) -> int:
    try:
        settings = agent_settings_from_args(args)
    except ValidationError as exc:
        for error in exc.errors():
            where = error["loc"][0] if error["loc"] else "settings"
            print(f"gpufleet agent: invalid setting {where}: {error['msg']}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from gpufleet.agent.runner import Agent

    try:
        agent = Agent(settings)
    except Exception as exc:
        print(f"gpufleet agent: cannot start: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: agent.stop())
    signal.signal(signal.SIGINT, lambda *_: agent.stop())
    print(f"gpufleet agent health on port {agent.health_server.port}", flush=True)
    return agent.run()


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``agent`` command to the ``gpufleet`` parser."""
    parser = commands.add_parser("agent", help="run the Kubernetes cluster agent")
    _add_flags(parser)
    parser.set_defaults(handler=_run)
