"""The Kafka measures of `driftline bench pipeline`: load a stream, read it raw (with and without
decoding), and run `driftline process` (:func:`driftline.app.services.run_processor`, checkpoints on,
exactly-once) in forked processes, one per instance, until every input record was read.

Each processor run writes to output topics of its own, so its scored and alert counts are its own:
:func:`count` reads them back (``read_committed``) after the run, outside the timing.
"""

from __future__ import annotations

import multiprocessing
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from memory import rss_mb
from pipeline_stream import LABEL, PREDICTION, Stream

from driftline.config import DriftlineSettings, KafkaSettings, Topics
from driftline.contracts import Label, Prediction, decode

INPUTS = ("predictions", "labels", "models")


def case_settings(bootstrap: str, partitions: int, run: str | None = None) -> DriftlineSettings:
    """Topics of their own for one case (``run``: the inputs' tag; outputs get a fresh tag)."""
    tag = run or uuid.uuid4().hex[:8]
    names = {k: f"{v}.bench{tag}" for k, v in Topics().model_dump().items()}
    return DriftlineSettings(
        kafka=KafkaSettings(bootstrap_servers=bootstrap, partitions=partitions), topics=Topics(**names)
    )


def fresh_outputs(settings: DriftlineSettings) -> DriftlineSettings:
    """The same inputs (predictions, labels, models), new output topics (created): one run's own."""
    from driftline.app.services import prepare_kafka

    tag = uuid.uuid4().hex[:8]
    names = {k: (v if k in INPUTS else f"{v}.{tag}") for k, v in settings.topics.model_dump().items()}
    run = settings.model_copy(update={"topics": Topics(**names)})
    prepare_kafka(run)
    _wait_for_topics(run, [v for k, v in names.items() if k not in INPUTS])
    return run


def _wait_for_topics(settings: DriftlineSettings, topics: list[str], timeout: float = 30.0) -> None:
    """Until the broker's metadata shows every topic with a leader for each partition: a producer
    that sends right after the topic's creation may otherwise be told it does not exist."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        meta = admin.list_topics(timeout=5).topics
        if all(
            t in meta and meta[t].partitions and all(p.leader >= 0 for p in meta[t].partitions.values())
            for t in topics
        ):
            return
        time.sleep(0.1)
    raise RuntimeError(f"topics {topics} not ready after {timeout:.0f} s")


def producer(bootstrap: str, **extra: Any) -> Any:
    from confluent_kafka import Producer

    conf = {"bootstrap.servers": bootstrap, "linger.ms": 20, "compression.type": "lz4"}
    return Producer({**conf, **extra})


def load(settings: DriftlineSettings, parts: Iterable[Stream], models: int) -> tuple[int, int, int]:
    """Create the case's topics, announce its models, produce the stream; (events, predictions, labels)."""
    from driftline.app.services import announce_on_kafka, prepare_kafka

    prepare_kafka(settings)
    for j in range(models):
        announce_on_kafka(settings, f"m{j}", "1")
    topics = settings.topics
    failed: list[str] = []  # a record the broker refused (e.g. a timestamp too far ahead) fails the run
    report = lambda err, _msg: failed.append(str(err)) if err is not None else None  # noqa: E731
    p = producer(settings.kafka.bootstrap_servers, on_delivery=report)
    n = preds = labels = 0
    for part in parts:
        for kind, key, value, t in part.events:
            topic = topics.predictions if kind == PREDICTION else topics.labels
            while True:
                try:
                    p.produce(topic, value, key, timestamp=int(t * 1000))
                    break
                except BufferError:
                    p.poll(0.05)
        p.poll(0)
        n += len(part.events)
        preds, labels = preds + part.predictions, labels + part.labels
    if p.flush(120) or failed:
        refused = f"{len(failed)} refused: {failed[:1]}"
        raise RuntimeError(f"the stream was not all delivered to the broker ({refused})")
    return n, preds, labels


def raw_consume(settings: DriftlineSettings, n: int, decoded: bool = False) -> float:
    """Events/s of a bare consumer-group member reading both input topics (``decoded``: and decoding
    each record into its typed event, as the processor must)."""
    from confluent_kafka import Consumer

    c = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"raw-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.queue.backoff.ms": 50,
        }
    )
    t_pred = settings.topics.predictions
    c.subscribe([t_pred, settings.topics.labels])
    seen, start = 0, 0.0
    deadline = time.monotonic() + 300
    while seen < n and time.monotonic() < deadline:
        msgs = c.consume(num_messages=min(5000, n - seen), timeout=1.0)
        if msgs and not start:
            start = time.perf_counter()
        for m in msgs:
            if m.error() is None:
                seen += 1
                if decoded:
                    decode(Prediction if m.topic() == t_pred else Label, m.value())
    rate = seen / (time.perf_counter() - start)
    c.close()
    if seen < n:
        raise RuntimeError(f"the raw consumer read {seen} of {n} records")
    return rate


