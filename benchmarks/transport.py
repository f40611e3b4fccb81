"""Transport throughput on a real Kafka broker: raw batched consume, + JSON decoding, and a faust agent.

    python benchmarks/transport.py                       # starts a local broker (.ci/kafka_local.py)
    python benchmarks/transport.py --bootstrap 127.0.0.1:9092 --events 100000 --json

Produces N prediction-like JSON events (~260 B) to a fresh topic, then reads them back with
(a) confluent-kafka ``consume(num_messages=1000)``, (b) the same plus decoding (orjson, and msgspec
into the typed ``Prediction`` contract), medians of ``--repeat`` runs; (c) one faust-streaming agent
(JSON values, one event at a time), one run bounded by ``--faust-timeout``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

from _broker import broker  # benchmarks/ is the script's own directory
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

Row = tuple[str, float, float | None, int]  # stage, events/s, seconds to the first event, runs
CONSUMER_DEFAULTS = {
    "enable.auto.commit": False,
    "fetch.queue.backoff.ms": 20,  # librdkafka's 1000 ms default stalls a consumer slower than its fetcher
}


def make_events(n: int, seed: int = 7) -> list[tuple[bytes, bytes]]:
    rng = random.Random(seed)
    models = [f"model-{m}" for m in range(8)]
    t0 = 1_790_000_000.0
    out = []
    for i in range(n):
        model = models[i % len(models)]
        score = rng.random()
        event = {
            "prediction_id": f"p-{i:010d}",
            "model": model,
            "model_version": "3",
            "event_time": t0 + i * 0.001,
            "features": {f"f{j}": round(rng.gauss(0.0, 1.0), 6) for j in range(8)},
            "prediction": int(score > 0.5),
            "score": round(score, 6),
        }
        out.append((model.encode(), json.dumps(event, separators=(",", ":")).encode()))
    return out


def produce(bootstrap: str, topic: str, events: list[tuple[bytes, bytes]]) -> float:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "linger.ms": 20,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    t0 = time.perf_counter()
    for key, value in events:
        while True:
            try:
                producer.produce(topic, value, key)
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(120) != 0:
        raise RuntimeError("producer could not deliver every event in 120 s")
    return len(events) / (time.perf_counter() - t0)


def consume_rate(
    bootstrap: str, topic: str, partitions: int, n: int, decode: Callable[[bytes], Any] | None
) -> tuple[float, float]:
    """Return (events/s from the first batch to the last, seconds until the first batch)."""
    consumer = Consumer(
        {**CONSUMER_DEFAULTS, "bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex}"}
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    seen, first_n, t_first = 0, 0, 0.0
    t0 = time.perf_counter()
    deadline = t0 + 120
    try:
        while seen < n and time.perf_counter() < deadline:
            batch = consumer.consume(num_messages=1000, timeout=1.0)
            if decode is None:
                for msg in batch:
                    if msg.error() is None:
                        seen += 1
            else:
                for msg in batch:
                    if msg.error() is None:
                        decode(msg.value())
                        seen += 1
            if not first_n and seen:
                first_n, t_first = seen, time.perf_counter()
        t_last = time.perf_counter()
    finally:
        consumer.close()
    if seen < n:
        raise RuntimeError(f"consumed only {seen} of {n} events in 120 s")
    return (seen - first_n) / max(t_last - t_first, 1e-9), t_first - t0


def faust_rate(
    bootstrap: str, topic: str, partitions: int, n: int, timeout: float
) -> tuple[float, float, int]:
    """Return (events/s from the first event to the last, s from app.start() to the first, events seen)."""
    import faust

    logging.getLogger("faust").setLevel(logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)

    async def run() -> tuple[float, float, int]:
        with tempfile.TemporaryDirectory() as datadir:
            app = faust.App(
                f"bench-{uuid.uuid4().hex[:8]}",
                broker=f"kafka://{bootstrap}",
                datadir=datadir,
                web_enabled=False,
                store="memory://",
                topic_partitions=partitions,
                topic_replication_factor=1,
            )
            source = app.topic(topic, value_serializer="json", partitions=partitions)
            seen = {"n": 0, "first": 0.0, "last": 0.0}

            @app.agent(source)
            async def count(stream: Any) -> None:
                async for _event in stream:
                    if seen["n"] == 0:
                        seen["first"] = time.perf_counter()
                    seen["n"] += 1
                    seen["last"] = time.perf_counter()

            t0 = time.perf_counter()
            await app.start()
            try:
                while seen["n"] < n and time.perf_counter() - t0 < timeout:
                    await asyncio.sleep(0.1)
            finally:
                await asyncio.wait_for(app.stop(), timeout=30)
            span = max(seen["last"] - seen["first"], 1e-9)
            return (seen["n"] - 1) / span, seen["first"] - t0, seen["n"]

    return asyncio.run(run())


def _decoders() -> dict[str, Callable[[bytes], Any]]:
    out: dict[str, Callable[[bytes], Any]] = {}
    try:
        import orjson

        out["orjson.loads"] = orjson.loads
    except ImportError:
        pass
    try:
        import msgspec

        try:
            from driftline.contracts import Prediction

            out["msgspec.json (typed Prediction)"] = msgspec.json.Decoder(Prediction).decode
        except ImportError:
            out["msgspec.json (untyped)"] = msgspec.json.Decoder().decode
    except ImportError:
        pass
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument(
        "--repeat", type=int, default=3, help="repetitions of (a) and (b); the median is reported"
    )
    ap.add_argument("--faust-timeout", type=float, default=120.0)
    ap.add_argument("--bootstrap", help="use this broker instead of starting a local one")
    ap.add_argument("--json", action="store_true", help="also print one JSON line with the results")
    args = ap.parse_args(argv)

    with broker(args.bootstrap) as (bootstrap, version):
        rows, results = run(bootstrap, args)

    print(
        f"\n{version} at {bootstrap}; {args.events:,} events, avg {results['event_bytes']} B, "
        f"{args.partitions} partition(s)"
    )
    print(f"{'stage':40} {'events/s':>10} {'1st event':>10}  runs")
    for name, rate, first, runs in rows:
        first_s = "" if first is None else f"{first:.2f} s"
        print(f"{name:40} {rate:>10,.0f} {first_s:>10}  {runs}")
    print("events/s: first event to last (median of runs); 1st event: time to the first batch")
    if args.json:
        print(json.dumps({**results, "bootstrap": bootstrap, "broker": version}))
    return 0


def run(bootstrap: str, args: argparse.Namespace) -> tuple[list[Row], dict[str, Any]]:
    topic = f"bench.predictions.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, args.partitions, 1)])[topic].result(timeout=30)
    events = make_events(args.events)
    size = round(sum(len(v) for _, v in events) / len(events))
    rows: list[Row] = [("produce (idempotent, linger 20 ms)", produce(bootstrap, topic, events), None, 1)]
    del events
    stages: list[tuple[str, Callable[[bytes], Any] | None]] = [("(a) consume(num_messages=1000)", None)]
    stages += [(f"(b) + {name}", fn) for name, fn in _decoders().items()]
    for name, fn in stages:
        runs = [consume_rate(bootstrap, topic, args.partitions, args.events, fn) for _ in range(args.repeat)]
        rate = statistics.median(r for r, _ in runs)
        rows.append((name, rate, statistics.median(f for _, f in runs), args.repeat))
    rate, first, seen = faust_rate(bootstrap, topic, args.partitions, args.events, args.faust_timeout)
    label = "(c) faust agent (json values)" + ("" if seen >= args.events else f" [{seen:,} in time]")
    rows.append((label, rate, first, 1))
    results = {
        "events": args.events,
        "event_bytes": size,
        "partitions": args.partitions,
        "rates": {name: round(r) for name, r, _, _ in rows},
        "first_event_s": {name: round(f, 3) for name, _, f, _ in rows if f is not None},
        "faust_events_seen": seen,
    }
    admin.delete_topics([topic])
    return rows, results


if __name__ == "__main__":
    sys.exit(main())
