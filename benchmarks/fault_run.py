"""The fault suite's processes (``benchmarks/faults.py`` and ``tests/integration/test_faults_kafka.py``).

* :class:`Child` -- ``python -m driftline.app ...`` as a child process in its own session, so a SIGKILL
  takes it whole, as ``kill -9`` would; :class:`Processor` -- ``driftline process`` so.
* :class:`ScoredWatch` -- how far a run has got: the distinct prediction ids on the scored topic so far.
* :class:`Run` -- the processors of one scenario, started again when they exit (a crash is noted).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # loaded by path (the test, runpy): its sibling must be importable
    sys.path.insert(0, _HERE)

from fault_kit import Outputs, Stream, caught_up, collect  # noqa: E402

from driftline.app.services import prepare_kafka  # noqa: E402
from driftline.config import DriftlineSettings, Topics  # noqa: E402
from driftline.contracts import Scored, decode  # noqa: E402

__all__ = ["OPTIONS", "Child", "Processor", "Run", "ScoredWatch", "own_outputs"]

OPTIONS = {"checkpoint_interval": 1.0, "commit_interval": 0.1, "batch_size": 500}
"""Options of every ``driftline process``: snapshots every second and commits every 0.1 s, so kills land
between snapshots and progress shows as the stream is processed; batches of 500 records, so a kill lands
within a few hundred records of the point it aims at."""


class Child:
    """``python -m driftline.app <args>`` with the settings in its environment (never on its command
    line), in its own session, its output in ``log``."""

    def __init__(self, settings: DriftlineSettings, args: list[str], log: Path) -> None:
        self.log = log
        env = {**os.environ, **settings.to_env(), "DRIFTLINE_LOG_LEVEL": "INFO"}
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "driftline.app", *args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def last_words(self) -> str:
        """Its last log line of its own (not librdkafka's, not a traceback frame)."""
        own = [ln for ln in self.text().splitlines() if ln.strip() and ln[0] not in "%│╭╰ "]
        return own[-1] if own else ""

    def kill(self) -> None:
        """SIGKILL to the whole process group: no revoke, no checkpoint, no flush."""
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self, timeout: float = 60.0) -> int:
        """A clean stop (SIGTERM). Returns the exit code."""
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9


class Processor(Child):
    """``driftline process`` in a consumer group, checkpointing to ``state_dir``. Each instance slot has
    its own transactional id, the same across restarts of the slot: as a supervisor restarting one
    instance, whose restart aborts the killed one's open transaction at once."""

    def __init__(
        self,
        settings: DriftlineSettings,
        group: str,
        state_dir: Path,
        log: Path,
        options: Mapping[str, object],
        slot: int = 0,
    ) -> None:
        args = ["process", "--group", group, "--state-dir", str(state_dir)]
        args += ["--transactional-id", f"{group}-{slot}"]
        for option, value in options.items():
            args += [f"--{option.replace('_', '-')}", str(value)]
        super().__init__(settings, args, log)

    def assigned(self) -> bool:
        """Whether it has been given input partitions (and restored their checkpoints)."""
        return "assigned input partitions" in self.text()

    def partitions(self) -> str:
        """Its latest assignment as logged, e.g. ``"[0, 1]"`` ("" before the first)."""
        lines = [ln for ln in self.text().splitlines() if "assigned input partitions" in ln]
        return lines[-1].split("assigned input partitions ")[1].split(";")[0] if lines else ""


def own_outputs(settings: DriftlineSettings, *, inputs: bool = False) -> DriftlineSettings:
    """``settings`` with output topics of its own (``inputs``: input topics too; models topic shared)."""
    run = uuid.uuid4().hex[:8]
    keep = ("models",) if inputs else ("predictions", "labels", "models")
    names = {k: v if k in keep else f"{v}.{run}" for k, v in settings.topics.model_dump().items()}
    return settings.model_copy(update={"topics": Topics(**names)})


