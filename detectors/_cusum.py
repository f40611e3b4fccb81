"""The skeleton shared by Driftline's CUSUMs: a bank of one-sided log-likelihood-ratio statistics (one per
watched side and design), a warm-up that estimates the in-control level, thresholds refreshed as that
estimate grows, and a new warm-up after every alarm. Each CUSUM supplies its estimate, its increments and
its threshold calibration."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Generic, TypeVar

from ._polarity import check_int, check_polarity
from .base import Direction, DriftSignal, StreamDetector
from .calibration import arl_from_budget

__all__: list[str] = []

SIDES: dict[str, tuple[Direction, ...]] = {
    "increase": ("increase",),
    "decrease": ("decrease",),
    "both": ("increase", "decrease"),
}


@dataclass(slots=True, kw_only=True)
class CUSUMStatistic:
    """One one-sided CUSUM and the run that made it: it alarms when ``value`` exceeds ``threshold``.

    ``run_events`` / ``run_sum`` count the events and add up the inputs since ``value`` last left zero:
    their ratio is the recent level reported with an alarm.
    """

    threshold: float
    direction: Direction
    value: float = 0.0
    run_events: int = 0
    run_sum: float = 0.0


S = TypeVar("S", bound=CUSUMStatistic)


def solve_margin(h0: float, c: float) -> float | None:
    """The threshold ``h`` with ``h - c h^2 = h0`` (the budget kept on average over an estimation error
    that adds ``c h^2`` to the log false-alarm rate), or None when the baseline is too short for one."""
    if 4 * c * h0 >= 1:
        return None
    return (1 - math.sqrt(1 - 4 * c * h0)) / (2 * c)


class CUSUM(StreamDetector, Generic[S]):
    """Base of the CUSUMs. Subclasses validate their designs, then call ``super().__init__`` with the
    shared parameters and their number of designs (one whose in-control level is given sets ``_learning``
    to False first: no refresh every ``warmup`` events). They implement ``_start`` (reset the in-control
    estimate), ``_observe`` (add an event to it), ``_calibrate`` (statistics for the current estimate),
    ``_add_increments`` (each statistic's log-likelihood-ratio increment for an event) and ``_baseline``
    (the in-control level reported with an alarm).
    """

    _learning: bool = True  # refresh the in-control estimate every ``warmup`` events

    def __init__(self, false_alarms_per_100k: float, warmup: int, polarity: str, designs: int) -> None:
        arl = arl_from_budget(false_alarms_per_100k)
        self.false_alarms_per_100k = float(false_alarms_per_100k)
        self.warmup = check_int("warmup", warmup, 10)
        self.polarity = check_polarity(polarity)
        self._sides = SIDES[self.polarity]
        # every (side, design) statistic gets an equal share of the budget: ARL0 scaled by their number
        self._arl = len(self._sides) * designs * arl
        super().__init__()

    # -- what each CUSUM supplies -----------------------------------------------------------------
    def _start(self) -> None:
        raise NotImplementedError

    def _observe(self, x: float) -> None:
        raise NotImplementedError

    def _calibrate(self) -> list[S]:
        raise NotImplementedError

    def _add_increments(self, x: float) -> None:
        """Add each statistic's log-likelihood-ratio increment for ``x`` to its ``value``."""
        raise NotImplementedError

    def _baseline(self, run_events: int, run_sum: float) -> float:
        raise NotImplementedError

    # -- the shared skeleton ----------------------------------------------------------------------
    def _reset(self) -> None:
        self.n = 0
        self._restart()

    def _restart(self) -> None:
        """A new warm-up: no statistics until the in-control level is estimated again."""
        self._count = 0
        self._stats: list[S] = []
        self.h = float("nan")
        self._start()

    def _refresh(self) -> None:
        """Recalibrate from every event since the last (re)start; the statistics keep their runs."""
        stats = self._calibrate()
        for new, old in zip(stats, self._stats, strict=False):
            new.value, new.run_events, new.run_sum = old.value, old.run_events, old.run_sum
        self._stats = stats
        self.h = stats[0].threshold

    def update(self, x: float) -> DriftSignal | None:
        self.n += 1
        self._count += 1
        self._observe(x)
        stats = self._stats
        if not stats:
            if self._count >= self.warmup:
                self._refresh()
            return None
        self._add_increments(x)
        for st in stats:
            v = st.value
            if v <= 0.0:  # back to zero: the run that led here is over
                st.value = st.run_sum = 0.0
                st.run_events = 0
            elif v > st.threshold:
                events, total = st.run_events + 1, st.run_sum + x  # the run, this event included
                baseline = self._baseline(events, total)
                self._restart()
                return DriftSignal(
                    self.name, self.n, "cusum_llr", v, st.threshold, st.direction, baseline, total / events
                )
            else:
                st.run_events += 1
                st.run_sum += x
        if self._learning and self._count % self.warmup == 0:
            self._refresh()
        return None
