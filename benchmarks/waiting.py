"""Memory of predictions waiting for their labels, held as their bytes or decoded, in one run.

    python benchmarks/waiting.py [--features 8,50,200] [--predictions 20000] [--json]

Per feature count, one model's predictions (the pipeline benchmark's stream, no labels) go through a
``ModelMonitor`` in 5,000-prediction batches, once as the processor feeds it (with each record's
bytes: a version of ``schema.WIDE`` features or more then holds them instead of the decoded
features, see ``stream_processors/core/scored.py``) and once without the bytes (every prediction
waits decoded). Prints the memory the waiting predictions and the monitor's state keep
(tracemalloc, from before the input is made to after it is dropped: a held prediction keeps its
record's bytes alive).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
for path in (HERE.parent, HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from pipeline_stream import PREDICTION, make_stream  # noqa: E402

from driftline.config import MonitorSettings  # noqa: E402
from driftline.contracts import Prediction, decode  # noqa: E402
from stream_processors.core.model_monitor import ModelMonitor  # noqa: E402


def waiting_mb(features: int, n: int, held: bool, batch: int = 5000) -> tuple[float, int]:
    """(MB the monitor holds once every prediction waits, predictions waiting): counted from before
    the input is made, after it is dropped -- what stays is what the waiting predictions keep."""
    gc.collect()
    base = tracemalloc.get_traced_memory()[0]
    stream = make_stream(n, features=features, drift_at=1.0)
    values = [value for kind, _, value, _ in stream.events if kind == PREDICTION]
    del stream
    mon = ModelMonitor("m0", MonitorSettings())
    for a in range(0, len(values), batch):
        _feed(mon, values[a : a + batch], held)
    del values
    gc.collect()
    return (tracemalloc.get_traced_memory()[0] - base) / 1e6, mon.joiner.waiting


def _feed(mon: ModelMonitor, raws: list[bytes], held: bool) -> None:
    """One batch, as the processor feeds it (``held``: with its bytes); nothing of it outlives the call
    but what the monitor keeps."""
    mon.on_predictions([decode(Prediction, v) for v in raws], raws if held else None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", default="8,50,200")
    ap.add_argument("--predictions", type=int, default=20_000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    tracemalloc.start()
    rows = []
    for features in (int(f) for f in args.features.split(",")):
        held, n = waiting_mb(features, args.predictions, held=True)
        decoded, _ = waiting_mb(features, args.predictions, held=False)
        mb = {"held_mb": round(held, 1), "decoded_mb": round(decoded, 1)}
        rows.append({"features": features, "waiting": n, **mb})
    print(f"{'features':>9}{'waiting':>9}{'held MB':>10}{'decoded MB':>12}")
    for r in rows:
        print(f"{r['features']:>9}{r['waiting']:>9}{r['held_mb']:>10}{r['decoded_mb']:>12}")
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
