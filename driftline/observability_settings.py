"""Where a long-running component serves its Prometheus metrics: ``DRIFTLINE_OBSERVABILITY__METRICS_PORT``
(0: not served) on ``DRIFTLINE_OBSERVABILITY__METRICS_HOST``, loopback unless told otherwise (a
container that Prometheus scrapes from another one binds 0.0.0.0 and publishes no port).

>>> ObservabilitySettings(metrics_port=9464).metrics_host
'127.0.0.1'
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ObservabilitySettings"]


class ObservabilitySettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    metrics_port: int = Field(default=0, ge=0, le=65535, description="Prometheus /metrics port (0 = off)")
    metrics_host: str = Field(default="127.0.0.1", description="address /metrics binds to")
