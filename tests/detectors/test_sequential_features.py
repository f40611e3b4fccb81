"""Sequential feature drift: the integer CUSUM bank against the plain recursion, normal scores and the
explaining test against scipy, the budget on a no-drift stream, checkpoints and validation."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy import stats
from scipy.special import ndtri

from detectors.cusum_bank import CusumBank, quantise
from detectors.feature_streams import OTHER, normal_scores
from detectors.sequential_features import SequentialFeatureDrift


def lindley(inc: np.ndarray, h: float) -> tuple[int | None, int]:
    """The textbook recursion, one row at a time: the first row above ``h`` and its run's start."""
    s, start = 0, 0
    q, hq = quantise(inc), int(quantise(np.array([h]))[0])
    for t, x in enumerate(q.tolist()):
        s = max(0, s + x)
        if s == 0:
            start = t + 1
        elif s > hq:
            return t, start
    return None, start


@pytest.mark.parametrize("seed", range(5))
def test_the_bank_is_the_recursion_whatever_the_batches(seed: int) -> None:
    rng = np.random.default_rng(seed)
    inc = rng.normal(-0.05, 1.0, (3000, 3))
    for col in range(3):
        want = lindley(inc[:, col], 12.0)[0]
        for cuts in (
            [0, 3000],
            [0, 1, 700, 701, 2999, 3000],
            [0, *sorted(rng.choice(3000, 30).tolist()), 3000],
        ):
            bank, got = CusumBank(np.array([12.0])), None
            for a, b in zip(cuts, cuts[1:], strict=False):
                alarm = bank.update(inc[a:b, col : col + 1], a, np.array([True]))
                if alarm is not None:
                    got = a + alarm.row
                    assert alarm.run_start == lindley(inc[: got + 1, col], 12.0)[1]
                    break
            assert got == want


def test_normal_scores_are_the_mid_rank_ecdf_through_the_normal_quantile() -> None:
    rng = np.random.default_rng(1)
    ref = np.sort(rng.lognormal(0, 1, 500))
    x = np.r_[rng.lognormal(0, 1, 50), ref[:5]]
    mid = stats.percentileofscore(ref, x, kind="mean") / 100 * ref.size
    np.testing.assert_allclose(normal_scores(ref, x), ndtri((mid + 0.5) / (ref.size + 1)), rtol=1e-12)


def test_the_alarm_is_explained_by_the_ks_test_of_the_rows_since_the_change_point() -> None:
    rng = np.random.default_rng(2)
    x = np.r_[rng.normal(0, 1, 4000), rng.normal(0.5, 1, 2000)]
    det = SequentialFeatureDrift({"x": "numeric"}, reference_size=2000)
    (d,) = det.update({"x": x})
    since = x[d.change_point : d.row + 1]
    ref = stats.ks_2samp(x[:2000], since)
    assert d.test == "ks" and d.rows == since.size
    assert d.test_statistic == pytest.approx(ref.statistic, abs=1e-12)
    assert d.p_value == pytest.approx(ref.pvalue, rel=0.2)
    assert d.effect == pytest.approx((since.mean() - x[:2000].mean()) / x[:2000].std(), rel=1e-3)
    assert 4000 - 100 <= d.change_point <= d.row < 4000 + 400