@dataclass
class ProcessRun:
    rate: float  # input events per second, from the first batch read to the last instance's close
    tail_s: float  # of that time, seconds after every input offset was read: the last batches, the
    # last transaction, the final snapshot, the consumers' close (a fixed cost a short run weighs)
    rss_start_mb: list[float]  # per instance, at its first batch
    rss_end_mb: list[float]  # per instance, once it closed
    rss_trace: list[list[tuple[int, float]]]  # per instance: (records read, RSS MB), every tenth of the run
    counts: list[dict[str, int]]  # per instance: records, rewinds and join counts (see _counts)


def _instance(settings: DriftlineSettings, n: int, k: int, group: str, state: str, shared: Any) -> None:
    """One processor instance (a forked process): runs until the instances together have read every
    input offset below ``n`` records in all. Offsets, not records read, are counted: a partition that
    moves to another instance may be replayed there from its snapshot (exactly-once) and read twice."""
    from confluent_kafka import TopicPartition

    from driftline.app.services import run_processor
    from driftline.kafka import KafkaSource
    from stream_processors.runners.kafka import KafkaRunner

    ends, first, results, halt = shared
    parts, t_pred = len(ends) // 2, settings.topics.predictions
    inputs = (t_pred, settings.topics.labels)
    orig = KafkaSource.poll
    trace: list[tuple[int, float]] = []  # (records read, RSS MB): at the first batch, then every n / 10
    read = [0]

    def slot(topic: str, partition: int) -> int:
        """The place of an input (topic, partition) in ``ends``: predictions first, then labels."""
        return partition if topic == t_pred else parts + partition

    # every input (topic, partition): the consumer's position of one it is not assigned reads -1001
    everywhere = [TopicPartition(t, p) for t in inputs for p in range(parts)]

    def poll(self: KafkaSource, max_records: int, timeout: float = 0.0) -> list[Any]:
        recs = orig(self, max_records, timeout)
        if recs:
            # the consumer's positions (the next offset past what it handed out), asked once a batch:
            # the measure must not cost what it measures (a pass over the records took ~2% of the run;
            # asking for the assignment first, 0.6 ms a batch, ~1.5%: 0.04 ms without)
            positions = self._c.position(everywhere)
            with ends.get_lock():
                for tp in positions:
                    if tp.offset >= 0 and tp.topic in inputs:
                        at = slot(tp.topic, tp.partition)
                        ends[at] = max(ends[at], tp.offset)
            with first.get_lock():
                if not first.value:
                    first.value = time.time()
            read[0] += len(recs)
            if not trace or read[0] >= trace[-1][0] + n // 10:
                trace.append((read[0], rss_mb()))
        return recs

    seek = KafkaSource.seek

    def seek_back(self: KafkaSource, offsets: Any) -> None:
        """A rewind (an aborted transaction): what was read past these offsets is read again, so it
        is not read yet -- else the run would stop before the replay and count its outputs lost."""
        seek(self, offsets)
        with ends.get_lock():
            for (topic, p), off in offsets.items():
                if topic in inputs:
                    at = slot(topic, p)
                    ends[at] = min(ends[at], off)

    KafkaSource.poll = poll  # type: ignore[method-assign]
    KafkaSource.seek = seek_back  # type: ignore[method-assign]
    read_all = [0.0]  # wall time this instance first saw every input offset read

    def done() -> bool:
        if sum(ends) >= n:
            read_all[0] = read_all[0] or time.time()
            return True
        return bool(halt.value)  # stopped early: no tail (read_all stays unset)

    counts: dict[str, int] = {}
    close = KafkaRunner.close

    def counted_close(self: KafkaRunner) -> None:  # the counts before close releases the partitions
        if not self.closed:
            counts.update(_counts(self))
        close(self)

    KafkaRunner.close = counted_close  # type: ignore[method-assign]
    try:
        run_processor(settings, done, group=group, state_dir=state, transactional_id=f"{group}-{k}")
    except Exception as exc:  # a failure once everything was read (at close) is reported, not fatal
        if not done():
            raise
        print(f"bench: instance {k} failed at close: {type(exc).__name__}: {exc}", file=sys.stderr)
    closed = time.time()
    results.put((closed, trace or [(0, 0.0)], rss_mb(), read_all[0] or closed, counts))


