"""ADWIN (adaptive windowing), wrapping river's implementation, with a polarity."""

from __future__ import annotations

import numpy as np
from river import drift

from ._polarity import Polarity, check_int, check_polarity, check_prob
from .base import Direction, DriftSignal, StreamDetector

__all__ = ["ADWIN"]


class ADWIN(StreamDetector):
    """ADWIN keeps a variable-length window and cuts it when two sub-windows' means differ by more
    than a Hoeffding/Bernstein bound at confidence ``delta`` (river's implementation, wrapped).

    River's ADWIN alarms on any change of the mean; here an alarm is only returned when the mean
    moved the way ``polarity`` asks ("increase" for error streams: a falling error rate is good news).
    The signal's ``value`` is the mean of the window kept after the cut, ``threshold`` the mean
    before it.

    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> errors = np.r_[rng.random(2000) < 0.1, rng.random(2000) < 0.3].astype(float)
    >>> det = ADWIN()
    >>> [(s.index, s.direction) for s in det.update_many(errors)]
    [(2080, 'increase')]
    """

    name = "adwin"

    def __init__(
        self,
        delta: float = 0.002,
        polarity: Polarity = "increase",
        clock: int = 32,
        min_window_length: int = 5,
        grace_period: int = 10,
    ) -> None:
        self.delta = check_prob("delta", delta)
        self.polarity = check_polarity(polarity)
        self.clock = check_int("clock", clock, 1)
        self.min_window_length = check_int("min_window_length", min_window_length, 1)
        self.grace_period = check_int("grace_period", grace_period, 1)
        super().__init__()

    def _reset(self) -> None:
        self.n = 0
        self._river = drift.ADWIN(
            delta=self.delta,
            clock=self.clock,
            min_window_length=self.min_window_length,
            grace_period=self.grace_period,
        )
        # the window's sum and width as river keeps them (it only grows between detections, and river
        # starts a new window after one): reading them back before every update cost 3x the update
        self._total, self._width = 0.0, 0

    def __setstate__(self, state: dict[str, object]) -> None:
        """Restore a checkpoint, including one from before the window's sum was kept here."""
        self.__dict__.update(state)
        if "_width" not in state:
            d = self._river
            self._total, self._width = (0.0, 0) if d.drift_detected else (d.total, d.width)

    def update(self, x: float) -> DriftSignal | None:
        found = self.update_many([float(x)])
        return found[0] if found else None

    def update_many(self, xs: np.ndarray | list[float]) -> list[DriftSignal]:
        out: list[DriftSignal] = []
        d, n, total, width = self._river, self.n, self._total, self._width
        # (a list of floats as it is: update() passes one value, and a numpy round trip costs more)
        values = xs if type(xs) is list else np.asarray(xs, dtype=float).tolist()
        for x in values:
            n += 1
            if d.drift_detected:  # river's update starts a new window
                total, width = 0.0, 0
            d.update(x)
            if d.drift_detected:
                s = self._signal(n, total / width if width else 0.0, d.estimation)
                if s is not None:
                    out.append(s)
            total += x
            width += 1
        self.n, self._total, self._width = n, total, width
        return out

    def _signal(self, n: int, before: float, after: float) -> DriftSignal | None:
        direction: Direction = "increase" if after >= before else "decrease"
        if self.polarity != "both" and direction != self.polarity:
            return None
        return DriftSignal(
            self.name,
            n,
            "window_mean",
            float(after),
            float(before),
            direction,
            baseline=float(before),
            recent=float(after),
        )
