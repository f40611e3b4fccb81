"""The performance floor: an alert when the rolling headline metric falls ``drop`` below its baseline.

The baseline is the metric over the first full window. The floor alerts once when the metric
crosses ``baseline - drop`` (``baseline + drop`` for a metric where lower is better) and re-arms
when it has recovered to within ``drop / 2`` of the baseline.

>>> from driftline.contracts import Window
>>> from stream_processors.core.labelled import AlertContext
>>> ctx = AlertContext(Window(start_index=0, end_index=1, start_time=0.0, end_time=0.0, n=1), "")
>>> floor = PerformanceFloor("churn", "1", metric="accuracy", drop=0.1)
>>> floor.check(0.9, 100, 1.0, lambda: ctx), floor.baseline  # the first full window: the baseline
([], 0.9)
>>> [a.message for a in floor.check(0.7, 200, 2.0, lambda: ctx)]
['rolling accuracy 0.700 below 0.800; ']
>>> floor.check(0.6, 300, 3.0, lambda: ctx)  # still below: already alerted
[]
>>> floor.describe()
'baseline accuracy 0.900'
"""

from __future__ import annotations

from collections.abc import Callable

from driftline.contracts import Alert
from stream_processors.core.labelled import AlertContext, labelled_alert

__all__ = ["PerformanceFloor"]


class PerformanceFloor:
    def __init__(self, model: str, version: str, *, metric: str, drop: float, higher_is_better: bool = True):
        if drop <= 0:
            raise ValueError(f"drop must be > 0, got {drop}")
        self.model = model
        self.version = version
        self.metric = metric
        self.drop = drop
        self.higher_is_better = higher_is_better
        self.baseline: float | None = None
        self.firing = False

    def describe(self) -> str:
        base = "n/a" if self.baseline is None else f"{self.baseline:.3f}"
        return f"baseline {self.metric.replace('_', ' ')} {base}"

    def check(self, value: float, at: int, time: float, context: Callable[[], AlertContext]) -> list[Alert]:
        """Compare the metric over a full window with the floor; the first call sets the baseline."""
        if self.baseline is None:
            self.baseline = value
            return []
        if self.higher_is_better:
            limit = self.baseline - self.drop
            recovered, breached, word = value >= self.baseline - self.drop / 2, value < limit, "below"
        else:
            limit = self.baseline + self.drop
            recovered, breached, word = value <= self.baseline + self.drop / 2, value > limit, "above"
        if recovered:
            self.firing = False
        if not breached or self.firing:
            return []
        self.firing = True
        what = f"rolling {self.metric.replace('_', ' ')} {value:.3f} {word} {limit:.3f}; "
        return [
            labelled_alert(
                self.model,
                self.version,
                "performance",
                at,
                time,
                f"rolling_{self.metric}",
                value,
                limit,
                what,
                context,
            )
        ]
