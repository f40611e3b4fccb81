"""The performance floor: an alert when the rolling headline metric falls ``drop`` below its baseline.

The baseline is the metric over the first full window. The floor alerts once when the metric
crosses ``baseline - drop`` (``baseline + drop`` for a metric where lower is better) and re-arms
when it has recovered to within ``drop / 2`` of the baseline. An alert states the metric before
(the baseline, over its window: ``reference``) and after (the rolling window that crossed the floor),
their difference as ``effect`` and its direction.

With ``relative=True`` (regression's MAE: a scale of its own) ``drop`` is a fraction of the baseline,
and the margin is also never below the two windows' sampling noise at the false-alarm budget:
``max(drop * baseline, z * sqrt(2) * se)``, where ``se`` is the baseline window's standard error of
the metric (the sqrt(2): the baseline window is itself a sample) and ``z`` the normal quantile of
``false_alarms_per_100k`` split over the ``100_000 / every`` checks per 100k labelled predictions
(Bonferroni: consecutive windows overlap, so the budget is kept conservatively).

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
>>> reg = PerformanceFloor("price", "1", metric="mae", drop=0.1, higher_is_better=False, relative=True)
>>> reg.check(2.0, 100, 1.0, lambda: ctx, se=0.01), round(reg.margin, 3)  # 10% of 2.0 > the noise
([], 0.2)
>>> [a.message for a in reg.check(2.3, 200, 2.0, lambda: ctx)]
['rolling mae 2.300 above 2.200 (baseline 2.000); ']
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

import msgspec

from detectors.calibration import DEFAULT_FALSE_ALARMS_PER_100K
from driftline.contracts import Alert, Window
from stream_processors.core.labelled import AlertContext, labelled_alert

__all__ = ["PerformanceFloor"]


class PerformanceFloor:
    baseline_window: Window | None = None  # class defaults: checkpoints from before these existed
    relative = False
    margin: float | None = None  # how far from the baseline the floor is (set with the baseline)
    z = 0.0

    def __init__(
        self,
        model: str,
        version: str,
        *,
        metric: str,
        drop: float,
        higher_is_better: bool = True,
        relative: bool = False,
        false_alarms_per_100k: float | None = None,
        every: int = 500,
    ):
        if drop <= 0:
            raise ValueError(f"drop must be > 0, got {drop}")
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.model = model
        self.version = version
        self.metric = metric
        self.drop = drop
        self.higher_is_better = higher_is_better
        self.relative = relative
        budget = false_alarms_per_100k or DEFAULT_FALSE_ALARMS_PER_100K
        self.z = NormalDist().inv_cdf(1 - min(0.5, budget * every / 100_000))
        self.baseline: float | None = None
        self.firing = False

    def _set_margin(self, baseline: float, se: float) -> float:
        if not self.relative:
            return self.drop
        noise = self.z * math.sqrt(2.0) * se if se == se else 0.0  # NaN: no noise estimate
        return max(self.drop * abs(baseline), noise)

    def describe(self) -> str:
        base = "n/a" if self.baseline is None else f"{self.baseline:.3f}"
        return f"baseline {self.metric.replace('_', ' ')} {base}"

    def check(
        self,
        value: float,
        at: int,
        time: float,
        context: Callable[[], AlertContext],
        se: float = math.nan,
    ) -> list[Alert]:
        """Compare the metric over a full window with the floor; the first call sets the baseline (and,
        for a relative floor, its margin from ``se``, the window's standard error of the metric)."""
        if self.baseline is None:
            self.baseline = value
            self.margin = self._set_margin(value, se)
            self.baseline_window = context().window
            return []
        m = self.drop if self.margin is None else self.margin
        if self.higher_is_better:
            limit = self.baseline - m
            recovered, breached, word = value >= self.baseline - m / 2, value < limit, "below"
        else:
            limit = self.baseline + m
            recovered, breached, word = value <= self.baseline + m / 2, value > limit, "above"
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
