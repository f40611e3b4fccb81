"""The numeric streams scored as one block give the same increments, to the bit, as stream by stream,
and so the same alarms however the features are laid out."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from detectors.sequential_features import SequentialFeatureDrift


def _rows(rng: np.random.Generator, n: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    x = rng.normal(shift, 1, n)
    x[rng.random(n) < 0.05] = np.nan  # missing values add nothing
    steps = rng.integers(0, 6, n).astype(float)  # a discrete feature: ties in its reference
    steps[:3] = np.inf  # not finite: missing
    return {
        "colour": np.array(rng.choice(["red", "green", "blue"], n), dtype=object),
        "x": x,
        "steps": steps,
        "y": rng.lognormal(0.0, 1.0, n) + shift,
    }


@pytest.mark.parametrize("order", [("x", "steps", "y", "colour"), ("colour", "x", "steps", "y")])
def test_block_increments_equal_stream_by_stream(order: tuple[str, ...]) -> None:
    rng = np.random.default_rng(7)
    kinds = {f: ("categorical" if f == "colour" else "numeric") for f in order}
    det = SequentialFeatureDrift(kinds, reference_size=1000, joint=["x", "y"])
    det.update(_rows(rng, 1000))
    batch = det._columns(_rows(rng, 3000, shift=0.3))
    one_by_one = np.column_stack([s.increments(batch, {}) for s in det.streams])
    assert np.array_equal(det._increments(batch), one_by_one)


def test_same_alarms_as_stream_by_stream_and_after_a_checkpoint() -> None:
    rng = np.random.default_rng(11)
    kinds = {"colour": "categorical", "x": "numeric", "steps": "numeric", "y": "numeric"}
    ref, live = _rows(rng, 2000), [_rows(rng, 700, shift=0.4 * (i >= 3)) for i in range(8)]

    def run(block: bool) -> list[tuple[str, int, str]]:
        det = SequentialFeatureDrift(kinds, reference_size=2000, joint=["x", "y"])
        det.update(ref)
        if not block:  # every stream scored on its own, as before the block existed
            det._increments = lambda cols: np.column_stack([s.increments(cols, {}) for s in det.streams])
        out = []
        for i, rows in enumerate(live):
            if i == 4 and block:
                det = pickle.loads(pickle.dumps(det))  # a checkpoint drops the block; it is rebuilt
                assert det._numeric is None
            out += [(d.feature, d.row, d.direction) for d in det.update(rows)]
        return out

    alarms = run(block=True)
    assert alarms == run(block=False)
    assert {f for f, _, _ in alarms} & {"x", "y"}  # the shifted features are flagged
    assert all(row >= 2000 + 3 * 700 for _, row, _ in alarms)  # none before the shift


def test_bank_in_row_chunks_matches_row_by_row() -> None:
    """A batch wider than a chunk is fed in row chunks: the alarm (row, value, change point) and the
    statistics after it are those of feeding the rows one at a time."""
    from detectors.cusum_bank import CusumBank

    rng = np.random.default_rng(3)
    k, n = 300, 4000  # 109 rows a chunk: the alarm falls in a later chunk
    inc = rng.normal(-0.3, 1.0, (n, k))
    inc[2500:, 217] += 1.2
    thresholds = np.full(k, 40.0)
    active = np.ones(k, dtype=bool)
    whole, single = CusumBank(thresholds), CusumBank(thresholds)
    alarm = whole.update(inc, 100, active)
    assert alarm is not None and alarm.column == 217 and alarm.row > 2500
    for r in range(alarm.row + 1):
        found = single.update(inc[r : r + 1], 100 + r, active)
    assert found is not None and (found.column, found.value, found.run_start) == (
        alarm.column,
        alarm.value,
        alarm.run_start,
    )
    assert np.array_equal(whole.values, single.values)
    assert np.array_equal(whole.run_start, single.run_start)
