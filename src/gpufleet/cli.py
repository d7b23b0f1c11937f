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

import gpufleet
from gpufleet.core.exit_codes import ExitCode
from gpufleet.settings import Settings
from gpufleet.settings_flags import add_settings_flags, report_invalid, settings_from_flags

log = logging.getLogger("gpufleet.server")


def _add_server_flags(parser: argparse.ArgumentParser, names: Iterable[str] | None = None) -> None:
    add_settings_flags(parser, Settings, "GPUFLEET_", names)


# The demo's flags of ``serve`` with their defaults: given without ``--demo`` they would do
# nothing, so they are refused, as settings that belong together are.
DEMO_FLAGS = {"demo_speed": 1.0, "demo_workloads": None, "seed": 7}


def _demo_flags_alone(args: argparse.Namespace) -> str | None:
    """The refusal of demo flags given without ``--demo``; else None, the defaults filled in."""
    given = [name for name in DEMO_FLAGS if getattr(args, name) is not None]
    if given and not args.demo:
        flags = " and ".join("--" + name.replace("_", "-") for name in given)
        verb, pronoun = ("applies", "it") if len(given) == 1 else ("apply", "them")
        return (
            f"gpufleet serve: {flags} only {verb} together with --demo; "
            f"add --demo or drop {pronoun}"
        )
    for name, default in DEMO_FLAGS.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    return None


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import os

    refused = _demo_flags_alone(args)
    if refused is not None:
        print(refused, file=sys.stderr)
        return ExitCode.USAGE

    from gpufleet.api.logs import configure_logging
    from gpufleet.api.serving import listen
    from gpufleet.api.workers import Workers
    from gpufleet.auth.bootstrap import prepare_store
    from gpufleet.store.connectivity import open_store
    from gpufleet.store.engine import create_store_engine

    configure_logging(settings.log_level, settings.log_format)
    # Bound before the database is touched, so a busy port fails at once and alone.
    sockets = [listen(settings.host, settings.port)]
    if settings.metrics_port is not None:
        sockets.append(listen(settings.host, settings.metrics_port))
    engine = open_store(settings, migrate=False)
    if settings.workers == 1:
        _serve_app(args, settings, sockets, engine)
        return 0
    # Prepared once, before the workers exist; each worker then opens connections of its own.
    _show_generated(prepare_store(engine, settings))
    _seed_demo(args, engine)
    engine.dispose()
    parent = os.getpid()
    workers = Workers(
        settings.workers,
        lambda index: _serve_app(
            args, settings, sockets, create_store_engine(settings), parent=parent, index=index
        ),
    )
    log.info("gpufleet listening on http://%s:%d", settings.host, settings.port)
    return workers.run()


def _serve_app(
    args: argparse.Namespace,
    settings: Settings,
    sockets: list,
    engine,
    *,
    parent: int | None = None,
    index: int = 0,
) -> None:
    """Build the app on ``engine`` and serve it on ``sockets`` until stopped; in worker
    ``index`` of a ``parent`` that prepared the store and seeded the demo already."""
    from gpufleet.api.app import create_app
    from gpufleet.api.serving import MetricsPortApp, serve

    app = create_app(settings, engine=engine)
    if parent is None:
        _show_generated(app.state.generated_admin)
        _seed_demo(args, engine)
    if args.demo and args.demo_workloads is None and index == 0:
        # The simulation reports through the API like agents do: one worker runs it.
        from gpufleet.demo.sim.start import start_demo

        own = _own_url(settings, sockets[0])
        running = start_demo(
            engine,
            lambda keys: _agent_clients(own, keys),
            seed=args.seed,
            speed=args.demo_speed,
            wait_ready=lambda: _wait_ready(own),
            history_interval_seconds=settings.metrics_interval_seconds,
        )
        app.state.demo_status = running.status.wire
        log.info(
            "demo simulation started (seed %d, speed %g): the last 24 hours are reported in "
            "the background; GET /api/v1/demo/status tells when they are complete",
            args.seed,
            args.demo_speed,
        )
    served = app
    if settings.metrics_port is not None:
        served = MetricsPortApp(app, app.state.server_metrics, settings.metrics_port)
        if index == 0:
            log.info("metrics on http://%s:%d/metrics", settings.host, settings.metrics_port)
    if parent is None:
        log.info("gpufleet listening on http://%s:%d", settings.host, settings.port)
    serve(served, settings, app.state.readiness, sockets, parent=parent)


