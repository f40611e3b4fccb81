"""Throughput of the data plane: the processor core in process, and on Kafka next to a raw consumer.

    python benchmarks/pipeline.py [--events 200000] [--bootstrap HOST:PORT] [--json]

Measures, in one run, on the same generated stream (prediction ~350 B with 8 features, and its label):
  core      ProcessorCore.process on 5,000-record batches in process (decode, join, drift, metrics)
  raw       a bare confluent-kafka consume(num_messages=1000) loop reading both topics (no decoding)
  pipeline  the Kafka runner (driftline process): consume, core, produce outputs, commit
and prints events/s (median of --repeat runs) and the pipeline / raw ratio. Without --bootstrap a local
broker is started with .ci/kafka_local.py (assembled jars needed) and stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _broker import broker  # noqa: E402  (benchmarks/ is the script's own directory)

from driftline.config import DriftlineSettings, KafkaSettings, MonitorSettings, Topics  # noqa: E402
from driftline.contracts import Label, Prediction, encode  # noqa: E402
from driftline.transport import Record  # noqa: E402


def make_stream(n: int, seed: int = 0) -> list[tuple[str, bytes]]:
    """(kind, bytes) with each label 200 events behind its prediction."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    score = rng.random(n)
    preds, labels = [], []
    for i in range(n):
        f: dict[str, float | str | None] = {f"x{k}": float(x[i, k]) for k in range(6)}
        f["plan"], f["region"] = "abc"[i % 3], "nsew"[i % 4]
        p = Prediction(
            prediction_id=f"p{i}",
            model="m",
            model_version="1",
            event_time=i * 0.01,
            features=f,
            prediction=int(score[i] > 0.5),
            score=float(score[i]),
        )
        preds.append(encode(p))
        labels.append(encode(Label(prediction_id=f"p{i}", model="m", event_time=i * 0.01 + 2, label=i % 2)))
    out: list[tuple[str, bytes]] = []
    for i in range(n):
        out.append(("p", preds[i]))
        if i >= 200:
            out.append(("l", labels[i - 200]))
    out += [("l", v) for v in labels[n - 200 :]]
    return out


def bench_core(stream: list[tuple[str, bytes]], repeat: int) -> float:
    from stream_processors.core.processor import ProcessorCore

    t = Topics()
    recs = [Record(topic=t.predictions if k == "p" else t.labels, value=v, key=b"m") for k, v in stream]
    rates = []
    for _ in range(repeat):
        core = ProcessorCore(MonitorSettings(), t)
        start = time.perf_counter()
        for a in range(0, len(recs), 5000):
            core.process(recs[a : a + 5000])
        rates.append(len(recs) / (time.perf_counter() - start))
    return statistics.median(rates)


def bench_kafka(stream: list[tuple[str, bytes]], bootstrap: str, repeat: int) -> tuple[float, float]:
    from confluent_kafka import Consumer

    from driftline.app.services import announce_on_kafka, prepare_kafka, run_processor
    from driftline.kafka import KafkaSink

    run = uuid.uuid4().hex[:8]
    topics = Topics(**{k: f"{v}.bench{run}" for k, v in Topics().model_dump().items()})
    settings = DriftlineSettings(
        kafka=KafkaSettings(bootstrap_servers=bootstrap, partitions=1), topics=topics
    )
    prepare_kafka(settings)
    announce_on_kafka(settings, "m", "1")  # else the processor dead-letters every prediction
    sink = KafkaSink(settings.kafka, block=True)  # type: ignore[arg-type]
    for kind, v in stream:
        sink.send(topics.predictions if kind == "p" else topics.labels, b"m", v)
    sink.flush(60)
    n = len(stream)

    def raw_once() -> float:
        c = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"raw-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "fetch.queue.backoff.ms": 50,
            }
        )
        c.subscribe([topics.predictions, topics.labels])
        seen, start = 0, None
        deadline = time.monotonic() + 300
        while seen < n and time.monotonic() < deadline:
            msgs = c.consume(num_messages=1000, timeout=1.0)
            if msgs and start is None:
                start = time.perf_counter()
            seen += sum(1 for m in msgs if m.error() is None)
        dt = time.perf_counter() - (start or time.perf_counter())
        c.close()
        return n / dt

    def pipeline_once() -> float:
        from driftline.kafka import KafkaSource

        group = f"bench-{uuid.uuid4().hex[:8]}"
        done = threading.Event()
        counted = {"n": 0, "start": 0.0}
        orig_poll = KafkaSource.poll

        def poll(self, max_records: int, timeout: float = 0.0):  # count what the runner reads
            recs = orig_poll(self, max_records, timeout)
            if recs and not counted["start"]:
                counted["start"] = time.perf_counter()
            counted["n"] += len(recs)
            if counted["n"] >= n:
                done.set()
            return recs

        KafkaSource.poll = poll  # type: ignore[method-assign]
        try:
            th = threading.Thread(target=run_processor, args=(settings, done.is_set), kwargs={"group": group})
            th.start()
            th.join(600)
            if counted["n"] < n:
                raise RuntimeError(f"the pipeline read {counted['n']} of {n} records")
        finally:
            KafkaSource.poll = orig_poll  # type: ignore[method-assign]
        return n / (time.perf_counter() - counted["start"])

    raw = statistics.median(raw_once() for _ in range(repeat))
    pipe = statistics.median(pipeline_once() for _ in range(repeat))
    return raw, pipe


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000, help="predictions (as many labels follow)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--bootstrap", default=None)
    ap.add_argument("--no-kafka", action="store_true", help="only the in-process core")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    stream = make_stream(args.events)
    result: dict[str, float | int | str] = {"events": len(stream), "repeat": args.repeat}
    result["core_events_per_s"] = round(bench_core(stream, args.repeat))
    if not args.no_kafka:
        with broker(args.bootstrap) as (bootstrap, _):
            raw, pipe = bench_kafka(stream, bootstrap, args.repeat)
        result.update(
            raw_consumer_events_per_s=round(raw),
            pipeline_events_per_s=round(pipe),
            pipeline_vs_raw=round(pipe / raw, 3),
        )
    print(f"{'measure':<28}{'events/s':>14}")
    for key in ("core_events_per_s", "raw_consumer_events_per_s", "pipeline_events_per_s"):
        if key in result:
            print(f"{key:<28}{result[key]:>14,}")
    if "pipeline_vs_raw" in result:
        print(f"{'pipeline / raw consumer':<28}{result['pipeline_vs_raw']:>14}")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
