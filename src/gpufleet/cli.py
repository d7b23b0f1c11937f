"""The ``gpufleet`` command: the server, its database and demo, access administration, the
cluster agent, and the terminal client.

Every server option is a flag named after its setting (``--database-url`` for
``GPUFLEET_DATABASE_URL``; see ``settings_flags``); the terminal client's commands read no
server settings.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Sequence

from pydantic import ValidationError

from gpufleet.core.exit_codes import ExitCode
from gpufleet.settings import Settings
from gpufleet.settings_flags import add_settings_flags, report_invalid, settings_from_flags

log = logging.getLogger("gpufleet.server")


def _add_server_flags(parser: argparse.ArgumentParser, names: Iterable[str] | None = None) -> None:
    add_settings_flags(parser, Settings, "GPUFLEET_", names)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from gpufleet.api.app import create_app
    from gpufleet.api.logs import configure_logging
    from gpufleet.api.serving import MetricsPortApp, listen, serve
    from gpufleet.store.connectivity import check_database
    from gpufleet.store.engine import create_store_engine

    configure_logging(settings.log_level, settings.log_format)
    # Bound before the database is touched, so a busy port fails at once and alone.
    sockets = [listen(settings.host, settings.port)]
    if settings.metrics_port is not None:
        sockets.append(listen(settings.host, settings.metrics_port))
    engine = create_store_engine(settings)
    check_database(engine)
    app = create_app(settings, engine=engine)
    generated = app.state.generated_admin
    if generated is not None:
        print(
            "Created the administrator credentials (shown once, stored only as a hash):\n"
            f"  client id:     {generated.client_id}\n"
            f"  client secret: {generated.client_secret}",
            flush=True,
        )
    if args.demo:
        from gpufleet.demo.seed import seed_if_empty

        seeded = seed_if_empty(engine, workloads=args.demo_workloads, seed=args.seed)
        if seeded:
            log.info("seeded the demo organisation with %d workloads", seeded)
    served = app
    if settings.metrics_port is not None:
        served = MetricsPortApp(app, app.state.server_metrics, settings.metrics_port)
        log.info("metrics on http://%s:%d/metrics", settings.host, settings.metrics_port)
    log.info("gpufleet listening on http://%s:%d", settings.host, settings.port)
    serve(served, settings, app.state.readiness, sockets)
    return 0


def _db_upgrade(_args: argparse.Namespace, settings: Settings) -> int:
    from gpufleet.store.connectivity import check_database
    from gpufleet.store.engine import create_store_engine
    from gpufleet.store.migrate import current_revision, upgrade

    engine = create_store_engine(settings)
    check_database(engine)
    upgrade(engine)
    print(f"database at revision {current_revision(engine)}")
    return 0


def _demo_seed(args: argparse.Namespace, settings: Settings) -> int:
    from gpufleet.demo.seed import seed_demo
    from gpufleet.store.engine import create_store_engine
    from gpufleet.store.migrate import upgrade

    engine = create_store_engine(settings)
    upgrade(engine)
    count = seed_demo(
        engine,
        workloads=args.workloads,
        seed=args.seed,
        progress=sys.stderr.isatty() or args.progress,
    )
    print(f"seeded {count} workloads (seed {args.seed})")
    return 0


DESCRIPTION = (
    "gpufleet: a self-hosted control plane for GPU Kubernetes clusters that speaks the "
    "NVIDIA Run:ai API."
)
EPILOG = """\
examples:
  gpufleet serve --demo                      a server with a simulated organisation
  gpufleet login http://localhost:8080 --client-id ID
  gpufleet workloads list -f phase==Pending -o wide
  gpufleet workloads get NAME --project PROJECT
  gpufleet telemetry GPU_ALLOCATION --group-by ProjectId
  source <(gpufleet completion bash)         tab completion for this shell

'gpufleet COMMAND --help' shows a command's options; docs/cli.md has the details.
"""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog)
        # argparse sizes the help column without the indented command names; leave room for
        # the longest ("workloads", "telemetry") so their help stays on their line.
        self._action_max_length = 16


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpufleet",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=_HelpFormatter,
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", title="commands"
    )

    serve = commands.add_parser("serve", help="run the API server")
    _add_server_flags(serve)
    serve.add_argument("--demo", action="store_true", help="seed the demo organisation when empty")
    serve.add_argument("--demo-workloads", type=int, default=2000, help="workloads in the demo")
    serve.add_argument("--seed", type=int, default=7, help="random seed of the demo")
    serve.set_defaults(handler=_serve)

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_upgrade = db_commands.add_parser("upgrade", help="apply migrations up to the newest")
    _add_server_flags(db_upgrade)
    db_upgrade.set_defaults(handler=_db_upgrade)

    demo = commands.add_parser("demo", help="the simulated demo organisation")
    demo_commands = demo.add_subparsers(dest="demo_command", required=True)
    demo_seed = demo_commands.add_parser("seed", help="add N simulated workloads")
    _add_server_flags(demo_seed)
    demo_seed.add_argument("--workloads", type=int, default=2000)
    demo_seed.add_argument("--seed", type=int, default=7)
    demo_seed.add_argument(
        "--progress", action="store_true", help="show progress even without a TTY"
    )
    demo_seed.set_defaults(handler=_demo_seed)

    from gpufleet import access_cli

    # The commands that work on the database directly take only the database settings.
    database_settings = [n for n in Settings.model_fields if n.startswith(("database_", "db_"))]
    bootstrap_settings = [*database_settings, "admin_client_id", "admin_client_secret"]
    access_cli.register(commands, lambda p: _add_server_flags(p, bootstrap_settings))
    from gpufleet import cluster_cli

    cluster_cli.register(commands, lambda p: _add_server_flags(p, database_settings))
    from gpufleet.agent import cli as agent_cli

    agent_cli.register(commands)

    from gpufleet.client import commands as client_commands

    client_commands.register(commands)
    from gpufleet.client import completion

    completion.register(commands, parser)
    return parser


def _exit_codes() -> dict[type[Exception], ExitCode]:
    """Failures an operator can fix, and the exit code of each (docs/operations.md)."""
    from gpufleet.agent.failures import AccessKeyRefused, NoKubernetesConfig
    from gpufleet.api.serving import CannotListen
    from gpufleet.store.connectivity import (
        DatabaseCredentialsRefused,
        DatabaseUnavailable,
        SchemaTooNew,
    )

    # Subclasses before their base classes: the first match wins.
    return {
        CannotListen: ExitCode.CANNOT_LISTEN,
        DatabaseCredentialsRefused: ExitCode.DATABASE_CREDENTIALS_REFUSED,
        DatabaseUnavailable: ExitCode.DATABASE_UNREACHABLE,
        SchemaTooNew: ExitCode.SCHEMA_TOO_NEW,
        AccessKeyRefused: ExitCode.AUTH,
        NoKubernetesConfig: ExitCode.NO_KUBERNETES_CONFIG,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Only commands that declared a settings model read one; the client's commands read none.
    model = getattr(args, "settings_model", None)
    try:
        settings = None if model is None else settings_from_flags(args, model)
    except ValidationError as exc:
        return report_invalid(exc, "gpufleet" if model is Settings else f"gpufleet {args.command}")
    try:
        return args.handler(args, settings)
    except Exception as exc:
        for kind, code in _exit_codes().items():
            if isinstance(exc, kind):
                print(f"gpufleet {args.command}: {exc}", file=sys.stderr)
                return code
        raise


if __name__ == "__main__":
    sys.exit(main())
