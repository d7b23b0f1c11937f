"""``gpufleet access …``: the administration commands of the terminal client, and the bootstrap
path that works on the server's database.

Everything but ``bootstrap`` and ``restore-admin`` talks HTTP as the logged-in profile
(``client/access_commands.py``). Those two are for operators with access to the database, when
no administrator can sign in yet (a new installation) or any more (break-glass); they take only
the database settings. What ``bootstrap`` creates is audited with the actor ``bootstrap``, as
when a server starts; ``restore-admin`` with the actor ``cli``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from gpufleet.auth.administration import CLI_ACTOR
from gpufleet.auth.bootstrap import prepare_store, restore_admin
from gpufleet.client import access_commands
from gpufleet.client.exit_codes import exit_code_for_error
from gpufleet.core.errors import DomainError
from gpufleet.settings import Settings
from gpufleet.store.connectivity import open_store


def print_table(rows: list[dict], columns: list[str], as_json: bool) -> None:
    """Rows as JSON, or as a table of ``columns`` (for the commands that work on the database)."""
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(*columns, box=None, pad_edge=False)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    # Fit the terminal when there is one; never cut ids short when output goes to a pipe.
    Console(width=None if sys.stdout.isatty() else 1000).print(table)


def run(args: argparse.Namespace, settings: Settings, handler: Callable) -> int:
    """Run ``handler(args, conn)`` in one transaction on the migrated database; a domain error
    is one line and the exit code of its kind."""
    engine = open_store(settings)
    try:
        with engine.begin() as conn:
            handler(args, conn)
    except DomainError as exc:
        print(f"gpufleet: error: {exc}", file=sys.stderr)
        return exit_code_for_error(exc)
    finally:
        engine.dispose()
    return 0


def _bootstrap(_args: argparse.Namespace, settings: Settings) -> int:
    engine = open_store(settings, migrate=False)
    try:
        generated = prepare_store(engine, settings)
    finally:
        engine.dispose()
    if generated is not None:
        print(
            "Created the first administrator (shown once, stored only as a hash):\n"
            f"  client id:     {generated.client_id}\n"
            f"  client secret: {generated.client_secret}\n"
            f"Sign in with: gpufleet login URL --client-id {generated.client_id}"
        )
    elif settings.admin_client_id:
        print(f"The administrator is {settings.admin_client_id} (GPUFLEET_ADMIN_CLIENT_ID).")
    else:
        print("An administrator exists already; nothing changed.")
    return 0


def _restore_admin(_args: argparse.Namespace, conn, settings: Settings) -> None:
    client_id = restore_admin(conn, settings, CLI_ACTOR)
    print(f"restored the administrator {client_id}; its earlier tokens are revoked")


def register(commands, add_settings_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``access`` with the client's administration commands and the database's bootstrap."""
    access = commands.add_parser(
        "access", help="service accounts, access rules, signing keys and the audit log"
    )
    groups = access.add_subparsers(dest="access_command", required=True)
    access_commands.register(groups)

    bootstrap = groups.add_parser(
        "bootstrap",
        help="on the database: create the first administrator when there is none",
    )
    add_settings_flags(bootstrap)
    bootstrap.set_defaults(handler=_bootstrap)

    restore = groups.add_parser(
        "restore-admin",
        help="on the database: enable the configured administrator with the environment's secret",
    )
    add_settings_flags(restore)
    restore.set_defaults(handler=lambda a, s: run(a, s, lambda _a, c: _restore_admin(a, c, s)))
