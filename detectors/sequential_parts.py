"""The streams of :class:`~detectors.sequential_features.SequentialFeatureDrift`: for each monitored
feature (or the joint detector), how a batch becomes CUSUM increments, how its thresholds follow from its
share of the budget, and which window test explains its alarms."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ._cusum import solve_margin
from .base import TestResult
from .chi2 import Chi2Test
from .feature_streams import CategoryShares, NumericScores, Reconstruction
from .gaussian_cusum import _estimation_margin
from .ks import KSTest
from .psi import PSITest
from .psi_categorical import CategoricalPSITest

__all__ = ["JOINT", "Stream", "categorical_stream", "numeric_stream", "window_test"]

JOINT = "(joint)"
"""The name of the multivariate (joint) stream in alarms."""

Columns = Mapping[str, np.ndarray]


@dataclass(eq=False)
class Stream:
    """One monitored stream: its statistics' designs (one column of the bank each) and its tests.
    Plain data (no closures), so a monitor holding it pickles for checkpoints.

    ``design[j]`` is what ``calibrate`` needs for column ``j``; ``thresholds`` are set by it."""

    name: str
    kind: Literal["numeric", "categorical", "joint"]
    directions: list[str]
    design: list[tuple[Any, ...]]
    n: int
    test: Callable[[Any], TestResult]
    psi_test: Callable[[Any], TestResult]
    numeric: NumericScores | None = None
    shares: CategoryShares | None = None
    recon: Reconstruction | None = None  # joint
    parts: Sequence[Stream] = ()  # joint: the numeric streams it reads
    buckets: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))  # categorical
    thresholds: np.ndarray = field(default_factory=lambda: np.empty(0))
    slopes: np.ndarray = field(default_factory=lambda: np.empty(0))
    drifts: np.ndarray = field(default_factory=lambda: np.empty(0))

    @staticmethod
    def joint(recon: Reconstruction, shifts: Sequence[float], parts: Sequence[Stream]) -> Stream:
        return Stream(
            name=JOINT,
            kind="joint",
            directions=["increase"] * len(shifts),
            design=[(k, 1.0) for k in shifts],
            n=recon.n,
            test=KSTest().prepare(recon.errors),
            psi_test=PSITest().prepare(recon.errors),
            recon=recon,
            parts=list(parts),
        )

    def transform(self, cols: Columns, z: dict[str, np.ndarray]) -> np.ndarray:
        """Numeric: standardised normal scores; categorical: bucket codes; joint: normal scores of the
        reconstruction error. ``z`` caches the numeric scores of this batch."""
        if self.numeric is not None:
            return self.numeric(cols[self.name])
        if self.shares is not None:
            return self.shares.codes(cols[self.name])
        assert self.recon is not None
        return self.recon(self._scores(cols, z))

    def _scores(self, cols: Columns, z: dict[str, np.ndarray]) -> np.ndarray:
        return np.column_stack([z[p.name] if p.name in z else p.transform(cols, z) for p in self.parts])

    def select(self, cols: Columns) -> Any:
        """What the window tests read: the column, or (joint) the rows' reconstruction errors."""
        if self.recon is None:
            return cols[self.name]
        return self.recon.error(self._scores(cols, {}))

    def calibrate(self, arl: float) -> None:
        """Thresholds for an average run length ``arl`` of the whole stream (each statistic gets an
        equal share: its own ARL0 is ``arl`` times their number)."""
        arl_stat = arl * len(self.design)
        if self.kind == "categorical":
            rows = [_rate_design(p, r, side, arl_stat, self.n) for (p, r, side) in self.design]
            self.thresholds = np.array([h for h, _, _ in rows])
            self.slopes = np.array([a1 for _, a1, _ in rows])  # increment of a row in the bucket
            self.drifts = np.array([a0 for _, _, a0 in rows])  # of a row outside it
            return
        hs = []
        for k, _ in self.design:
            h0 = max(math.log(arl_stat * k * k / 2), 1.0)  # Siegmund, known level and spread
            hs.append(_estimation_margin(h0, k, self.n))
        self.thresholds = np.array(hs)
        self.slopes = np.array([k * sign for k, sign in self.design])
        self.drifts = np.array([k * k / 2 for k, _ in self.design])

    def increments(self, cols: Columns, z: dict[str, np.ndarray]) -> np.ndarray:
        """(rows x statistics) log-likelihood-ratio increments; a missing value adds nothing."""
        if self.kind == "categorical":
            codes = self.transform(cols, z)
            inc = np.where(codes[:, None] == self.buckets[None, :], self.slopes, self.drifts)
            inc[codes < 0] = 0.0
            return inc
        x = self.transform(cols, z)
        if self.kind == "numeric":
            z[self.name] = x
        inc = x[:, None] * self.slopes - self.drifts
        inc[np.isnan(x)] = 0.0
        return inc

    def explain(self, cols: Columns) -> tuple[TestResult, float, list[str]]:
        """An alarm's window ``cols``: its test against the reference, its PSI and (joint stream) the
        features whose part of the reconstruction error grew most. The joint stream scores the window
        once for all three (each part's normal scores, then the residuals: at 200 features, three
        passes were a tenth of a drifting stream's processing)."""
        if self.recon is None:
            x = cols[self.name]
            return self.test(x), float(self.psi_test(x).statistic), []
        res = self.recon.residuals(self._scores(cols, {}))
        error = (res**2).sum(axis=1)  # Reconstruction.error, of these residuals
        return self.test(error), float(self.psi_test(error).statistic), self.recon.contributors(res)


