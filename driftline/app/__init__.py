"""The application layer: the ``driftline`` CLI, the demo wiring, the service entry points and the
embedded API (``from driftline.app import Monitor``).

The top floor: it imports every layer below (contracts, transports, detectors, processors, producers,
the retrain worker) and nothing imports it. ``Monitor`` is imported on first use, so that importing
the CLI does not pay for pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from driftline.app.embedded import Monitor, MonitorResult

__all__ = ["Monitor", "MonitorResult"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from driftline.app import embedded

        return getattr(embedded, name)
    raise AttributeError(f"module 'driftline.app' has no attribute {name!r}")
