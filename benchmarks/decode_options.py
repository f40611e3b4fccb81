"""Ways to turn a batch of prediction records into feature columns, measured in one run.

    python benchmarks/decode_options.py [--features 8,50,200] [--predictions 5000] [--json]

The processor decodes each prediction record (msgspec, features as a dict) and then builds a column
per feature for the statistics (``stream_processors.core.schema.columns``). This measures, per
prediction and per feature count, on the pipeline benchmark's stream, interleaved, medians of 5:

- ``dict``: what the processor does today;
- ``struct``: each record decoded into a msgspec struct made for the version's schema (the join's
  fields and a field per feature), then columns;
- ``arrow``: the batch's features parsed by Arrow's JSON reader straight into columns (one call per
  batch), plus each record decoded without its features -- the fields the join still needs;
- ``native``: the processor's native path (when built): each record decoded as a head (without its
  features, with the ``Prediction`` checks) and the batch's features read by the native decoder
  (``driftline/native.py``) straight into columns;
- ``floor``: each record decoded without its features, alone: what any per-record decode pays
  before a single feature value is read;
- ``statistics``: the feature-drift detector's update on those columns (the next stage), for scale.

Every option's columns are checked equal to today's before anything is timed. The other options skip
what the ``Prediction`` type checks per record (safe names, bounded text, the schema version): their
figures are lower bounds of what they would cost in the processor. The figures say what
a faster decoder could save against what the statistics cost: the README's Throughput paragraph
quotes them.
"""

import argparse
import io
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

