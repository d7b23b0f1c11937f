"""The flags of the client's list commands, and the query parameters they stand for."""

from __future__ import annotations

import argparse
from typing import Any

DEFAULT_LIMIT = 50


def add_filter_flag(parser: argparse.ArgumentParser, example: str) -> None:
    """``-f/--filter EXPR``, repeatable: the list's ``filterBy`` terms."""
    parser.add_argument(
        "-f",
        "--filter",
        action="append",
        metavar="EXPR",
        help=f"filterBy expression, e.g. {example} (repeatable)",
    )


def add_sort_flags(parser: argparse.ArgumentParser, example: str) -> None:
    """``--sort FIELD`` and ``--desc``."""
    parser.add_argument("--sort", metavar="FIELD", help=f"sortBy field, e.g. {example}")
    parser.add_argument("--desc", action="store_true", help="sort descending")


def add_page_flags(parser: argparse.ArgumentParser) -> None:
    """``--limit`` and ``--offset`` of one page."""
    parser.add_argument(
        "--limit", type=int, default=DEFAULT_LIMIT, help=f"rows to show (default {DEFAULT_LIMIT})"
    )
    parser.add_argument("--offset", type=int, default=0, help="skip this many rows")


def list_parameters(args: argparse.Namespace) -> dict[str, Any]:
    """``filterBy``, ``sortBy``/``sortOrder`` and ``limit``/``offset`` from the flags above that
    the command has and the caller gave."""
    params: dict[str, Any] = {}
    if getattr(args, "filter", None):
        params["filterBy"] = args.filter
    if getattr(args, "sort", None):
        params["sortBy"] = args.sort
    if getattr(args, "desc", False):
        params["sortOrder"] = "desc"
    for name in ("limit", "offset"):
        if getattr(args, name, None) is not None:
            params[name] = getattr(args, name)
    return params
