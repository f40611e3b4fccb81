"""The native detector kernels give the numpy path's results to the bit: mid-ranks (ties, NaN, values
outside the reference), CUSUM banks (alarms, the earliest row and lowest statistic, runs, inactive
statistics, any batching), and the sequential feature-drift detector's alarms either way."""

from __future__ import annotations

import os

import numpy as np
import pytest

from detectors import kernels
from detectors.cusum_bank import CusumBank
from detectors.feature_streams import NumericBlock, NumericScores, mid_ranks
from detectors.sequential_features import SequentialFeatureDrift

if not kernels.built():  # .ci/run builds them (cargo is there): CI never skips
    if os.environ.get("CI"):
        pytest.fail("the detector kernels were not built: is cargo on the PATH of pip install?")
    pytest.skip("the detector kernels are not built (no Rust toolchain at install)", allow_module_level=True)


@pytest.fixture
def native(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRIFTLINE_NATIVE", raising=False)


def _refs(rng: np.random.Generator, features: int) -> list[np.ndarray]:
    """References of every kind: continuous (no ties), integer-valued (heavy ties), one value, tiny."""
    kinds = [
        lambda: rng.normal(size=2000),
        lambda: rng.integers(0, 5, 2000).astype(float),
        lambda: np.full(300, 7.0),
        lambda: rng.normal(size=3).round(1),
        lambda: np.concatenate([rng.exponential(size=1500), np.zeros(500), [-0.0]]),
        lambda: rng.standard_cauchy(size=1000),  # heavy tails: most values in a few buckets
        lambda: np.concatenate([rng.normal(size=990), [1e300, -1e300]]),  # a range of no finite width
    ]
    return [np.sort(kinds[j % len(kinds)]()) for j in range(features)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mid_ranks_equal_numpy_searchsorted(native: None, seed: int) -> None:
    rng = np.random.default_rng(seed)
    refs = _refs(rng, 23)
    x = rng.normal(scale=3.0, size=(777, 23))
    x[:, 1::5] = rng.integers(-1, 7, size=x[:, 1::5].shape)  # exact ties with the references
    x[rng.random(x.shape) < 0.05] = np.nan
    x[0, :] = [r[0] for r in refs]  # each reference's smallest and largest value
    x[1, :] = [r[-1] for r in refs]
    x[2, :] = 0.0
    x[3, :] = -0.0
    x[4:40, :] = np.stack([rng.choice(r, 36) for r in refs], axis=1)  # values of the references
    x[40, :] = [np.nextafter(r[len(r) // 2], -np.inf) for r in refs]  # just below a reference value
    x[41, :], x[42, :] = np.inf, -np.inf
    got = kernels.mid_ranks_block(refs, x)
    for j, ref in enumerate(refs):
        want = (np.searchsorted(ref, x[:, j], "left") + np.searchsorted(ref, x[:, j], "right")) / 2.0
        assert np.array_equal(got[:, j], want), j
        finite = ~np.isnan(x[:, j])
        assert np.array_equal(got[finite, j], mid_ranks(ref, x[finite, j]))


def test_numeric_block_scores_the_same_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    refs = _refs(rng, 12)
    block = NumericBlock([NumericScores(r) for r in refs], np.array([0.25, -0.25]), np.array([0.03, 0.03]))
    x = rng.normal(size=(3000, 12))
    x[rng.random(x.shape) < 0.03] = np.nan
    x[5, 3] = np.inf
    monkeypatch.setenv("DRIFTLINE_NATIVE", "1")
    z1, inc1 = block(x)
    monkeypatch.setenv("DRIFTLINE_NATIVE", "0")
    z0, inc0 = block(x)
    assert np.array_equal(z1, z0, equal_nan=True) and np.array_equal(inc1, inc0)


def _run(monkeypatch: pytest.MonkeyPatch, mode: str, inc: np.ndarray, cuts: list[int], h: np.ndarray) -> list:
    """Every alarm (absolute row) of a bank fed ``inc`` in the batches ``cuts`` makes (the alarming
    statistic reset and the rest of its batch fed again, as the detector does), with every third
    statistic inactive for the second half; then the bank's state."""
    monkeypatch.setenv("DRIFTLINE_NATIVE", mode)
    bank, out = CusumBank(h), []
    active = np.ones(h.size, dtype=bool)
    bounds = sorted({0, inc.shape[0] // 2, *cuts, inc.shape[0]})  # (the switch is at a cut)
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        if lo >= inc.shape[0] // 2:
            active[::3] = False
        pos = lo
        while pos < hi:
            alarm = bank.update(inc[pos:hi], pos, active)
            if alarm is None:
                break
            out.append((alarm.column, pos + alarm.row, alarm.value, alarm.threshold, alarm.run_start))
            bank.reset(np.array([alarm.column]), pos + alarm.row + 1)
            pos += alarm.row + 1
    return [*out, bank.values.tolist(), bank.run_start.tolist()]


@pytest.mark.parametrize("seed", [0, 1])
def test_cusum_bank_alarms_the_same_either_way_and_any_batching(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    k, n = 37, 6000
    inc = rng.normal(-0.1, 0.6, size=(n, k))
    inc[2000:, 4] += 0.5  # a shift: statistic 4 alarms again and again
    inc[3000:, 20:] += 0.3
    inc[100, :] = 0.5 / (1 << 24)  # exactly half a unit: rint's ties go to even
    inc[101, :] = 1.5 / (1 << 24)
    h = rng.uniform(5.0, 12.0, size=k)
    h[7] = h[8] = 6.0  # two statistics with the same threshold and increments: the lower one alarms
    inc[:, 8] = inc[:, 7]
    whole = _run(monkeypatch, "0", inc, [], h)
    assert len(whole) > 10  # alarms, some in the same row as others
    for mode in ("1", "0"):
        for cuts in ([], [1, 2, 999, 3001, 3002], list(range(250, n, 250))):
            assert _run(monkeypatch, mode, inc, cuts, h) == whole, (mode, cuts)


def test_detector_alarms_the_same_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """A drifting 30-feature stream (numeric with ties, categorical, the joint detector): the same
    alarms, rows and explanations with the kernels and without."""
    rng = np.random.default_rng(9)
    kinds = {f"x{j}": "numeric" for j in range(24)} | {f"c{j}": "categorical" for j in range(6)}

    def rows(n: int, shift: float) -> dict[str, np.ndarray]:
        cols: dict[str, np.ndarray] = {}
        for j in range(24):
            base = rng.normal(shift if j < 3 else 0.0, 1.0, n)
            cols[f"x{j}"] = base.round(0) if j % 4 == 1 else base
        for j in range(6):
            cols[f"c{j}"] = rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1]).astype(object)
        return cols

    batches = [rows(2500, 0.0), rows(3000, 0.0), rows(4000, 0.6), rows(1700, 0.0)]
    found = {}
    for mode in ("1", "0"):
        monkeypatch.setenv("DRIFTLINE_NATIVE", mode)
        det = SequentialFeatureDrift(kinds, reference_size=2000, joint=[f"x{j}" for j in range(24)])
        found[mode] = [d for b in batches for d in det.update(b)]
    assert found["1"] and found["1"] == found["0"]
    assert {d.feature for d in found["1"]} >= {"x0", "x1", "x2"}


def test_the_off_switch_reads_as_the_decoders() -> None:
    """``detectors/`` may not import the decoder's switch, so it keeps its own list of off values:
    the same list, so that ``DRIFTLINE_NATIVE`` turns both native parts off or neither."""
    from driftline import native as decoder

    assert kernels._OFF == decoder._OFF
