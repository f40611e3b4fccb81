"""The performance floor: an alert when the rolling headline metric falls ``drop`` below its baseline.

The baseline is the metric over the first full window. The floor alerts once when the metric
crosses ``baseline - drop`` (``baseline + drop`` for a metric where lower is better) and re-arms
when it has recovered to within ``drop / 2`` of the baseline. An alert states the metric before
(the baseline, over its window: ``reference``) and after (the rolling window that crossed the floor),
their difference as ``effect`` and its direction.

>>> from driftline.contracts import Window
>>> from stream_processors.core.labelled import AlertContext
>>> ctx = AlertContext(Window(start_index=0, end_index=1, start_time=0.0, end_time=0.0, n=1), "")
>>> floor = PerformanceFloor("churn", "1", metric="accuracy", drop=0.1)
>>> floor.check(0.9, 100, 1.0, lambda: ctx), floor.baseline  # the first full window: the baseline
([], 0.9)
>>> [(a.message, a.before, a.after, round(a.effect, 3)) for a in floor.check(0.7, 200, 2.0, lambda: ctx)]
[('rolling accuracy 0.700 below 0.800 (baseline 0.900); ', 0.9, 0.7, -0.2)]
>>> floor.check(0.6, 300, 3.0, lambda: ctx)  # still below: already alerted
[]
>>> floor.describe()
'baseline accuracy 0.900'
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from driftline.contracts import Alert, Window
from stream_processors.core.labelled import AlertContext, labelled_alert

__all__ = ["PerformanceFloor"]


class PerformanceFloor:
    baseline_window: Window | None = None  # a class default: checkpoints from before it existed

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
            self.baseline_window = context().window
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
        name = self.metric.replace("_", " ")
        what = f"rolling {name} {value:.3f} {word} {limit:.3f} (baseline {self.baseline:.3f}); "
        alert = labelled_alert(
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
        effect = value - self.baseline
        return [
            msgspec.structs.replace(
                alert,
                before=self.baseline,
                after=float(value),
                effect=effect,
                direction="increase" if effect >= 0 else "decrease",
                reference=self.baseline_window,
            )
        ]