HERE = Path(__file__).resolve().parent
for path in (HERE.parent, HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from pipeline_stream import PREDICTION, make_stream  # noqa: E402

from detectors.sequential_features import SequentialFeatureDrift  # noqa: E402
from driftline import native  # noqa: E402
from driftline.contracts import LabelValue, Prediction  # noqa: E402
from stream_processors.core.schema import (  # noqa: E402
    SCORE_COLUMN,
    Kind,
    PredictionHead,
    columns,
    infer_kinds,
    native_columns,
)

Columns = dict[str, np.ndarray]


class _JoinFields(msgspec.Struct, gc=False):
    """A prediction's fields but its features: what the join and the scored output need per record."""

    prediction_id: str
    model: str
    model_version: str
    event_time: float
    prediction: LabelValue
    score: float | None = None
    schema_version: int = 1


_JOIN = msgspec.json.Decoder(_JoinFields)
_PRED = msgspec.json.Decoder(Prediction)
_HEAD = msgspec.json.Decoder(PredictionHead)


def records(features: int, n: int) -> list[bytes]:
    """``n`` prediction records of the pipeline benchmark's stream (no drift)."""
    stream = make_stream(n, features=features, drift_at=1.0)
    return [value for kind, _, value, _ in stream.events if kind == PREDICTION]


def by_dict(raws: list[bytes], kinds: dict[str, Kind]) -> Columns:
    return columns([_PRED.decode(r) for r in raws], kinds)[0]


def struct_decoder(kinds: dict[str, Kind]) -> Callable[[list[bytes]], Columns]:
    """Features as a struct made for ``kinds`` (a field per feature, renamed to its name)."""
    fields = [
        (f"f{i}", float | None if kind == "numeric" else str | None, msgspec.field(name=name, default=None))
        for i, (name, kind) in enumerate(kinds.items())
    ]
    feats = msgspec.defstruct("Features", fields, gc=False)
    typed = msgspec.defstruct("TypedPrediction", [("features", feats)], bases=(_JoinFields,), kw_only=True)
    dec = msgspec.json.Decoder(typed)
    names = list(kinds)

    def decode(raws: list[bytes]) -> Columns:
        rows = [dec.decode(r) for r in raws]
        table = np.array([msgspec.structs.astuple(p.features) for p in rows], dtype=object)
        cols = {
            name: table[:, j].astype(float) if kinds[name] == "numeric" else table[:, j]
            for j, name in enumerate(names)
        }
        cols[SCORE_COLUMN] = np.array([np.nan if p.score is None else p.score for p in rows])
        return cols

    return decode


def arrow_decoder(kinds: dict[str, Kind]) -> Callable[[list[bytes]], Columns] | None:
    """Arrow's JSON reader over the batch (newline-delimited), with the schema given; None without pyarrow."""
    try:
        import pyarrow as pa
        import pyarrow.json as pj
    except ImportError:
        return None
    ftype = pa.struct([(n, pa.float64() if k == "numeric" else pa.string()) for n, k in kinds.items()])
    schema = pa.schema([("features", ftype), ("score", pa.float64())])
    parse = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")

    def decode(raws: list[bytes]) -> Columns:
        join = [_JOIN.decode(r) for r in raws]  # the join's fields, per record, as the processor needs them
        table = pj.read_json(io.BytesIO(b"\n".join(raws)), parse_options=parse)
        feats = table.column("features").combine_chunks()
        cols = {name: feats.field(name).to_numpy(zero_copy_only=False) for name in kinds}
        cols = {n: c if kinds[n] == "numeric" else c.astype(object) for n, c in cols.items()}
        cols[SCORE_COLUMN] = np.array([np.nan if p.score is None else p.score for p in join])
        return cols

    return decode


def native_decoder(kinds: dict[str, Kind]) -> Callable[[list[bytes]], Columns] | None:
    """What the processor does with the native decoder: each record decoded as a head (the
    ``Prediction`` without its features, with its checks), its features read from the batch's records
    straight into columns (``stream_processors/core/heads.py``); None if it was not built."""
    if not native.available():
        return None

    def decode(raws: list[bytes]) -> Columns:
        got = native_columns([_HEAD.decode(r) for r in raws], raws, kinds)
        assert got is not None and not got[1], "the stream's records are all of the plainest kind"
        return got[0]

    return decode


def floor(raws: list[bytes]) -> list[_JoinFields]:
    return [_JOIN.decode(r) for r in raws]


def same_columns(a: Columns, b: Columns) -> bool:
    """Equal keys, and equal values (NaN equal to NaN in numeric columns)."""
    if a.keys() != b.keys():
        return False
    for name, x in a.items():
        y = b[name]
        if x.dtype == object or y.dtype == object:
            if x.tolist() != y.tolist():
                return False
        elif not np.array_equal(x, y, equal_nan=True):
            return False
    return True


def decoders(kinds: dict[str, Kind]) -> dict[str, Callable[[list[bytes]], Any]]:
    out: dict[str, Callable[[list[bytes]], Any]] = {
        "dict": lambda raws: by_dict(raws, kinds),
        "struct": struct_decoder(kinds),
    }
    arrow = arrow_decoder(kinds)
    if arrow is not None:
        out["arrow"] = arrow
    fast = native_decoder(kinds)
    if fast is not None:
        out["native"] = fast
    out["floor"] = floor
    return out


def measure(features: int, n: int, repeat: int = 5) -> dict[str, Any]:
    """Microseconds per prediction of each option and of the statistics, at ``features`` features."""
    raws = records(features, n)
    kinds = infer_kinds(_PRED.decode(raws[0]))
    options = decoders(kinds)
    today = options["dict"](raws)
    for name, decode in options.items():
        if name != "floor" and not same_columns(decode(raws), today):
            raise AssertionError(f"{name}: its columns differ from the processor's")
    detector = SequentialFeatureDrift(kinds, reference_size=min(2000, n // 2))
    detector.update(today)  # the reference, then monitoring
    feats = {k: v for k, v in today.items() if k in kinds}
    times: dict[str, list[float]] = {name: [] for name in [*options, "statistics"]}
    for _ in range(repeat):  # interleaved: each round times every option once
        for name, decode in options.items():
            start = time.perf_counter()
            decode(raws)
            times[name].append(time.perf_counter() - start)
        start = time.perf_counter()
        detector.update(feats)
        times["statistics"].append(time.perf_counter() - start)
    row: dict[str, Any] = {"features": features, "predictions": len(raws)}
    for name, values in times.items():
        row[f"{name}_us"] = round(statistics.median(values) / len(raws) * 1e6, 2)
    return row


def table(rows: list[dict[str, Any]]) -> str:
    names = [k[:-3] for k in rows[0] if k.endswith("_us")]
    lines = [
        "us per prediction (medians of 5, interleaved; 'floor': the join's fields only, no feature read)",
        f"{'features':>8} " + " ".join(f"{n:>10}" for n in names),
    ]
    for r in rows:
        cells = " ".join(f"{r.get(n + '_us', float('nan')):>10.2f}" for n in names)
        lines.append(f"{r['features']:>8} {cells}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", default="8,50,200", help="feature counts, comma-separated")
    ap.add_argument("--predictions", type=int, default=5000, help="predictions per batch (one batch)")
    ap.add_argument("--json", action="store_true", help="one JSON line instead of the table")
    args = ap.parse_args(argv)
    rows = [measure(int(f), args.predictions) for f in args.features.split(",")]
    print(json.dumps({"decode_options": rows}) if args.json else table(rows))
    return 0


if __name__ in ("__main__", "driftline_bench"):
    sys.exit(main())