def _show_generated(generated) -> None:
    if generated is not None:
        print(
            "Created the administrator credentials (shown once, stored only as a hash):\n"
            f"  client id:     {generated.client_id}\n"
            f"  client secret: {generated.client_secret}",
            flush=True,
        )


def _seed_demo(args: argparse.Namespace, engine) -> None:
    """The fixed demo organisation (``--demo --demo-workloads N``) seeded into an empty store."""
    if args.demo and args.demo_workloads is not None:
        from gpufleet.demo.seed import seed_if_empty

        seeded = seed_if_empty(engine, workloads=args.demo_workloads, seed=args.seed)
        if seeded:
            log.info("seeded the demo organisation with %d workloads", seeded)


def _own_url(settings: Settings, sock) -> str:
    """The URL the in-process demo reports to: this server, over the loopback interface."""
    host = settings.host
    if host in ("", "0.0.0.0", "::", "localhost"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{sock.getsockname()[1]}"


def _wait_ready(server: str, timeout: float = 120.0) -> None:
    """Return once the server answers ``/readyz`` (or after ``timeout`` seconds)."""
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{server}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)


def _agent_clients(server: str, keys) -> dict:
    """The agent's ingest client for each demo cluster, with that cluster's key."""
    from gpufleet.agent.push import IngestClient

    return {k.cluster_id: IngestClient(server, k.client_id, k.client_secret) for k in keys}


def _db_upgrade(_args: argparse.Namespace, settings: Settings) -> int:
    from gpufleet.store.connectivity import open_store
    from gpufleet.store.migrate import current_revision

    engine = open_store(settings)
    print(f"database at revision {current_revision(engine)}")
    return 0


def _demo_seed(args: argparse.Namespace, settings: Settings) -> int:
    from gpufleet.demo.seed import seed_demo
    from gpufleet.store.connectivity import open_store

    engine = open_store(settings)
    count = seed_demo(
        engine,
        workloads=args.workloads,
        seed=args.seed,
        progress=sys.stderr.isatty() or args.progress,
    )
    print(f"seeded {count} workloads (seed {args.seed})")
    return 0


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("must be a positive number")
    return value


