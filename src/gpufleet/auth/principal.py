"""Who is calling: the verified identity behind a bearer token."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    role: str
    token_id: str
