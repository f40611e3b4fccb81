"""Evidence that one model is better than another on the same labelled events, with a confidence bound.

A few hundred time-ordered holdout events decide a promotion; a point difference alone would promote a
challenger that won by chance. So both models are scored on the *same* rows and the paired
difference gets a one-sided confidence bound:

* classification (the metric is accuracy): only the discordant pairs carry information -- ``b`` rows
  the challenger gets right and the champion wrong, ``c`` the reverse. Given ``b + c``, ``b`` is
  binomial with ``p = 1/2`` when neither is better (McNemar's exact test); a Clopper-Pearson bound
  on ``p`` becomes a bound on the accuracy difference ``(b - c) / n``;
* regression (the metric is the mean absolute error): a seeded paired bootstrap of the per-row
  difference of absolute errors.

``difference`` is always the challenger's *improvement* (accuracy gained, MAE saved): positive means
the challenger is better, whatever the metric's direction.

>>> import numpy as np
>>> from detectors.tasks import get_task
>>> y = np.array([1, 0] * 50)
>>> ev = paired_evidence(get_task("binary"), y, champion=1 - y, challenger=y)
>>> ev.difference, round(ev.low, 3), ev.clears(0.01)
(1.0, 0.941, True)
>>> print(ev.reason("challenger", "champion"))
challenger 1.000 vs champion 0.000 accuracy on 100 held-out, difference +1.000, 95% lower bound +0.941
>>> marginal = paired_evidence(get_task("binary"), y[:20], champion=y[:20] ^ (np.arange(20) < 3),
...                            challenger=y[:20] ^ (np.arange(20) < 1))
>>> round(marginal.difference, 2), marginal.low > 0, marginal.clears(0.01)
(0.1, False, False)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from detectors.tasks import Task

__all__ = ["BOOTSTRAP_RESAMPLES", "Evidence", "paired_evidence", "proportion_bounds"]

BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class Evidence:
    """How the challenger compares with the champion on ``n`` paired rows (see the module docstring)."""

    metric: str
    challenger: float
    champion: float
    n: int
    difference: float  # the challenger's improvement (positive: better)
    low: float  # one-sided lower confidence bound of ``difference``
    high: float  # one-sided upper confidence bound of ``difference``
    confidence: float
    p_value: float  # of "the challenger is no better"

    def clears(self, min_improvement: float) -> bool:
        """The promotion rule: the bound clears zero and the point difference the margin."""
        return self.low > 0 and self.difference >= min_improvement

    def reason(self, new: str, old: str, where: str = "held-out") -> str:
        """The numbers behind a decision, in one line an on-call engineer reads."""
        pct = f"{100 * self.confidence:g}%"
        return (
            f"{new} {self.challenger:.3f} vs {old} {self.champion:.3f} {self.metric} on {self.n} "
            f"{where}, difference {self.difference:+.3f}, {pct} lower bound {self.low:+.3f}"
        )

    def metrics(self) -> dict[str, float]:
        """What the registry records beside the two scores."""
        m = self.metric
        return {
            f"{m}_difference": self.difference,
            f"{m}_difference_ci_low": self.low,
            f"{m}_difference_ci_high": self.high,
            f"{m}_difference_p_value": self.p_value,
            "confidence": self.confidence,
        }


def proportion_bounds(k: int, n: int, confidence: float) -> tuple[float, float]:
    """One-sided Clopper-Pearson bounds of a proportion seen as ``k`` of ``n`` (each at ``confidence``).

    >>> [round(b, 3) for b in proportion_bounds(45, 50, 0.95)]
    [0.801, 0.96]
    """
    if n <= 0:
        return 0.0, 1.0
    alpha = 1.0 - confidence
    low = float(stats.beta.ppf(alpha, k, n - k + 1)) if k > 0 else 0.0
    high = float(stats.beta.ppf(confidence, k + 1, n - k)) if k < n else 1.0
    return low, high


def paired_evidence(
    task: Task,
    y: Any,
    *,
    champion: Any,
    challenger: Any,
    confidence: float = 0.95,
    seed: int = 0,
) -> Evidence:
    """Compare two models' predictions ``champion`` and ``challenger`` of the same labels ``y``."""
    if not 0.5 <= confidence < 1.0:
        raise ValueError(f"confidence must be in [0.5, 1), got {confidence}")
    new, old = task.validation_score(y, challenger), task.validation_score(y, champion)
    if task.higher_is_better:
        return _exact(task.metric, task.correct(y, challenger), task.correct(y, champion), confidence)
    loss_new, loss_old = task.errors(y, challenger), task.errors(y, champion)
    return _bootstrap(task.metric, new, old, loss_old - loss_new, confidence, seed)


def _exact(metric: str, right_new: np.ndarray, right_old: np.ndarray, confidence: float) -> Evidence:
    n = len(right_new)
    b = int(np.sum(right_new & ~right_old))
    c = int(np.sum(~right_new & right_old))
    p_low, p_high = proportion_bounds(b, b + c, confidence)
    share = (b + c) / max(n, 1)
    p_value = float(stats.binomtest(b, b + c, 0.5, alternative="greater").pvalue) if b + c else 1.0
    return Evidence(
        metric=metric,
        challenger=float(np.mean(right_new)) if n else float("nan"),
        champion=float(np.mean(right_old)) if n else float("nan"),
        n=n,
        difference=(b - c) / max(n, 1),
        low=share * (2 * p_low - 1) if b + c else 0.0,
        high=share * (2 * p_high - 1) if b + c else 0.0,
        confidence=confidence,
        p_value=p_value,
    )


def _bootstrap(
    metric: str, new: float, old: float, saved: np.ndarray, confidence: float, seed: int
) -> Evidence:
    """``saved``: per row, the champion's loss minus the challenger's (positive: challenger better)."""
    n = len(saved)
    rng = np.random.default_rng(seed)
    means = np.empty(BOOTSTRAP_RESAMPLES)
    step = max(1, 1_000_000 // max(n, 1))  # resamples per chunk: bounded memory for a large holdout
    for start in range(0, BOOTSTRAP_RESAMPLES, step):
        stop = min(start + step, BOOTSTRAP_RESAMPLES)
        means[start:stop] = saved[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    return Evidence(
        metric=metric,
        challenger=new,
        champion=old,
        n=n,
        difference=float(np.mean(saved)),
        low=float(np.quantile(means, 1.0 - confidence)),
        high=float(np.quantile(means, confidence)),
        confidence=confidence,
        p_value=float(np.mean(means <= 0.0)),
    )