def _demo_agent_keys(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC, datetime

    from gpufleet.demo.sim.keys import demo_agent_keys
    from gpufleet.store.connectivity import open_store

    engine = open_store(settings)
    keys = demo_agent_keys(engine, datetime.now(UTC))
    pairs = ",".join(f"{k.cluster_name}={k.client_id}:{k.client_secret}" for k in keys)
    print(f"GPUFLEET_DEMO_ACCESS_KEYS={pairs}")
    return 0


def _parse_access_keys(values: Sequence[str]) -> list:
    """``CLUSTER=CLIENT_ID:SECRET`` items (comma-separated or repeated) as agent keys."""
    from gpufleet.demo.organisation import CLUSTERS
    from gpufleet.demo.sim.keys import AgentKey

    by_name = {cluster.name: cluster for cluster in CLUSTERS}
    keys = []
    for item in (part.strip() for value in values for part in value.split(",")):
        name, _, credentials = item.partition("=")
        client_id, _, secret = credentials.partition(":")
        if name not in by_name or not client_id or not secret:
            raise SystemExit(
                f"gpufleet demo simulate: access key {item.split(':')[0]!r} is not "
                f"CLUSTER=CLIENT_ID:SECRET with CLUSTER one of {', '.join(by_name)}"
            )
        keys.append(AgentKey(by_name[name].id, name, client_id, secret))
    if {key.cluster_name for key in keys} != set(by_name):
        raise SystemExit(
            f"gpufleet demo simulate: needs an access key for each of {', '.join(by_name)} "
            "(--access-key or GPUFLEET_DEMO_ACCESS_KEYS; `gpufleet demo agent-keys` makes them)"
        )
    return keys


def _demo_simulate(args: argparse.Namespace, _settings: None) -> int:
    import os
    import threading

    from gpufleet.demo.sim.live import LiveDemo
    from gpufleet.demo.sim.reporter import Reporter
    from gpufleet.demo.sim.teams import TEAMS

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    given = args.access_key or [os.environ.get("GPUFLEET_DEMO_ACCESS_KEYS", "")]
    keys = _parse_access_keys([value for value in given if value])
    reporter = Reporter(_agent_clients(args.server, keys), TEAMS)
    demo = LiveDemo(reporter, seed=args.seed, speed=args.speed)
    stop = threading.Event()
    log.info("simulating the demo fleet into %s (seed %d, speed %g)", args.server, args.seed,
             args.speed)  # fmt: skip
    runner = threading.Thread(target=demo.run, args=(stop,), name="demo-simulation", daemon=True)
    runner.start()
    try:
        while runner.is_alive():
            runner.join(30)
            status = demo.status.wire()
            log.info("%s: simulated up to %s, reported %s", status["state"],
                     status["simulatedTime"], status["reported"])  # fmt: skip
    except KeyboardInterrupt:
        stop.set()
        runner.join(10)
    return 0


def _register_simulate(demo_commands) -> None:
    simulate = demo_commands.add_parser(
        "simulate", help="run the living demo against a server, as its clusters' agents"
    )
    simulate.add_argument("--server", required=True, help="URL of the gpufleet server")
    simulate.add_argument(
        "--access-key",
        action="append",
        metavar="CLUSTER=CLIENT_ID:SECRET",
        help="a demo cluster's agent key (each cluster once; default GPUFLEET_DEMO_ACCESS_KEYS)",
    )
    simulate.add_argument("--seed", type=int, default=7)
    simulate.add_argument(
        "--speed", type=_positive_float, default=1.0, help="simulated seconds per second"
    )
    simulate.set_defaults(handler=_demo_simulate)
    keys = demo_commands.add_parser(
        "agent-keys", help="create the demo clusters' agent keys in the database and print them"
    )
    _add_server_flags(keys)
    keys.set_defaults(handler=_demo_agent_keys)


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
    parser.add_argument("--version", action="version", version=f"gpufleet {gpufleet.__version__}")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", title="commands"
    )

    serve = commands.add_parser("serve", help="run the API server")
    _add_server_flags(serve)
    serve.add_argument(
        "--demo", action="store_true", help="run the living demo (a simulated GPU fleet)"
    )
    serve.add_argument(
        "--demo-speed",
        type=_positive_float,
        help="simulated seconds per second of the living demo (default 1; 60: a minute per second)",
    )
    serve.add_argument(
        "--demo-workloads",
        type=int,
        default=None,
        help="instead of the living demo, seed N still workloads into an empty store",
    )
    serve.add_argument("--seed", type=int, help="random seed of the demo (default 7)")
    serve.set_defaults(handler=_serve)

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_upgrade = db_commands.add_parser("upgrade", help="apply migrations up to the newest")
    _add_server_flags(db_upgrade)
    db_upgrade.set_defaults(handler=_db_upgrade)

    demo = commands.add_parser("demo", help="the simulated demo organisation")
    demo_commands = demo.add_subparsers(dest="demo_command", required=True)
    demo_seed = demo_commands.add_parser(
        "seed", help="add N still workloads (benchmark-scale stores)"
    )
    _add_server_flags(demo_seed)
    demo_seed.add_argument("--workloads", type=int, default=2000)
    demo_seed.add_argument("--seed", type=int, default=7)
    demo_seed.add_argument(
        "--progress", action="store_true", help="show progress even without a TTY"
    )
    demo_seed.set_defaults(handler=_demo_seed)
    _register_simulate(demo_commands)

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
    _name_subcommands(parser)
    return parser


def _name_subcommands(parser: argparse.ArgumentParser) -> None:
    """Name each group's subcommands by their choices (``{list,get,count,events}``), as its
    usage line does: argparse names a missing one by its internal ``dest`` otherwise."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            if action.metavar is None:
                action.metavar = "{" + ",".join(action.choices) + "}"
            for child in action.choices.values():
                _name_subcommands(child)


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
