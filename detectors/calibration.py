"""From a false-alarm budget to significance levels, and multiple-testing control across features.

A user states "at most ``B`` false alarms per 100k events per model". A windowed detector over
tumbling windows of ``w`` rows runs ``100_000 / w`` window checks per 100k events; if each check
raises a (false) alarm with probability at most ``alpha``, the expected number of false alarms per
100k events is at most ``alpha * 100_000 / w``. Hence ``alpha = B * w / 100_000`` per window *for the
whole model*: the per-feature tests of one window share it through Holm's step-down procedure, which
keeps the family-wise error (any feature flagged while none drifted) at ``alpha``.

The per-test p-values are analytic where the null is known and distribution-free or asymptotically
chi-square (KS, PSI, chi-square, Jensen-Shannon) and bootstrapped on the reference otherwise
(Wasserstein): see each test's docstring. Analytic nulls need no calibration run, cost nothing at
reference time, and stay valid for any window size.

Segments: see :func:`split_budget`. For sequential detectors the budget is an average run length:
``ARL0 = 100_000 / B`` events between false alarms (see :func:`arl_from_budget`).

:data:`DEFAULT_FALSE_ALARMS_PER_100K` is the one default budget: every detector taking
``false_alarms_per_100k`` defaults to it, and the stream processor monitors each model with it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DEFAULT_FALSE_ALARMS_PER_100K", "alpha_from_budget", "arl_from_budget", "holm", "split_budget"]

# one false alarm per ~1M events (per model for FeatureSetDrift, per stream for a sequential detector)
DEFAULT_FALSE_ALARMS_PER_100K = 0.1


def alpha_from_budget(false_alarms_per_100k: float, window_size: int) -> float:
    """Per-window family-wise significance level for a budget of false alarms per 100k events.

    >>> alpha_from_budget(0.5, 1000)
    0.005
    """
    if false_alarms_per_100k <= 0:
        raise ValueError(f"false_alarms_per_100k must be > 0, got {false_alarms_per_100k}")
    if window_size < 1:
        raise ValueError(f"window_size must be >= 1, got {window_size}")
    return min(0.5, false_alarms_per_100k * window_size / 100_000)


def arl_from_budget(false_alarms_per_100k: float) -> float:
    """In-control average run length (events between false alarms) for a budget per 100k events.

    >>> arl_from_budget(0.5)
    200000.0
    """
    if false_alarms_per_100k <= 0:
        raise ValueError(f"false_alarms_per_100k must be > 0, got {false_alarms_per_100k}")
    return 100_000 / false_alarms_per_100k


def holm(p_values: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Holm's step-down procedure: which hypotheses to reject at family-wise level ``alpha``.

    Returns ``(rejected, levels)``: ``levels[i]`` is the level ``p_values[i]`` was compared with
    (``alpha / (k - rank)``); rejection stops at the first p-value above its level.

    >>> rej, lev = holm(np.array([0.001, 0.2, 0.004]), 0.01)
    >>> rej.tolist(), [round(float(v), 4) for v in lev]
    ([True, False, True], [0.0033, 0.01, 0.005])
    """
    p = np.asarray(p_values, dtype=float)
    k = p.size
    order = np.argsort(p, kind="stable")
    levels = np.empty(k)
    levels[order] = alpha / (k - np.arange(k))
    ok = p[order] <= levels[order]
    n_rej = k if ok.all() else int(np.argmin(ok))
    rejected = np.zeros(k, dtype=bool)
    rejected[order[:n_rej]] = True
    return rejected, levels


def split_budget(false_alarms_per_100k: float, partitions: int) -> float:
    """Budget for each monitor when one model is monitored at ``partitions`` levels, each level a
    partition of the model's events (e.g. the whole stream, per country, per device).

    Budgets are per event: a monitor that sees a share ``f`` of the events and keeps ``b`` false alarms
    per 100k of *its* events raises ``f * b`` per 100k model events. Within one partition the shares sum
    to 1, so every segment may use the level's full per-event budget; only the levels share the model's
    budget. Per-segment monitors are thus not penalised for the number of segments.

    >>> split_budget(0.5, 2)  # whole model + one segmentation (any number of segments)
    0.25
    """
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    if false_alarms_per_100k <= 0:
        raise ValueError(f"false_alarms_per_100k must be > 0, got {false_alarms_per_100k}")
    return false_alarms_per_100k / partitions
