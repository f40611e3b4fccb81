"""The runners keep the core's announcements current: the Kafka runner reads the models topic after
polling a batch and before processing it (a fake consumer and a fake table, no broker); the embedded
loop with 50 invented versions interleaved in its stream gives the same alerts as without them."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass

import msgspec
import numpy as np
import pytest
from events import record

from driftline.app.demo import EmbeddedLoop
from driftline.config import DriftlineSettings, MonitorSettings, Topics
from driftline.contracts import Alert, DeadLetter, ModelUpdate, Prediction, decode, encode
from driftline.errors import DriftlineError
from driftline.kafka import RebalanceListener
from driftline.transport import InMemoryBus, Record
from producers.simulator import Scenario
from stream_processors.core.announcements import Announcements
from stream_processors.core.processor import ProcessorCore
from stream_processors.runners.announced import SourceTable
from stream_processors.runners.exceptions import RunnerFailed
from stream_processors.runners.kafka import KafkaRunner

TOPICS = Topics()


def announcement(version: str, model: str = "m", offset: int = 0) -> Record:
    update = ModelUpdate(
        model=model, version=version, kind="registered", previous_version=None, artifact_uri=""
    )
    return Record(TOPICS.models, encode(update), model.encode(), 0, offset)


class Consumer:
    """One input partition whose log the test appends to, as producers would."""

    def __init__(self, journal: list[str]) -> None:
        self.log: list[Record] = []
        self.journal = journal
        self.read = 0
        self.listener: RebalanceListener | None = None
        self.committed: dict[tuple[str, int], int] = {}

    def produce(self, records: list[Record]) -> None:
        self.log += [msgspec.structs.replace(r, offset=len(self.log) + k) for k, r in enumerate(records)]

    def listen(self, listener: RebalanceListener) -> None:
        self.listener = listener

    def poll(self, max_records: int, timeout: float = 0.0) -> list[Record]:
        self.journal.append("poll")
        batch = self.log[self.read : self.read + max_records]
        self.read += len(batch)
        return batch

    def commit(self, offsets: Mapping[tuple[str, int], int] | None = None) -> None:
        self.committed.update(offsets or {})

    def close(self) -> None:
        if self.listener is not None:
            self.listener.on_revoke([0])


class Table:
    """The models topic: :meth:`catch_up` returns what was appended since its last call."""

    def __init__(self, journal: list[str], *records: Record) -> None:
        self.records, self.read, self.journal = list(records), 0, journal
        self.down = False
        self.closed = False

    def catch_up(self) -> list[Record]:
        self.journal.append("catch_up")
        if self.down:
            raise DriftlineError("could not read the models topic: is the broker reachable?")
        new = self.records[self.read :]
        self.read = len(self.records)
        return new

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def kafka_runner(sink, journal):
    def make(table: Table) -> tuple[KafkaRunner, Consumer]:
        consumer = Consumer(journal)
        core = ProcessorCore(MonitorSettings(), TOPICS, announcements=Announcements(TOPICS.models))
        process = core.process
        core.process = lambda records: (journal.append("process"), process(records))[1]  # type: ignore[method-assign]
        runner = KafkaRunner(core, consumer, sink, batch_size=100, commit_interval=0.0, announcements=table)
        assert consumer.listener is not None
        consumer.listener.on_assign([0])
        return runner, consumer

    return make


def dead(sink) -> list[DeadLetter]:
    return [decode(DeadLetter, v) for t, _, v, _ in sink.sent if t == TOPICS.dlq]


def test_an_announcement_made_before_its_predictions_is_read_before_they_are_processed(
    kafka_runner, sink, journal, make_prediction
) -> None:
    table = Table(journal, announcement("1"))
    runner, consumer = kafka_runner(table)
    consumer.produce([record(make_prediction(i)) for i in range(10)])
    runner.run_once()
    # a retrain: version 2 is announced, then serving's predictions for it are produced
    table.records.append(announcement("2", offset=1))
    consumer.produce([record(make_prediction(i, version="2")) for i in range(10, 20)])
    journal.clear()
    runner.run_once()
    assert journal[:3] == ["poll", "process", "catch_up"]  # the core asks, meeting version 2
    assert dead(sink) == [] and list(runner.core.models["m"].versions) == ["1", "2"]
    assert runner.core.models["m"].n_predictions == 20


def test_a_batch_of_announced_versions_does_not_read_the_table(
    kafka_runner, journal, make_prediction
) -> None:
    """The models topic is read when a batch needs it, not on every batch (each read asks the broker
    for the topic's end: a round trip)."""
    table = Table(journal, announcement("1"))
    runner, consumer = kafka_runner(table)
    for start in (0, 10, 20):
        consumer.produce([record(make_prediction(i)) for i in range(start, start + 10)])
        runner.run_once()
    assert journal.count("catch_up") == 1 and journal.count("process") == 3
    assert runner.core.models["m"].n_predictions == 30


def test_an_announcement_after_the_batch_comes_too_late_for_it(
    kafka_runner, sink, journal, make_prediction
) -> None:
    """The order matters: predictions processed before their version was announced are dead letters
    (with the reason); once it is announced, the next ones are monitored."""
    table = Table(journal, announcement("1"))
    runner, consumer = kafka_runner(table)
    consumer.produce([record(make_prediction(i, version="3")) for i in range(5)])
    runner.run_once()
    table.records.append(announcement("3", offset=1))
    consumer.produce([record(make_prediction(i, version="3")) for i in range(5, 10)])
    runner.run_once()
    letters = dead(sink)
    assert [decode(Prediction, d.original).prediction_id for d in letters] == [f"m-{i}" for i in range(5)]
    assert all("driftline models announce m 3" in d.reason and d.stage == "validate" for d in letters)
    assert runner.core.models["m"].n_predictions == 5


def test_run_reads_the_table_before_the_first_poll_and_closes_it(kafka_runner, journal) -> None:
    table = Table(journal, announcement("1"))
    runner, _ = kafka_runner(table)
    journal.clear()
    polls = iter([False, True])
    runner.run(lambda: next(polls))
    assert journal[:2] == ["catch_up", "poll"] and table.closed
    assert runner.core.announcements is not None and runner.core.announcements.check("m", "1") is None


def test_no_records_no_table_read(kafka_runner, journal) -> None:
    runner, _ = kafka_runner(Table(journal))
    journal.clear()
    assert runner.run_once() == 0
    assert "catch_up" not in journal


def test_an_unreadable_table_stops_the_runner_before_processing(
    kafka_runner, sink, journal, make_prediction
) -> None:
    table = Table(journal, announcement("1"))
    runner, consumer = kafka_runner(table)
    table.down = True
    consumer.produce([record(make_prediction(i)) for i in range(10)])
    with pytest.raises(DriftlineError, match="models topic"):
        runner.run_once()
    assert runner.core.models == {} and runner.core.records_seen == 0  # the core changed nothing
    assert sink.sent == [] and consumer.committed == {}
    with pytest.raises(RunnerFailed):
        runner.checkpoint()  # a restart resumes from the last checkpoint instead
    runner.close()
    assert table.closed


def test_source_table_reads_the_whole_topic_every_time_it_is_opened() -> None:
    bus = InMemoryBus()
    for k in range(3):
        bus.append(TOPICS.models, b"m", announcement(str(k)).value, None)
    first = SourceTable(bus.source([TOPICS.models], "processor-announcements"), batch=2)
    assert len(first.catch_up()) == 3 and first.catch_up() == []
    bus.append(TOPICS.models, b"m", announcement("3").value, None)
    assert len(first.catch_up()) == 1
    again = SourceTable(bus.source([TOPICS.models], "processor-announcements"))  # a restart
    assert len(again.catch_up()) == 4


# -- the embedded loop: 50 invented versions interleaved in the demo's stream -----------------------
SCENARIO = Scenario(n_events=12_000, covariate_shift_at=4_000, concept_change_at=7_000, seed=7)
INVENTED = [f"v{x:x}" for x in np.random.default_rng(3).integers(1 << 40, size=50)]


@dataclass
class Run:
    alerts: list[Alert]
    dead: list[DeadLetter]
    invented: list[bytes]  # the invented predictions, as sent
    scored: int
    live_states: int  # distinct state objects version 1 had: 1 unless it was evicted and begun again
    versions: list[str]  # versions with state at the end


def run_loop(*, invent: bool, require_announcement: bool = True) -> Run:
    """The embedded closed loop; with ``invent``, every 1000th prediction is followed by 5 copies
    under invented versions (a burst: more than ``max_versions`` between two batches)."""
    settings = DriftlineSettings(monitor=MonitorSettings(require_announcement=require_announcement))
    loop = EmbeddedLoop(SCENARIO, settings, tempfile.mkdtemp(prefix="driftline-test-"), lambda line: None)
    todo, sent, seen = list(INVENTED) if invent else [], [], [0]
    emit = loop.client.emit

    def emit_and_invent(event):  # type: ignore[no-untyped-def]
        ok = emit(event)
        if isinstance(event, Prediction):
            seen[0] += 1
            while todo and seen[0] % 1000 == 0 and len(sent) < 5 * (seen[0] // 1000):
                v = todo.pop(0)
                fake = msgspec.structs.replace(
                    event, prediction_id=f"{event.prediction_id}-{v}", model_version=v
                )
                sent.append(encode(fake))
                emit(fake)
        return ok

    loop.client.emit = emit_and_invent  # type: ignore[method-assign]
    states: set[int] = set()
    run_once = loop.processor.run_once

    def run_once_and_watch(timeout: float = 0.0) -> int:
        n = run_once(timeout)
        monitor = loop.processor.core.models.get(SCENARIO.model)
        if monitor is not None and "1" in monitor.versions:
            states.add(id(monitor.versions["1"]))
        return n

    loop.processor.run_once = run_once_and_watch  # type: ignore[method-assign]
    loop.run(500)
    assert not todo
    log = loop.bus.log
    return Run(
        alerts=[decode(Alert, r.value) for r in log(settings.topics.alerts)],
        dead=[decode(DeadLetter, r.value) for r in log(settings.topics.dlq)],
        invented=sent,
        scored=len(log(settings.topics.scored)),
        live_states=len(states),
        versions=list(loop.processor.core.models[SCENARIO.model].versions),
    )


@pytest.fixture(scope="module")
def clean() -> Run:
    return run_loop(invent=False)


def summary(alerts: list[Alert]) -> list[tuple[str, str, str | None, int, str]]:
    return [(a.type, a.model_version, a.feature, a.detected_at_index, a.alert_id) for a in alerts]


def test_invented_versions_are_dead_letters_and_change_nothing(clean: Run) -> None:
    run = run_loop(invent=True)
    assert len(run.invented) == 50 and clean.dead == []
    assert sorted(d.original for d in run.dead) == sorted(run.invented)  # every one, nothing else
    for d in run.dead:
        v = decode(Prediction, d.original).model_version
        assert d.stage == "validate" and f"`driftline models announce churn {v}`" in d.reason
    # the live version's alerts -- concept drift and performance among them -- are the clean run's
    assert {"concept_drift", "performance"} <= {a.type for a in clean.alerts if a.model_version == "1"}
    assert summary(run.alerts) == summary(clean.alerts)
    assert run.scored == clean.scored
    # eviction never touched the live version: one state for it all along; no invented version has any
    assert run.live_states == clean.live_states == 1
    assert run.versions == clean.versions == ["1", "2"]  # the bootstrap version and the retrained one


def test_opting_out_accepts_every_version_and_the_live_state_can_be_evicted(clean: Run) -> None:
    """``monitor.require_announcement=false``: today's behaviour, and the risk the README names."""
    run = run_loop(invent=True, require_announcement=False)
    assert run.dead == []  # every invented version accepted
    assert run.live_states > 1  # version 1's state was evicted (max_versions=4) and begun again
    assert summary(run.alerts) != summary(clean.alerts)
