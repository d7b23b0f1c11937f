"""``gpufleet clusters …``: register a cluster and print what its agent needs.

Like ``gpufleet access``, these commands work on the server's database (its settings come
from the same flags and ``GPUFLEET_*`` variables), so in Kubernetes they run inside a server
pod: ``kubectl exec deploy/gpufleet-server -- gpufleet clusters register NAME --server-url …``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from gpufleet.access_cli import print_table, run
from gpufleet.agent import manifests
from gpufleet.auth.administration import CLI_ACTOR
from gpufleet.auth.onboarding import Registration, register_cluster
from gpufleet.store import clusters


def _dump(document: dict) -> str:
    return yaml.safe_dump(document, sort_keys=False)


def _write_directory(args: argparse.Namespace, registration: Registration) -> None:
    directory = Path(args.output_dir)
    directory.mkdir(parents=True, exist_ok=True)
    base = None
    if args.base is not None:
        # Relative, so the directory can be committed next to the manifests it extends.
        base = os.path.relpath(Path(args.base).resolve(), directory.resolve())
    files = {
        "agent-secret.yaml": _dump(_secret(args, registration)),
        "agent-patch.yaml": _dump(manifests.agent_patch(registration.cluster_id, args.namespace)),
        "kustomization.yaml": _dump(manifests.kustomization(base)),
    }
    for name, text in files.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        if name == "agent-secret.yaml":
            path.chmod(0o600)
    print(f"wrote {', '.join(files)} to {directory}; apply with: kubectl apply -k {directory}")


def _secret(args: argparse.Namespace, registration: Registration) -> dict:
    return manifests.agent_secret(
        cluster_id=registration.cluster_id,
        cluster_name=registration.cluster_name,
        server_url=args.server_url.rstrip("/"),
        client_id=registration.client_id,
        client_secret=registration.client_secret,
        namespace=args.namespace,
    )


def _register(args: argparse.Namespace, conn) -> None:
    registration = register_cluster(conn, CLI_ACTOR, args.name, args.tenant_id)
    print(
        f"registered cluster {registration.cluster_name!r} as {registration.cluster_id}, "
        f"agent access key {registration.client_id} (its secret is shown once)",
        file=sys.stderr,
    )
    if args.output_dir is not None:
        _write_directory(args, registration)
        return
    # Ready for `kubectl apply -f -`; the patch is for kustomize users (see --output-dir).
    print(_dump(_secret(args, registration)), end="")


def _list(args: argparse.Namespace, conn) -> None:
    rows = [
        {**row, "createdAt": row["createdAt"].isoformat()} for row in clusters.list_clusters(conn)
    ]
    print_table(rows, ["id", "name", "tenantId", "createdAt"], args.json)


def _server_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError("must be an http:// or https:// URL the agent can reach")
    return value


def register(commands, add_settings_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``clusters register|list`` to the top-level parser."""
    group = commands.add_parser("clusters", help="register clusters for their agents")
    subcommands = group.add_subparsers(dest="clusters_command", required=True)

    create = subcommands.add_parser(
        "register", help="create a cluster, its agent's access key and rule; print its Secret"
    )
    add_settings_flags(create)
    create.add_argument("name", help="display name of the cluster")
    create.add_argument(
        "--server-url",
        required=True,
        type=_server_url,
        help="URL of this server as the agent reaches it, e.g. http://gpufleet.gpufleet-system.svc:8080",
    )
    create.add_argument("--tenant-id", type=int, default=1, help="tenant of the cluster")
    create.add_argument(
        "--namespace", default=manifests.DEFAULT_NAMESPACE, help="namespace of the agent"
    )
    create.add_argument(
        "--output-dir",
        help="write agent-secret.yaml, agent-patch.yaml and kustomization.yaml here",
    )
    create.add_argument(
        "--base",
        help="with --output-dir: the kustomization to extend, e.g. deploy/overlays/agent",
    )
    create.set_defaults(handler=lambda a, s: run(a, s, _register))

    listing = subcommands.add_parser("list", help="list registered clusters")
    add_settings_flags(listing)
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(handler=lambda a, s: run(a, s, _list))