def test_the_budget_holds_without_drift() -> None:
    """At a loose budget (so alarms are frequent enough to count), the rate stays within it."""
    rng = np.random.default_rng(3)
    budget, n = 200.0, 200_000
    kinds = {"a": "numeric", "b": "numeric", "c": "categorical"}
    det = SequentialFeatureDrift(kinds, false_alarms_per_100k=budget, joint=["a", "b"], rearm_window=200)
    alarms = []
    for _ in range(n // 20_000):
        a = rng.gamma(2.0, 1.0, 20_000)
        cols = {
            "a": a,
            "b": a + rng.normal(0, 1, a.size),
            "c": rng.choice(np.array(list("pqrs"), dtype=object), a.size),
        }
        alarms += det.update(cols)
    assert 0 < len(alarms) <= budget * n / 100_000


def test_a_new_category_is_drift_of_the_other_bucket() -> None:
    rng = np.random.default_rng(4)
    plans = np.array(["free", "pro"], dtype=object)
    det = SequentialFeatureDrift({"plan": "categorical"}, reference_size=1000)
    assert det.update({"plan": rng.choice(plans, 3000)}) == []
    new = rng.choice(np.array(["free", "pro", "team"], dtype=object), 500, p=[0.45, 0.45, 0.1])
    (d,) = det.update({"plan": new})
    assert (d.feature, d.direction, d.category) == ("plan", "increase", "team")
    assert det.streams[0].shares is not None and det.streams[0].shares.names[-1] == OTHER


def test_a_checkpoint_resumes_with_the_same_alarms() -> None:
    rng = np.random.default_rng(5)
    x = np.r_[rng.normal(0, 1, 3000), rng.normal(0.7, 1, 1000)]
    whole = SequentialFeatureDrift({"x": "numeric"}).update({"x": x})
    det = SequentialFeatureDrift({"x": "numeric"})
    got = det.update({"x": x[:2900]})
    det = pickle.loads(pickle.dumps(det))
    assert got + det.update({"x": x[2900:]}) == whole and len(whole) == 1


def test_checkpoints_after_every_batch_keep_the_alarms_their_explanations_and_re_arming() -> None:
    """A checkpoint keeps only the last ``keep_rows`` rows, as one chunk (not every batch's column
    views); an alarm explained and a stream re-armed after checkpoints read no row before those, so
    a detector pickled after every batch raises the same alarms, explained the same, as one never
    pickled -- through a drift that starts before a checkpoint, its alarm, and its end."""
    rng = np.random.default_rng(8)
    n = 3000 + 1500 + 1500 + 3000  # reference, quiet, drift, back to quiet (re-armed)
    x = np.r_[rng.normal(0, 1, 4500), rng.normal(0.5, 1, 1500), rng.normal(0, 1, 3000)]
    c = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]).astype(object)
    kinds = {"x": "numeric", "c": "categorical"}
    params = {"reference_size": 3000, "keep_rows": 1200, "rearm_window": 600}
    whole = SequentialFeatureDrift(kinds, **params).update({"x": x, "c": c})
    det, got = SequentialFeatureDrift(kinds, **params), []
    for lo in range(0, n, 40):  # an alarm's run and a re-arming window span several checkpoints
        got += det.update({"x": x[lo : lo + 40], "c": c[lo : lo + 40]})
        state = det.__getstate__()
        if det.rows_seen > 3000:
            (start, rows), *more = state["_recent"]
            assert more == [] and start == max(3000, det.rows_seen - 1200)
            assert len(rows["x"]) == len(rows["c"]) == det.rows_seen - start
        det = pickle.loads(pickle.dumps(det))
    assert got == whole and [a.feature for a in whole] == ["x"] and 4500 <= whole[0].row < 5000
    assert not det.firing  # re-armed once the drift ended


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"reference_size": 50}, "reference_size"),
        ({"false_alarms_per_100k": 0}, "false_alarms_per_100k"),
        ({"shifts": (0.0,)}, "shifts"),
        ({"odds_ratios": (1.0,)}, "odds_ratios"),
        ({"joint": ["x", "nope"]}, "joint"),
    ],
)
def test_bad_parameters_are_named(params: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        SequentialFeatureDrift({"x": "numeric"}, **params)


def _primed(budgets: dict[str, float] | None = None) -> SequentialFeatureDrift:
    rng = np.random.default_rng(11)
    det = SequentialFeatureDrift(
        {"a": "numeric", "b": "numeric", "c": "numeric"}, false_alarms_per_100k=0.1, budgets=budgets
    )
    det.prime({f: rng.normal(0, 1, 2000) for f in "abc"})
    return det


def test_a_feature_budget_sets_its_own_threshold_and_the_rest_is_split_over_the_others() -> None:
    from detectors.calibration import arl_from_budget

    plain, own = _primed(), _primed({"a": 0.01})
    th = {s.name: s.thresholds for s in own.streams}
    before = {s.name: s.thresholds for s in plain.streams}
    ref = plain.streams[0]
    ref.calibrate(arl_from_budget(0.01))  # the threshold of a stream given 0.01 per 100k alone
    np.testing.assert_allclose(th["a"], ref.thresholds)
    ref.calibrate(arl_from_budget(0.1 - 0.01) * 2)  # b and c share the rest
    np.testing.assert_allclose(th["b"], ref.thresholds)
    assert (th["a"] > before["a"]).all() and (th["b"] < before["b"]).all()


@pytest.mark.parametrize(
    ("budgets", "match"),
    [({"a": 0.06, "b": 0.05}, "add up to 0.11"), ({"zz": 0.01}, "unknown features"), ({"a": 0.0}, "> 0")],
)
def test_bad_feature_budgets_fail_naming_the_problem(budgets: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SequentialFeatureDrift({"a": "numeric", "b": "numeric"}, false_alarms_per_100k=0.1, budgets=budgets)


def test_a_primed_reference_monitors_from_the_first_row_and_survives_a_checkpoint() -> None:
    rng = np.random.default_rng(4)
    det = SequentialFeatureDrift({"x": "numeric", "k": "categorical"}, reference_size=2000)
    det.prime({"x": rng.normal(0, 1, 2500), "k": rng.choice(["u", "v"], 2500).astype(object)})
    assert det.reference_ready and det.reference is not None and det.reference["x"].size == 2500
    quiet = {"x": rng.normal(0, 1, 300), "k": rng.choice(["u", "v"], 300).astype(object)}
    assert det.update(quiet) == []
    copy = pickle.loads(pickle.dumps(det))
    shifted = {"x": rng.normal(0.7, 1, 700), "k": rng.choice(["u", "v"], 700).astype(object)}
    found = [(d.feature, d.row, d.direction) for d in det.update(shifted)]
    assert found == [(d.feature, d.row, d.direction) for d in copy.update(shifted)]
    assert found and found[0][0] == "x" and 300 <= found[0][1] < 500  # long before 2000 live rows
    with pytest.raises(ValueError, match="before the first update"):
        det.prime({"x": np.zeros(200), "k": np.array(["u"] * 200, dtype=object)})
