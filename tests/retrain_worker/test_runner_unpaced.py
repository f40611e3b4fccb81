"""A retrain worker that listens for a paced producer's clock but has none (a production service, or
the Kafka demo unpaced) still tries its pending requests: as labelled events arrive, and after a quiet
spell when the stream has stopped short of the next step."""

from __future__ import annotations

import pytest

from driftline.transport import Record
from retrain_worker.runner import RetrainRunner


class Worker:
    """Keeps one request pending and counts the tries."""

    def __init__(self) -> None:
        self.pending = {"r0": None}
        self.positions = {"r0": ("retrain", 0, 0)}
        self.tries = 0

    def submit_record(self, record: Record) -> None:
        return None

    def step(self, now: float | None = None) -> list:
        self.tries += 1
        return []

    def forget(self, partitions: list[int]) -> list[str]:
        return []


class Source:
    def __init__(self) -> None:
        self.records = [Record("retrain", b"{}", offset=0)]

    def poll(self, n: int, timeout: float = 0.0) -> list[Record]:
        out, self.records = self.records, []
        return out

    def commit(self, offsets=None) -> None:
        pass

    def close(self) -> None:
        pass


def test_without_ticks_a_listening_runner_retries_on_progress_and_after_a_quiet_spell() -> None:
    worker, labelled, now = Worker(), [0], [0.0]
    runner = RetrainRunner(
        worker,
        Source(),
        clock_topic="retrain.clock",  # listening for a pacer that never ticks
        progress=lambda: labelled[0],
        retry_every=100,
        idle_retry_s=5.0,
        clock=lambda: now[0],
    )
    runner.run_once()
    assert worker.tries == 1  # the request was queued: tried at once
    labelled[0] = 50
    runner.run_once()
    assert worker.tries == 1  # 50 more labelled events: not yet
    labelled[0] = 120
    runner.run_once()
    assert worker.tries == 2  # 100 more
    now[0] = 6.0  # the stream stopped: no more labelled events, yet the request is tried again
    runner.run_once()
    assert worker.tries == 3


@pytest.mark.parametrize("labelled", [900, 3000])
def test_without_a_clock_the_window_is_the_same_however_far_the_stream_got(
    make_worker, make_request, fill_scored, labelled
) -> None:
    """Unpaced, a version depends on the request and the stream, not on how many labelled events the
    scored topic held when the worker tried (a processor slowed by a fault, a broker restart): the
    first min_samples (800) labelled after the alert, whether 900 or 3,000 were there."""
    fill_scored(1, labelled, 100)
    worker = make_worker()
    assert worker.submit(make_request("a1", t=100.0)) is None
    (out,) = worker.step()
    assert out.status == "promoted"
    assert (out.metrics["n_train"], out.trained_through_index) == (560, 899)  # 70 % of 800; #100..#899


def test_a_failed_metrics_commit_does_not_stop_the_worker() -> None:
    """The rollback watcher's offsets commit refused by a coordinator that is away (a broker restart):
    the worker goes on, and the next commit covers the points judged."""
    from retrain_worker.rollback import RollbackRunner

    class Watcher:
        def on_record(self, rec: Record) -> None:
            return None

    class Refusing(Source):
        def commit(self, offsets=None) -> None:
            raise RuntimeError("Commit failed: Broker: Not coordinator")

    runner = RollbackRunner(Watcher(), Refusing())  # type: ignore[arg-type]
    assert runner.run_once() == []
