"""``gpufleet agent``: run the cluster agent.

Every option is a flag named after its setting (``--cluster-id`` for
``GPUFLEET_AGENT_CLUSTER_ID``); a flag given on the command line wins over the environment.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from gpufleet.agent.failures import NoKubernetesConfig
from gpufleet.agent.settings import AgentSettings
from gpufleet.core.exit_codes import ExitCode
from gpufleet.settings_flags import add_settings_flags


def _run(_args: argparse.Namespace, settings: AgentSettings) -> int:
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs every request at info; the pusher reports what matters itself.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from gpufleet.agent.runner import Agent

    try:
        agent = Agent(settings)
    except NoKubernetesConfig:
        raise  # its own exit code, given by the gpufleet command
    except Exception as exc:
        print(f"gpufleet agent: cannot start: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    signal.signal(signal.SIGTERM, lambda *_: agent.stop())
    signal.signal(signal.SIGINT, lambda *_: agent.stop())
    print(f"gpufleet agent health on port {agent.health_server.port}", flush=True)
    return agent.run()


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``agent`` command to the ``gpufleet`` parser."""
    parser = commands.add_parser("agent", help="run the Kubernetes cluster agent")
    add_settings_flags(parser, AgentSettings, "GPUFLEET_AGENT_")
    parser.set_defaults(handler=_run)
