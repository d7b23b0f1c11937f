"""Wire shapes of workload metrics (the reference ``MetricsCompositeResponse``) and of the
metrics ingest endpoint."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from gpufleet.schemas.storable import StorableModel


class MeasurementValue(BaseModel):
    value: str = Field(examples=["85"])
    timestamp: str | None = Field(examples=["2023-06-06T12:09:18.211Z"])


class MeasurementResponse(BaseModel):
    type: str = Field(description="specifies what data returned", examples=["GPU_UTILIZATION"])
    labels: dict[str, str] | None = Field(
        None, description="labels of the metric measurement", examples=[{"gpu": "3"}]
    )
    values: list[MeasurementValue] | None


class HistogramValue(BaseModel):
    timestamp: str | None
    data: dict[str, str]


class HistogramSeries(BaseModel):
    type: str = Field(examples=["NIM_TIME_TO_FIRST_TOKEN_SECONDS"])
    values: list[HistogramValue]


class MetricsCompositeResponse(BaseModel):
    measurements: list[MeasurementResponse]
    histogram: list[HistogramSeries] | None = None


class IngestSample(BaseModel):
    """One sample pushed by a producer (the cluster agent, an exporter bridge, a script)."""

    model_config = ConfigDict(extra="forbid")

    workloadId: str = Field(max_length=64, examples=["497f6eca-6276-4993-bfeb-53cbbbba6f08"])
    podId: str | None = Field(
        None,
        max_length=64,
        description="A sample of this pod of the workload; its type is then a pod metric type.",
        examples=["2b1c3d4e-5f60-4718-8293-a4b5c6d7e8f9"],
    )
    type: str = Field(max_length=64, examples=["GPU_UTILIZATION"])
    timestamp: str = Field(max_length=64, examples=["2024-12-20T14:30:00Z"])
    value: float = Field(strict=True, allow_inf_nan=False, examples=[85])
    labels: dict[str, str] | None = Field(None, examples=[{"gpu": "0"}])


class IngestMetricsRequest(StorableModel):
    model_config = ConfigDict(extra="forbid")

    samples: list[IngestSample]


class IngestMetricsResponse(BaseModel):
    accepted: int
