"""When a model may be retrained again: the per-model cooldown, on event time.

A retrain of a model that began (in this process, or recorded in the registry by an earlier one)
less than ``cooldown_s`` of event time before a request's alert holds the request back. The
registry's records count only when they are this stream's past: a request about a champion detected
before that champion's own validation window ended comes from another run over the same registry (a
replay, the demo run again: event times started over).

>>> from driftline.registry import ModelVersion
>>> c = Cooldowns()
>>> c.began("churn", 100.0)
>>> c.last("churn", 130.0, [{"status": "promoted", "detected_at_time": 50.0}])
100.0
>>> c.forget("churn", 100.0)  # taken away by a rebalance before it began here
>>> c.last("churn", 130.0, []) is None
True
>>> champion = ModelVersion("churn", "2", "", validated_on={"end_time": 500.0})
>>> another_run(champion, 120.0), another_run(champion, 900.0)
(True, False)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from driftline.registry import ModelVersion

__all__ = ["BEGAN", "Cooldowns", "another_run"]

BEGAN = ("promoted", "rejected", "failed")  # outcomes of requests whose retrain began (cooldown)


class Cooldowns:
    """The alert times of the retrains begun in this process, per model."""

    def __init__(self) -> None:
        self._began: dict[str, list[float]] = {}

    def began(self, model: str, t: float) -> None:
        self._began.setdefault(model, []).append(t)

    def forget(self, model: str, t: float) -> None:
        """A pending request taken away (a rebalance): read again, it must not cool itself down."""
        began = self._began.get(model, [])
        if t in began:
            began.remove(t)

    def last(self, model: str, t: float, recorded: Iterable[dict[str, Any]]) -> float | None:
        """When the latest retrain of ``model`` began: this process's (in arrival order) or a
        recorded one that began no later than ``t`` -- a recorded later one is a request re-read
        after a restart, not one this request comes after."""
        durable = [o.get("detected_at_time", 0.0) for o in recorded if o.get("status") in BEGAN]
        times = [*self._began.get(model, []), *(d for d in durable if d <= t)]
        return max(times) if times else None


def another_run(champion: ModelVersion, t: float) -> bool:
    """A request about ``champion`` detected before its own validation window ended comes from
    another run over this registry -- the registry's recorded retrains are not this stream's past,
    so they impose no cooldown on it."""
    end = (champion.validated_on or {}).get("end_time")
    return end is not None and t < float(end)