@dataclass
class Run:
    """The processors of one scenario: a consumer group, a checkpoint directory and output topics of
    its own. A processor that exits by itself is a crash: noted, and started again as a supervisor
    would, so a crash loop shows as a growing :attr:`crashes` (and as :meth:`wait`'s timeout)."""

    name: str
    settings: DriftlineSettings
    stream: Stream
    ends: dict[tuple[str, int], int]
    dir: Path
    options: Mapping[str, object] = field(default_factory=lambda: dict(OPTIONS))  # of driftline process
    timeout: float = 300.0
    group: str = field(default_factory=lambda: f"faults-{uuid.uuid4().hex[:8]}")
    started: int = 0
    crashes: list[str] = field(default_factory=list)
    procs: list[Processor] = field(default_factory=list)  # every one started, for close()
    points: list[str] = field(default_factory=list)  # where the faults hit (progress at the time)

    def __post_init__(self) -> None:
        self.state = self.dir / "state"
        self.state.mkdir(parents=True)
        prepare_kafka(self.settings)  # the output topics exist before the watch reads them
        self.watch = ScoredWatch(self.settings)

    def start(self, slot: int = 0) -> Processor:
        """A processor in instance slot ``slot`` (its transactional id)."""
        self.started += 1
        logfile = self.dir / f"process-{self.started}.log"
        self.procs.append(Processor(self.settings, self.group, self.state, logfile, self.options, slot))
        return self.procs[-1]

    def progress(self) -> float:
        """The share of the stream's labelled predictions scored so far (distinct ids)."""
        return self.watch.distinct / len(self.stream.labelled)

    def wait(
        self, cond: Callable[[], bool], what: str, procs: list[Processor], interval: float = 0.02
    ) -> None:
        """Wait for ``cond``; ``procs`` that exit meanwhile are noted as crashes and started again."""
        deadline = time.monotonic() + self.timeout
        while not cond():
            for k, p in enumerate(procs):
                if not p.alive():
                    self.crashes.append(f"exit {p.proc.returncode}: {p.last_words()}")
                    procs[k] = self.start(k)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: no {what} after {self.timeout:.0f} s (logs in {self.dir})")
            time.sleep(interval)

    def kill_at(self, target: float, procs: list[Processor], k: int = 0) -> None:
        """SIGKILL ``procs[k]`` once ``target`` of the stream is scored, and start it again."""
        self.wait(lambda: self.progress() >= target, f"progress {target:.0%}", procs)
        procs[k].kill()
        self.points.append(f"{self.progress():.0%}")
        procs[k] = self.start(k)

    def finish(self, procs: list[Processor]) -> Outputs:
        """Run until every input offset is committed and every labelled prediction scored (the last
        labels wait in the core for a later prediction until the inputs have been idle for a while: the
        idle drain), stop cleanly (a non-zero exit is a crash), and read the outputs."""

        def done() -> bool:  # assigned: a started one has its SIGTERM handler, and a stop is clean
            ready = all(p.assigned() for p in procs) and self.progress() >= 1.0
            return ready and caught_up(self.settings, self.group, self.state, self.ends)

        self.wait(done, "catch-up", procs, interval=0.5)
        for p in procs:
            if (rc := p.stop()) != 0:
                self.crashes.append(f"clean stop exited {rc}: {p.last_words()}")
        self.close()
        return collect(self.settings)

    def close(self) -> None:
        """Kill what still runs (a run that failed half-way leaves no process behind)."""
        for p in self.procs:
            p.kill()
        self.watch.close()


class ScoredWatch:
    """A thread reading the scored topic from the start (no group): the distinct prediction ids so far."""

    def __init__(self, settings: DriftlineSettings) -> None:
        assert settings.kafka is not None
        self._c = Consumer(
            {**settings.kafka.client_config(), "group.id": "driftline-faults-watch", "fetch.wait.max.ms": 20}
        )
        topic = settings.topics.scored
        parts = self._c.list_topics(topic, timeout=10).topics[topic].partitions
        self._c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        self.ids: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for m in self._c.consume(500, timeout=0.05):
                if m.error() is None:
                    self.ids.add(decode(Scored, m.value()).prediction.prediction_id)

    @property
    def distinct(self) -> int:
        return len(self.ids)

    def close(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join(10)
            self._c.close()