def numeric_stream(
    name: str, scores: NumericScores, reference: np.ndarray, shifts: Sequence[float]
) -> Stream:
    return Stream(
        name=name,
        kind="numeric",
        numeric=scores,
        directions=["increase"] * len(shifts) + ["decrease"] * len(shifts),
        design=[(k, 1.0) for k in shifts] + [(k, -1.0) for k in shifts],
        n=scores.n,
        test=KSTest().prepare(reference),
        psi_test=PSITest().prepare(reference),
    )


def categorical_stream(
    name: str, shares: CategoryShares, reference: np.ndarray, odds_ratios: Sequence[float]
) -> Stream:
    design: list[tuple[Any, ...]] = []
    buckets: list[int] = []
    last = len(shares.names) - 1
    for b, p in enumerate(shares.shares.tolist()):
        # a share can only fall where there is one: no decrease side for an (almost) empty "other"
        rare = b == last and p < shares.min_share
        for side in ("increase",) if rare else ("increase", "decrease"):
            for r in odds_ratios:
                design.append((p, r, side))
                buckets.append(b)
    return Stream(
        name=name,
        kind="categorical",
        shares=shares,
        directions=[d[2] for d in design],
        design=design,
        n=shares.n,
        test=Chi2Test().prepare(reference),
        psi_test=CategoricalPSITest().prepare(reference),
        buckets=np.array(buckets, dtype=np.int64),
    )


def _rate_design(p: float, ratio: float, side: str, arl: float, n: int) -> tuple[float, float, float]:
    """Threshold and increments (row in the bucket, row outside it) of a Bernoulli CUSUM on a bucket's
    share ``p`` estimated from ``n`` rows, as :class:`~detectors.BernoulliCUSUM` calibrates them: the
    decrease side watches ``1 - x``; the budget holds on average over the estimate's error."""
    q0 = p if side == "increase" else 1 - p
    h, a1, a0 = _llr(q0, ratio, arl)
    margin = solve_margin(h, 2 / (n * q0 * (1 - q0) * math.log(ratio) ** 2))
    if margin is None:  # too short a reference: q0 two standard errors towards the alarm side
        h, a1, a0 = _llr(min(q0 + 2 * math.sqrt(q0 * (1 - q0) / n), 0.999), ratio, arl)
    else:
        h = margin
    return (h, a1, a0) if side == "increase" else (h, a0, a1)


def _llr(q0: float, ratio: float, arl: float) -> tuple[float, float, float]:
    odds = q0 / (1 - q0) * ratio
    q1 = odds / (1 + odds)
    a1, a0 = math.log(q1 / q0), math.log((1 - q1) / (1 - q0))
    kl = -(q0 * a1 + (1 - q0) * a0)
    return max(math.log(arl * kl), 1.0), a1, a0


def window_test(s: Stream, cols: Columns) -> TestResult:
    """The stream's window test of ``cols``' rows against its reference."""
    return s.test(s.select(cols))
