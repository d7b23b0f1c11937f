"""``Accept: text/csv`` for the telemetry and metrics endpoints: negotiation and rendering."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence

from fastapi import Request
from fastapi.responses import Response

from gpufleet.schemas.csv_cells import write_csv


def wants_csv(request: Request) -> bool:
    """True when the client prefers CSV: ``text/csv`` ranks above any JSON it accepts."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(request.headers.get("accept", "").split(",")):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media:
            ranked.append((-quality, position, media.lower()))
    for _, _, media in sorted(ranked):
        if media == "text/csv":
            return True
        if media in ("application/json", "application/*", "*/*"):
            return False
    return False


def csv_response(header: Sequence[str], rows: Iterable[Sequence[object]], status: int = 200):
    """A CSV body with a header row; text that a spreadsheet would run is escaped."""
    buffer = io.StringIO()
    write_csv(buffer, header, rows)
    return Response(buffer.getvalue(), status_code=status, media_type="text/csv")
