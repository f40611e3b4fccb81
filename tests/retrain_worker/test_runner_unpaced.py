"""A retrain worker that listens for a paced producer's clock but has none (a production service, or
the Kafka demo unpaced) still tries its pending requests: as labelled events arrive, and after a quiet
spell when the stream has stopped short of the next step."""

from __future__ import annotations

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
