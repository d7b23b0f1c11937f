"""The demo status (a gpufleet extension): what the living demo's simulator is doing."""

from __future__ import annotations

from pydantic import BaseModel, Field


class DemoStatus(BaseModel):
    state: str = Field(
        description=(
            "`starting`, `history` (the past is being simulated and reported), `live`, "
            "`stopped` or `failed`."
        ),
        examples=["history"],
    )
    seed: int
    speed: float = Field(description="Simulated seconds per second once live.")
    historyFrom: str | None = Field(None, description="Where the simulated history begins.")
    simulatedTime: str | None = Field(
        None, description="How far the simulation has reported (RFC 3339)."
    )
    historyComplete: bool = Field(
        description="True once the simulation has reached the present: every view has its data."
    )
    historyCompletedAt: str | None = None
    reported: dict[str, int] = Field(
        default_factory=dict, description="Items reported so far, by kind."
    )
    error: str | None = None
