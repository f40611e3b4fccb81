"""Throughput, latency and memory of the data plane, each as a ratio to a raw consumer in the same run.

    driftline bench pipeline [--bootstrap-servers HOST:PORT] [--quick] [--json] [--no-kafka]

Per case (one model on one partition; ten models over four partitions read by two processor
instances; 8, 50 and 200 features), on the same topics, interleaved, medians of ``--repeat`` runs:
  raw        a bare confluent-kafka consumer reading both input topics (``consume(5000)``, no decoding)
  decode     the same, decoding every record into its typed event (msgspec): the per-record ceiling
  core       ProcessorCore.process on 5,000-record batches in process, outputs encoded for sending
  process    `driftline process` end to end (forked instances: consume, core, produce, checkpoints
             to a state directory, exactly-once transactions), from the first batch read until every
             instance closed; "tail s": how much of that came after every input offset was read (the
             last batches, the last transaction, the final snapshot, closing), a fixed cost per run
The stream has drift (alerts are produced and counted) and every run is checked: scored events ==
labels (every label joined; nothing lost, nothing twice). Then the latency from a label's produce to
its scored output at two fixed rates, and the processor's RSS at the start and end of a long run
(5M events; --quick: 200k). Without ``--bootstrap-servers`` a local broker is started
(.ci/kafka_local.py). ``--no-kafka``: only the in-process core (no broker).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
for path in (ROOT, HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from pipeline_stream import LABEL, Stream, chunks, make_stream  # noqa: E402

from driftline import native  # noqa: E402
from driftline.config import MonitorSettings, Topics  # noqa: E402
from driftline.transport import Record  # noqa: E402

# (name, predictions full, predictions quick, features, models, partitions, instances)
CASES = [
    ("1 model, 8 features", 150_000, 15_000, 8, 1, 1, 1),
    ("10 models, 4 partitions, 2 instances", 150_000, 40_000, 8, 10, 4, 2),
    ("1 model, 50 features", 50_000, 5_000, 50, 1, 1, 1),
    ("1 model, 200 features", 15_000, 4_000, 200, 1, 1, 1),
]
RATES = (1000.0, 5000.0)


def records(stream: Stream, topics: Topics) -> list[Record]:
    """The stream as the Kafka runner hands it to the core (timestamps: the events' own times)."""
    return [
        Record(topics.labels if kind == LABEL else topics.predictions, value, key, 0, i, t)
        for i, (kind, key, value, t) in enumerate(stream.events)
    ]


def core_once(recs: list[Record], topics: Topics, batch: int = 5000) -> tuple[float, int, int]:
    """(events/s, scored, alerts) of one fresh core over ``recs``, outputs encoded as a runner sends them."""
    from stream_processors.core.processor import ProcessorCore

    core = ProcessorCore(MonitorSettings(), topics)
    scored = alerts = sent = 0
    start = time.perf_counter()
    for a in range(0, len(recs), batch):
        out = core.process(recs[a : a + batch])
        sent += len(out.messages(topics))
        scored, alerts = scored + len(out.scored), alerts + len(out.alerts)
    return len(recs) / (time.perf_counter() - start), scored, alerts


def run_case(case: tuple[Any, ...], args: argparse.Namespace, bootstrap: str | None) -> dict[str, Any]:
    name, full, quick, features, models, partitions, instances = case
    size = int((quick if args.quick else full) * args.scale)
    stream = make_stream(size, features=features, models=models, drift_at=0.7)
    n = len(stream.events)
    row: dict[str, Any] = {"case": name, "events": n, "labels": stream.labels, "features": features}
    rates: dict[str, list[float]] = {"raw": [], "decode": [], "core": [], "process": []}
    checks: list[dict[str, int]] = []
    tails: list[float] = []  # seconds of each process run after every input offset was read
    settings = None
    if bootstrap is not None:
        import pipeline_kafka as pk

        settings = pk.case_settings(bootstrap, partitions)
        pk.load(settings, [stream], models)
    topics = settings.topics if settings is not None else Topics()
    recs = records(stream, topics)
    del stream
    for _ in range(args.repeat):  # interleaved: each round measures every variant once
        rate, scored, alerts = core_once(recs, topics)
        rates["core"].append(rate)
        checks.append({"variant": 0, "scored": scored, "alerts": alerts})
        if settings is None:
            continue
        rates["raw"].append(pk.raw_consume(settings, n))
        rates["decode"].append(pk.raw_consume(settings, n, decoded=True))
        run = pk.fresh_outputs(settings)
        proc = pk.process(run, n, instances)
        rates["process"].append(proc.rate)
        tails.append(proc.tail_s)
        check = {
            "variant": 1,
            "scored": pk.count(run, run.topics.scored),
            "alerts": pk.count(run, run.topics.alerts),
        }
        checks.append(check)
        if check["scored"] != row["labels"]:  # say why: what each instance read, joined, dead-lettered
            row.setdefault("unscored_runs", []).append(
                {**check, "dead_letters": pk.count(run, run.topics.dlq), "instances": proc.counts}
            )
    for key, values in rates.items():
        if values:
            row[key] = round(statistics.median(values))
    if tails:
        row["process_tail_s"] = round(statistics.median(tails), 2)
    if "raw" in row:
        for key in ("decode", "core", "process"):
            row[f"{key}_vs_raw"] = round(row[key] / row["raw"], 3)
    row["scored"] = sorted({c["scored"] for c in checks})
    row["alerts"] = sorted({c["alerts"] for c in checks})
    row["all_processed"] = row["scored"] == [row["labels"]]  # every label joined, once
    return row


def memory_run(bootstrap: str, args: argparse.Namespace) -> dict[str, Any]:
    """`driftline process` over one long stream (generated and produced chunk by chunk)."""
    import pipeline_kafka as pk

    predictions = 100_000 if args.quick else 2_500_000
    settings = pk.case_settings(bootstrap, 1)
    n, _, labels = pk.load(settings, chunks(predictions, features=8, models=1, seed=3), 1)
    run = pk.process(pk.fresh_outputs(settings), n)
    return {
        "events": n,
        "events_per_s": round(run.rate),
        "rss_start_mb": round(run.rss_start_mb[0], 1),
        "rss_end_mb": round(run.rss_end_mb[0], 1),
        "rss_trace_mb": [(k, round(mb, 1)) for k, mb in run.rss_trace[0]],
    }


def report(result: dict[str, Any]) -> None:
    """The table: events/s and the ratio to the raw consumer of the same case."""
    load = f"load average {result['load_before']} -> {result['load_after']}"
    decoder = "native decoder" if result["native"] else "Python decoding (no native decoder)"
    print(f"{load} on {result['cpus']} CPUs; {result['broker']}; {decoder}")
    head = f"{'raw ev/s':>10}{'decode':>8}{'core':>8}{'process':>9}{'process ev/s':>14}{'tail s':>8}"
    print(f"{'case':<40}{head}  all processed")
    for r in result["cases"]:
        ratio = [f"{r.get(k + '_vs_raw', float('nan')):>8.3f}" for k in ("decode", "core")]
        proc = f"{r.get('process_vs_raw', float('nan')):>9.3f}{r.get('process', 0):>14,}"
        tail = f"{r.get('process_tail_s', float('nan')):>8.2f}"
        print(f"{r['case']:<40}{r.get('raw', 0):>10,}{''.join(ratio)}{proc}{tail}  {r['all_processed']}")
        if "raw" not in r:
            print(f"{'':<40}core {r['core']:,} ev/s")
    for lat in result.get("latency", []):
        u, c = lat["read_uncommitted"], lat["read_committed"]
        print(
            f"latency at {lat['rate']:,.0f} ev/s: p50 {u.get('p50_ms')} ms, p99 {u.get('p99_ms')} ms "
            f"(read_committed: p50 {c.get('p50_ms')} ms, p99 {c.get('p99_ms')} ms; {u.get('n')} events)"
        )
    if "memory" in result:
        m = result["memory"]
        rss = f"{m['rss_start_mb']} -> {m['rss_end_mb']} MB"
        print(f"RSS over {m['events']:,} events: {rss} ({m['events_per_s']:,} ev/s)")
        print("  by records read: " + ", ".join(f"{k:,}: {mb} MB" for k, mb in m.get("rss_trace_mb", [])))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--bootstrap-servers", "--bootstrap", dest="bootstrap", default=None)
    ap.add_argument("--quick", action="store_true", help="small sizes (~3 min)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies every case's size (tests: 0.2)")
    ap.add_argument("--no-kafka", action="store_true", help="only the in-process core, no broker")
    ap.add_argument("--only", default="", help="comma-separated parts: cases,latency,memory (default all)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    parts = set(args.only.split(",")) if args.only else {"cases", "latency", "memory"}
    result: dict[str, Any] = {"cpus": os.cpu_count(), "load_before": [round(x, 2) for x in os.getloadavg()]}
    result["quick"], result["broker"] = args.quick, "no broker"
    result["native"] = native.available()  # the native decoder (DRIFTLINE_NATIVE=0: the Python path)
    if args.no_kafka:
        result["cases"] = [run_case(c, args, None) for c in CASES]
    else:
        from _broker import broker

        with broker(args.bootstrap) as (bootstrap, what):
            result["broker"] = what
            result["cases"] = [run_case(c, args, bootstrap) for c in CASES] if "cases" in parts else []
            if "latency" in parts:
                import pipeline_kafka as pk
                from pipeline_latency import latency

                secs = 8.0 if args.quick else 20.0
                result["latency"] = [latency(pk.case_settings(bootstrap, 1), r, secs) for r in RATES]
            if "memory" in parts:
                result["memory"] = memory_run(bootstrap, args)
    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    report(result)
    if args.json:
        print(json.dumps(result))
    return 0 if all(r["all_processed"] for r in result["cases"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
