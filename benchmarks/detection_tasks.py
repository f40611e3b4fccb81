"""Task scenarios: the labelled stream of a binary, a multiclass and a regression model through the
processor core's :class:`~stream_processors.core.version.VersionMonitor` (default
:class:`~driftline.config.MonitorSettings` but for the task, batches of 1,000 labelled predictions),
so each task is judged by what the processor really alerts on: its error-stream detector, its
performance floor and (classifiers) its label-free estimate's checks.

    python benchmarks/detection.py --tasks [--seeds 20] [--quick] [--json]

Per task x scenario: mean / p90 delay (labelled predictions after the change until the first
``concept_drift`` or ``performance`` alert), misses (none within the post-change rows), false alarms per
100k labelled predictions (alerts before the change; the no-drift controls, 1M rows per task in the full
run, are the measurement). Beside the recommended configuration, for regression, the same core with
the error stream read by ADWIN (the classifiers' detector) or a Gaussian CUSUM on the raw absolute
residuals: why regression runs ``residual_cusum`` (heavy-tailed residuals break their budgets).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from detectors import get_task
from driftline.config import MonitorSettings
from driftline.contracts import Prediction, Scored
from stream_processors.core.version import VersionMonitor

__all__ = ["TaskRow", "TaskScenario", "format_task_table", "run_task_scenarios", "task_alerts"]

BATCH = 1000
CLASSES = np.array(["cat", "dog", "fox", "owl"], dtype=object)


@dataclass
class TaskRow:
    task: str
    scenario: str
    detector: str
    mean_delay: float | None
    p90_delay: float | None
    miss_rate: float | None
    false_alarms_per_100k: float
    seeds: int
    rows: int


@dataclass(frozen=True)
class TaskScenario:
    task: str
    name: str
    change: bool = True  # False: a no-drift control
    accuracy_after: float = 0.0  # classifiers: accuracy after the change
    scale_after: float = 1.0  # regression: residual SD multiplied by this after the change
    bias_after: float = 0.0  # regression: residual mean after the change, in residual SDs
    heavy_tails: bool = False  # regression: Student-t(3) residuals instead of Gaussian


def _stream(sc: TaskScenario, rng: np.random.Generator, n: int, change: int) -> Iterator[list[Scored]]:
    """Batches of labelled predictions; the change (if any) at row ``change``."""
    for a in range(0, n, BATCH):
        k = min(BATCH, n - a)
        after = (np.arange(a, a + k) >= change) & sc.change
        if sc.task == "regression":
            noise = rng.standard_t(3, k) / np.sqrt(3.0) if sc.heavy_tails else rng.normal(0, 1, k)
            noise = np.where(after, noise * sc.scale_after + sc.bias_after, noise)
            pred = rng.normal(50.0, 10.0, k)
            label, prediction, score = (pred + noise).tolist(), pred.tolist(), [None] * k
        else:
            classes = CLASSES[:2] if sc.task == "binary" else CLASSES
            acc = np.where(after, sc.accuracy_after, 0.85)
            top = np.clip(acc + rng.normal(0, 0.08, k), 1 / classes.size, 1.0)  # calibrated on average
            right = rng.random(k) < top
            y = rng.choice(classes, k)
            other = classes[(np.searchsorted(classes, y) + rng.integers(1, classes.size, k)) % classes.size]
            prediction, label = np.where(right, y, other).tolist(), y.tolist()
            score = top.tolist()
            if sc.task == "binary":  # 0/1 labels, the score the probability of 1 ("dog")
                prediction = [int(v == "dog") for v in prediction]
                label = [int(v == "dog") for v in label]
                score = np.where(np.array(prediction) == 1, top, 1 - top).tolist()
        yield [
            Scored(
                prediction=Prediction(
                    prediction_id=str(a + j),
                    model="m",
                    model_version="1",
                    event_time=float(a + j),
                    features={},
                    prediction=prediction[j],
                    score=score[j],
                ),
                label=label[j],
                label_time=a + j + 0.5,
                index=a + j,
            )
            for j in range(k)
        ]


def task_alerts(sc: TaskScenario, seed: int, n: int, change: int, detector: str | None = None) -> list[int]:
    """Stream positions of the labelled alerts (concept drift, performance) of one seeded run."""
    settings = MonitorSettings(task=sc.task, error_detector=detector)  # type: ignore[arg-type]
    vm = VersionMonitor("m", "1", {}, settings, get_task(sc.task))
    out: list[int] = []
    for rows in _stream(sc, np.random.default_rng(seed), n, change):
        scores = np.array([np.nan if s.prediction.score is None else s.prediction.score for s in rows])
        seen = np.arange(1, len(rows) + 1)
        alerts, _ = vm.on_merged(rows, scores, seen, lambda k: (k + 1, k + 1, 0, 0, 0, 0))
        out += [a.detected_at_index for a in alerts if a.type in ("concept_drift", "performance")]
    return out


SCENARIOS = [
    TaskScenario("binary", "accuracy 0.85 -> 0.75", accuracy_after=0.75),
    TaskScenario("binary", "no drift", change=False),
    TaskScenario("multiclass", "accuracy 0.85 -> 0.75", accuracy_after=0.75),
    TaskScenario("multiclass", "accuracy 0.85 -> 0.65", accuracy_after=0.65),
    TaskScenario("multiclass", "no drift", change=False),
    TaskScenario("regression", "residual SD x1.3", scale_after=1.3),
    TaskScenario("regression", "residual SD x1.3, t3 residuals", scale_after=1.3, heavy_tails=True),
    TaskScenario("regression", "residual bias +0.5 SD", bias_after=0.5),
    TaskScenario("regression", "no drift", change=False),
    TaskScenario("regression", "no drift, t3 residuals", change=False, heavy_tails=True),
]
# regression's error stream read by other detectors, for comparison (the first is the recommendation)
REGRESSION_DETECTORS = [None, "adwin", "gaussian_cusum"]


def _row(sc: TaskScenario, det: str, runs: list[tuple[int | None, int, int]], rows: int) -> TaskRow:
    """``runs``: (delay or None, false alarms, pre-change rows) per seed."""
    delays = np.array([d for d, _, _ in runs if d is not None], dtype=float)
    fa = sum(f for _, f, _ in runs) / max(sum(p for _, _, p in runs), 1) * 100_000
    return TaskRow(
        task=sc.task,
        scenario=sc.name,
        detector=det,
        mean_delay=float(delays.mean()) if delays.size else None,
        p90_delay=float(np.percentile(delays, 90)) if delays.size else None,
        miss_rate=1 - delays.size / len(runs) if sc.change else None,
        false_alarms_per_100k=fa,
        seeds=len(runs),
        rows=rows,
    )


def run_task_scenarios(
    seeds: int, quick: bool, log: Callable[[str], None], scenarios: list[TaskScenario] | None = None
) -> list[TaskRow]:
    post = 4000
    control = 50_000 if quick else 1_000_000
    out: list[TaskRow] = []
    for sc in scenarios or SCENARIOS:
        dets = REGRESSION_DETECTORS if sc.task == "regression" else [None]
        for det in dets:
            runs, total = [], 0
            for seed in range(seeds if sc.change else min(seeds, 5)):
                rng = np.random.default_rng(2000 + seed)
                change = int(rng.integers(3000, 8000)) if sc.change else control
                n = change + post if sc.change else control
                alerts = task_alerts(sc, 2000 + seed, n, change, det)
                first = next((r for r in alerts if r >= change), None)
                runs.append(
                    (None if first is None else first - change, sum(r < change for r in alerts), change)
                )
                total += n
            name = det or ("residual_cusum" if sc.task == "regression" else "adwin")
            out.append(_row(sc, ("* " if det is None else "  ") + name + " + floor", runs, total))
        log(f"task scenario {sc.task} / {sc.name}: done")
    return out


def format_task_table(rows: list[TaskRow]) -> str:
    head = (
        f"{'task':<11} {'scenario':<32} {'error detector':<26} {'mean':>6} {'p90':>6} {'miss':>5} "
        f"{'FA/100k':>8} {'rows':>9}"
    )
    out = [head, "-" * len(head)]

    def f(v: float | None, w: int = 6, p: int = 0) -> str:
        return f"{'-':>{w}}" if v is None else f"{v:{w}.{p}f}"

    for r in rows:
        out.append(
            f"{r.task:<11} {r.scenario:<32} {r.detector:<26} {f(r.mean_delay)} {f(r.p90_delay)} "
            f"{f(r.miss_rate, 5, 2)} {r.false_alarms_per_100k:8.2f} {r.rows:9d}"
        )
    return "\n".join(out)
