"""Page-Hinkley test, wrapping river's implementation, with a polarity."""

from __future__ import annotations

from river import drift

from ._polarity import Polarity, check_int, check_polarity, check_prob
from .base import DriftSignal, StreamDetector

__all__ = ["PageHinkley"]

_MODE = {"increase": "up", "decrease": "down", "both": "both"}


class PageHinkley(StreamDetector):
    """Page-Hinkley: cumulative deviation from the running mean minus a tolerance ``delta``; alarm
    when it exceeds ``threshold`` (river's implementation; ``polarity`` maps to river's ``mode``).

    ``threshold`` is in units of the input: river's default of 50 suits inputs with spread ~1, not
    0/1 error streams with small rates, so this wrapper defaults to ``threshold=25`` and
    ``polarity="increase"``. For a budgeted alarm rate prefer :class:`~detectors.GaussianCUSUM`.

    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> errors = np.r_[rng.random(2000) < 0.1, rng.random(2000) < 0.3].astype(float)
    >>> [(s.index, s.direction) for s in PageHinkley().update_many(errors)]
    [(2112, 'increase')]
    """

    name = "page_hinkley"

    def __init__(
        self,
        threshold: float = 25.0,
        delta: float = 0.005,
        alpha: float = 1 - 1e-4,
        min_instances: int = 30,
        polarity: Polarity = "increase",
    ) -> None:
        if threshold <= 0:
            raise ValueError(f"threshold must be > 0, got {threshold}")
        if delta < 0:
            raise ValueError(f"delta must be >= 0, got {delta}")
        self.threshold = float(threshold)
        self.delta = float(delta)
        self.alpha = check_prob("alpha", alpha, 0.0, 1.0 + 1e-12)
        self.min_instances = check_int("min_instances", min_instances, 1)
        self.polarity = check_polarity(polarity)
        super().__init__()

    def _reset(self) -> None:
        self.n = 0
        self._river = drift.PageHinkley(
            min_instances=self.min_instances,
            delta=self.delta,
            threshold=self.threshold,
            alpha=self.alpha,
            mode=_MODE[self.polarity],
        )

    def update(self, x: float) -> DriftSignal | None:
        self.n += 1
        d = self._river
        d.update(x)
        if not d.drift_detected:
            return None
        up = d._sum_increase - d._min_increase
        down = d._max_decrease - d._sum_decrease
        if self.polarity == "increase" or (self.polarity == "both" and up > self.threshold):
            return DriftSignal(
                self.name,
                self.n,
                "ph_increase",
                float(up),
                self.threshold,
                "increase",
                baseline=float(d._x_mean.get()),
            )
        return DriftSignal(
            self.name,
            self.n,
            "ph_decrease",
            float(down),
            self.threshold,
            "decrease",
            baseline=float(d._x_mean.get()),
        )
