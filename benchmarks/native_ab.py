"""The processor core with and without its native parts, alternated in one run.

    python benchmarks/native_ab.py [--features 8,50,200] [--predictions 60000] [--repeat 3] [--json]

Per feature count, one stream of the pipeline benchmark (drift at 70%, labels right behind), processed
by a fresh core in 5,000-record batches with its outputs encoded as a runner sends them: once all in
Python (msgspec, then columns; the Python join; numpy statistics), once with the native decoder reading
the features (``stream_processors/core/heads.py``), the native label join
(``stream_processors/core/join_native.py``) and the native detector kernels (``detectors/kernels.py``),
alternated ``--repeat`` times; medians of events per second,
their ratio, and a check that both ways gave the same output messages, byte for byte (else exit 1).
Needs the native decoder built (``pip install -e .`` with cargo on the PATH).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
for path in (HERE.parent, HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from pipeline import records  # noqa: E402
from pipeline_stream import make_stream  # noqa: E402

from driftline import native  # noqa: E402
from driftline.config import MonitorSettings, Topics  # noqa: E402
from driftline.transport import Record  # noqa: E402
from stream_processors.core.processor import ProcessorCore  # noqa: E402


def once(recs: list[Record], topics: Topics, use_native: bool) -> tuple[float, str]:
    """(events/s, digest of every output message) of one fresh core over ``recs``."""
    os.environ[native.ENV] = "1" if use_native else "0"  # the detector kernels read it per batch
    core = ProcessorCore(MonitorSettings(), topics)
    core.native = use_native
    digest = hashlib.sha256()
    start = time.perf_counter()
    for a in range(0, len(recs), 5000):
        for topic, key, value, _ in core.process(recs[a : a + 5000]).messages(topics):
            digest.update(topic.encode() + (key or b"") + value)
    return len(recs) / (time.perf_counter() - start), digest.hexdigest()


def measure(features: int, predictions: int, repeat: int) -> dict[str, Any]:
    topics = Topics()
    recs = records(make_stream(predictions, features=features, drift_at=0.7), topics)
    rates: dict[bool, list[float]] = {False: [], True: []}
    digests = set()
    for _ in range(repeat):
        for use_native in (False, True):
            rate, digest = once(recs, topics, use_native)
            rates[use_native].append(rate)
            digests.add(digest)
    python, fast = statistics.median(rates[False]), statistics.median(rates[True])
    return {
        "features": features,
        "events": len(recs),
        "python": round(python),
        "native": round(fast),
        "ratio": round(fast / python, 2),
        "same_outputs": len(digests) == 1,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--features", default="8,50,200")
    ap.add_argument("--predictions", type=int, default=60_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if not native.available():
        print("the native decoder is not built (or DRIFTLINE_NATIVE=0): nothing to compare", file=sys.stderr)
        return 2
    before = os.environ.get(native.ENV)
    try:
        rows = [measure(int(f), args.predictions, args.repeat) for f in args.features.split(",")]
    finally:  # (as it was: a test may call main in its own process)
        if before is None:
            os.environ.pop(native.ENV, None)
        else:
            os.environ[native.ENV] = before
    print("core events/s, medians, alternated in one run: all in Python vs native (decoder, join, kernels)")
    print(f"{'features':>8} {'events':>8} {'python':>9} {'native':>9} {'ratio':>6}  same outputs")
    for r in rows:
        print(
            f"{r['features']:>8} {r['events']:>8} {r['python']:>9,} {r['native']:>9,} "
            f"{r['ratio']:>6.2f}  {r['same_outputs']}"
        )
    if args.json:
        print(json.dumps({"native_ab": rows}))
    return 0 if all(r["same_outputs"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