def _counts(runner: Any) -> dict[str, int]:
    """What an instance did, for a run that did not score every label to say why: the records it
    processed, its rewinds (aborted transactions) and its models' join counts, summed."""
    out = {"records": runner.processed, "rewinds": runner.rewinds}
    for mon in runner.core.models.values():
        for name, n in mon.joiner.counts.items():
            out[name] = out.get(name, 0) + n
    return out


class Processors:
    """``instances`` forked `driftline process` members of one group, until ``n`` records were read
    or :meth:`stop`; :attr:`first` is the wall time the first batch was read (0.0: not yet)."""

    def __init__(self, settings: DriftlineSettings, n: int, instances: int = 1) -> None:
        ctx = multiprocessing.get_context("fork")
        parts = settings.kafka.partitions
        self.shared = (ctx.Array("q", 2 * parts), ctx.Value("d", 0.0), ctx.Queue(), ctx.Value("i", 0))
        self._state = tempfile.TemporaryDirectory(prefix="driftline-bench-state-")
        group = f"bench-{uuid.uuid4().hex[:8]}"
        self.procs = [
            ctx.Process(
                target=_instance, args=(settings, n, k, group, self._state.name, self.shared), daemon=True
            )
            for k in range(instances)
        ]
        for pr in self.procs:
            pr.start()

    @property
    def first(self) -> float:
        return float(self.shared[1].value)

    @property
    def seen(self) -> int:
        return int(sum(self.shared[0]))

    def stop(self) -> None:
        self.shared[3].value = 1

    def _result(self, timeout: float) -> tuple[float, list[tuple[int, float]], float, float, Any]:
        """The next instance's result; an instance that died without one fails the run at once."""
        import queue

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return self.shared[2].get(timeout=1.0)  # type: ignore[no-any-return]
            except queue.Empty:
                dead = [p.exitcode for p in self.procs if p.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(f"a processor instance failed (exit codes {dead})") from None
        raise RuntimeError(f"no result from the processor instances within {timeout:.0f} s")

    def wait(self, timeout: float = 900) -> list[tuple[float, list[tuple[int, float]], float, float, Any]]:
        """(wall time closed, (records read, RSS) samples from the first batch on, RSS at the end, wall
        time every input offset had been read, its counts: see :func:`_counts`) per instance."""
        try:
            ends = [self._result(timeout) for _ in self.procs]
            for pr in self.procs:
                pr.join(60)
        finally:
            for pr in self.procs:
                if pr.is_alive():
                    pr.kill()
            self._state.cleanup()
        return ends


def process(settings: DriftlineSettings, n: int, instances: int = 1, timeout: float = 900) -> ProcessRun:
    """`driftline process` end to end, ``instances`` members of one group, until ``n`` records were read."""
    procs = Processors(settings, n, instances)
    ends = procs.wait(timeout)
    if procs.seen < n:
        raise RuntimeError(f"the processors read {procs.seen} of {n} records")
    closed = max(e[0] for e in ends)
    rate, tail = n / (closed - procs.first), closed - min(e[3] for e in ends)
    return ProcessRun(
        rate,
        tail,
        [e[1][0][1] for e in ends],
        [e[2] for e in ends],
        [e[1] for e in ends],
        [e[4] for e in ends],
    )


def count(settings: DriftlineSettings, topic: str) -> int:
    """Committed records in ``topic`` (all partitions), read from the start to the end offsets."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"count-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    deadline = time.monotonic() + 30
    meta = c.list_topics(topic, timeout=10).topics.get(topic)
    while meta is None or meta.error is not None or not meta.partitions:  # a passing metadata error:
        if time.monotonic() > deadline:  # no partitions is not "no records"
            raise RuntimeError(f"no metadata for {topic} within 30 s: {meta and meta.error}")
        time.sleep(0.2)
        meta = c.list_topics(topic, timeout=10).topics.get(topic)
    parts = [TopicPartition(topic, p, 0) for p in meta.partitions]
    ends = {tp.partition: c.get_watermark_offsets(tp, timeout=10)[1] for tp in parts}
    c.assign(parts)
    total, deadline = 0, time.monotonic() + 120
    done = {p for p, end in ends.items() if end == 0}
    while len(done) < len(parts) and time.monotonic() < deadline:
        for m in c.consume(num_messages=10_000, timeout=0.5):
            if m.error() is None:
                total += 1
                if m.offset() + 1 >= ends[m.partition()]:
                    done.add(m.partition())
        for tp in c.position(parts):
            if tp.offset >= ends[tp.partition]:
                done.add(tp.partition)
    c.close()
    return total


__all__ = [
    "LABEL",
    "ProcessRun",
    "Processors",
    "case_settings",
    "count",
    "fresh_outputs",
    "load",
    "process",
    "raw_consume",
]
