"""How long a service's request path waits for ``DriftlineClient.log_prediction``.

    python benchmarks/sdk.py                              # starts a local broker (.ci/kafka_local.py)
    python benchmarks/sdk.py --bootstrap 127.0.0.1:9092 --calls 50000 --json
    python benchmarks/sdk.py --cases dead                 # no broker needed

Times each of ``--calls`` calls (8 features, ~300 B of JSON) with ``perf_counter_ns`` and prints
p50 / p99 / max in microseconds, with the SDK's own counts of what it sent and dropped:
  live  a live local broker, the SDK's default non-blocking KafkaSink;
  dead  nothing listening (127.0.0.1:9) and a 100-message queue
        (``queue.buffering.max.messages=100``): after the first 100 calls the queue is full, so this
        is the cost of a drop -- the case a service meets when its broker goes away.
A call never waits on the network in either case; the figures show whether it waits on anything else.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _broker import broker  # noqa: E402  (benchmarks/ is the script's own directory)

from driftline.config import KafkaSettings, Topics  # noqa: E402
from driftline.kafka import KafkaSink  # noqa: E402
from driftline.kafka_admin import ensure_topics  # noqa: E402
from producers.sdk import DriftlineClient  # noqa: E402

DEAD_BROKER = "127.0.0.1:9"  # the discard port: nothing listens on it here


def make_features(n: int, seed: int = 7) -> list[dict[str, float | str]]:
    rng = random.Random(seed)
    out: list[dict[str, float | str]] = []
    for i in range(n):
        f: dict[str, float | str] = {f"x{k}": round(rng.gauss(0.0, 1.0), 6) for k in range(6)}
        f["plan"], f["region"] = "abc"[i % 3], "nsew"[i % 4]
        out.append(f)
    return out


def percentile(sorted_ns: list[int], q: float) -> float:
    """The ``q``-quantile (nearest rank) of sorted nanoseconds, in microseconds."""
    i = min(len(sorted_ns) - 1, max(0, int(round(q * len(sorted_ns))) - 1))
    return sorted_ns[i] / 1000.0


def stats_of(client: DriftlineClient) -> dict[str, Any]:
    return dict(client.stats)


def time_calls(client: DriftlineClient, features: list[dict[str, float | str]]) -> list[int]:
    times: list[int] = []
    clock = time.perf_counter_ns
    for i, f in enumerate(features):
        t0 = clock()
        client.log_prediction(f, prediction=i % 2, score=0.5)
        times.append(clock() - t0)
    return times


def run_case(name: str, make_client: Callable[[], DriftlineClient], calls: int) -> dict[str, Any]:
    features = make_features(calls)
    client = make_client()
    warm = make_features(1000, seed=1) if name == "live" else []
    time_calls(client, warm)  # the first calls connect and fetch metadata; not part of the figure
    before = stats_of(client)
    t0 = time.perf_counter()
    times = sorted(time_calls(client, features))
    elapsed = time.perf_counter() - t0
    after = stats_of(client)
    client.close()
    return {
        "case": name,
        "calls": calls,
        "p50_us": round(percentile(times, 0.50), 1),
        "p99_us": round(percentile(times, 0.99), 1),
        "max_us": round(times[-1] / 1000.0, 1),
        "calls_per_s": round(calls / elapsed),
        "sent": after["predictions"] - before["predictions"],
        "dropped": after["dropped"] - before["dropped"],
        "stats_after_close": stats_of(client),
    }


def live_client(bootstrap: str, topics: Topics) -> DriftlineClient:
    settings = KafkaSettings(bootstrap_servers=bootstrap)
    ensure_topics(settings, [topics.predictions, topics.labels], partitions=1)
    return DriftlineClient(KafkaSink(settings), model="bench", model_version="1", topics=topics)


def dead_client(topics: Topics) -> DriftlineClient:
    # librdkafka's default delivery timeout (300 s) keeps the queue full for the whole run;
    # log_level 0: its connection-refused lines are not what is measured
    conf: dict[str, Any] = {"queue.buffering.max.messages": 100, "log_level": 0}
    sink = KafkaSink(KafkaSettings(bootstrap_servers=DEAD_BROKER), **conf)
    return DriftlineClient(sink, model="bench", model_version="1", topics=topics)


def print_table(rows: list[dict[str, Any]]) -> None:
    head = ("case", "calls", "p50 µs", "p99 µs", "max µs", "calls/s", "sent", "dropped")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        cells = (r["case"], r["calls"], r["p50_us"], r["p99_us"], r["max_us"], r["calls_per_s"], r["sent"])
        print("| " + " | ".join(map(str, cells)) + f" | {r['dropped']} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=20_000, help="timed calls per case (default 20,000)")
    ap.add_argument("--cases", default="live,dead", help="comma-separated: live, dead")
    ap.add_argument("--bootstrap", help="an existing broker for the live case (else one is started)")
    ap.add_argument("--json", action="store_true", help="also print the results as one JSON line")
    args = ap.parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(cases) - {"live", "dead"})
    if unknown:
        ap.error(f"unknown cases {unknown}; valid: live, dead")
    logging.basicConfig(level=logging.CRITICAL)  # a drop's log line is not what is measured
    topics = Topics(
        predictions=f"bench-sdk-p-{uuid.uuid4().hex[:8]}", labels=f"bench-sdk-l-{uuid.uuid4().hex[:8]}"
    )
    rows: list[dict[str, Any]] = []
    described = "no broker"
    if "dead" in cases:
        rows.append(run_case("dead", lambda: dead_client(topics), args.calls))
    if "live" in cases:
        with broker(args.bootstrap) as (bootstrap, described):
            rows.append(run_case("live", lambda: live_client(bootstrap, topics), args.calls))
    rows.sort(key=lambda r: cases.index(r["case"]))
    print(f"DriftlineClient.log_prediction call latency ({described}; {args.calls:,} calls per case)")
    print_table(rows)
    if args.json:
        print(json.dumps({"broker": described, "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
