"""Faults: ``driftline process`` killed, rebalanced and cut off from its broker, next to a clean run.

Each scenario runs over the same input as an uninterrupted reference run.

    python benchmarks/faults.py [--events 40000] [--kills 10] [--seed 0] [--bootstrap HOST:PORT]
                                [--quick] [--json]
    driftline bench faults [same options]

One seeded drifting stream for two models (:func:`fault_kit.make_stream`: predictions, labels 0.2-3 s
behind them, a few bad records) is produced once into fresh topics with 4 partitions; then each scenario
runs processors (``python -m driftline.app process``, child processes with their own ``--state-dir``)
over it into output topics of its own, until the group has committed every input offset:

  reference  one processor, never interrupted: what every other scenario is compared with
  rerun      the same again: how far two clean runs of the same input agree
  kill -9    one processor, SIGKILLed at ``--kills`` random points (one of them right after a restart:
             two kills back to back), restarted each time
  rebalance  two processors in one group (one model each; their checkpoints in one directory), one
             SIGKILLed mid-stream and restarted: its partitions move to the other and back
  broker     the broker stopped (SIGTERM) mid-stream and started again on the same storage and ports
             (only with the local broker this script starts; not with ``--bootstrap``)
  loop       the closed loop (``benchmarks/fault_loop.py``): the processor, the control plane and the
             retrain worker as separate processes over the demo's world, uninterrupted and then with the
             control plane SIGKILLed three times and the retrain worker twice (restarted each time);
             compared: alerts, notifications, retrain requests (raw and distinct ids), model versions
             registered and promoted, outcomes recorded; and with the broker stopped for 5 s and started
             again under all three, mid-stream and after the first retrain request (local broker only).
             ``--scenario "loop kill -9"`` or ``"loop broker"``: the loop's reference and that row alone

Per scenario: scored events (raw, distinct prediction ids), labels never scored, alerts (distinct ids),
dead letters (distinct source offsets), duplicate records on the output topics, whether the distinct
scored ids, alert ids, dead letters and metric values equal the reference's, and the wall time.
``--quick``: 16,000 events, 3 kills (the loop: ~16,000 records). ``--scenario NAME`` (repeatable) runs only
those after the reference.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

# ``driftline bench faults`` runs this file with runpy.run_path: make its sibling modules importable
_HERE = Path(__file__).resolve().parent
for _p in (str(_HERE), str(_HERE.parent / ".ci")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from fault_kit import Outputs, Stream, end_offsets, make_stream, produce  # noqa: E402
from fault_loop_report import LOOP_ROWS, format_loop_table, run_loop  # noqa: E402
from fault_run import OPTIONS, Run, own_outputs  # noqa: E402

from driftline.config import DriftlineSettings, KafkaSettings, StateSettings, Topics  # noqa: E402

__all__ = ["main"]


LOOP_WHAT = (
    "process, control-plane and retrain-worker as separate processes over one input; kill -9: the control "
    "plane 3 times, the retrain worker twice, each restarted; broker: stopped for 5 s under all three and "
    "started again, twice, none restarted unless it exits; raw / distinct counts, distinct compared)"
)
LOOP_CHOICES = ("loop", "loop kill -9", "loop broker")  # "loop": the reference, kill -9 and broker rows


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def scenario_reference(run: Run, rng: np.random.Generator, args: argparse.Namespace) -> Outputs:
    return run.finish([run.start()])


def scenario_kills(run: Run, rng: np.random.Generator, args: argparse.Namespace) -> Outputs:
    """SIGKILL at ``kills - 1`` random points of progress; after one of them, again right after the
    restart (while it restores or replays): two kills back to back."""
    targets = np.sort(rng.uniform(0.05, 0.95, args.kills - 1))
    twice = int(rng.integers(0, args.kills - 1))
    procs = [run.start()]
    for k, target in enumerate(targets):
        run.kill_at(float(target), procs)
        if k == twice:
            run.wait(procs[0].assigned, "assignment", procs)
            time.sleep(float(rng.uniform(0.0, 1.0)))
            run.kill_at(0.0, procs)
    return run.finish(procs)


def scenario_rebalance(run: Run, rng: np.random.Generator, args: argparse.Namespace) -> Outputs:
    """Two processors in one group, one killed mid-stream and restarted. Over inputs of their own: the
    same stream, produced once each has its two partitions (else the first one up reads most of it
    alone). They share one checkpoint directory: a partition that moves finds the state its last owner
    saved (both on one machine)."""
    procs = [run.start(0), run.start(1)]
    run.wait(lambda: all(p.partitions().count(",") == 1 for p in procs), "two partitions each", procs)
    produce(run.settings, run.stream)
    run.ends = end_offsets(run.settings)
    run.kill_at(float(rng.uniform(0.3, 0.7)), procs, 1)
    return run.finish(procs)


def scenario_broker(run: Run, rng: np.random.Generator, args: argparse.Namespace) -> Outputs:
    """The broker stopped mid-stream for 5 s and started again; a processor that exits meanwhile is a
    crash (started again, as a supervisor would)."""
    procs = [run.start()]
    target = float(rng.uniform(0.3, 0.7))
    run.wait(lambda: run.progress() >= target, f"progress {target:.0%}", procs)
    run.points.append(f"{run.progress():.0%}")
    run.points.append(f"away {restart_broker(args.broker_workdir, 5.0):.0f} s")
    return run.finish(procs)


SCENARIOS: dict[str, Callable[[Run, np.random.Generator, argparse.Namespace], Outputs]] = {
    "reference": scenario_reference,
    "rerun": scenario_reference,
    "kill -9": scenario_kills,
    "rebalance": scenario_rebalance,
    "broker": scenario_broker,
}


def restart_broker(workdir: Path, down_s: float) -> float:
    """Stop the local broker in ``workdir`` and start it again on the same storage and ports (no
    ``format``: kafka_local's ``start`` formats fresh storage); returns the seconds it was away."""
    import kafka_local
    from kafka_broker_control import api_versions, metadata_ok, stop

    bootstrap = (workdir / "bootstrap").read_text().strip()
    t0 = time.monotonic()
    stop(workdir)
    time.sleep(down_s)
    props = workdir / "server.properties"
    log4j = f"-Dlog4j2.configurationFile={workdir / 'log4j2.properties'}"
    cmd = [kafka_local.check_java(), *kafka_local.JVM_OPTS, log4j, "-cp", f"{kafka_local.LIBS}/*"]
    with open(workdir / "broker-restarted.out", "wb") as out:
        proc = subprocess.Popen(
            [*cmd, "kafka.Kafka", str(props)], stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, cwd=workdir, start_new_session=True,
        )  # fmt: skip
    (workdir / "broker.pid").write_text(f"{proc.pid}\n")  # kafka_local.stop stops this one at the end
    host, port = bootstrap.split(":")
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the restarted broker exited {proc.returncode}: see {workdir}")
        try:
            if api_versions(host, int(port)) and metadata_ok(bootstrap, 5.0):
                return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.2)


@contextmanager
def local_broker(bootstrap: str | None) -> Iterator[tuple[str, str, Path | None]]:
    """(bootstrap, description, workdir of a broker this started, else None)."""
    if bootstrap is not None:
        yield bootstrap, "external broker", None
        return
    import kafka_local

    kafka_local.assemble()
    workdir = Path(tempfile.mkdtemp(prefix="driftline-faults-kafka-"))
    started = kafka_local.start(workdir)
    try:
        yield started.bootstrap, f"Kafka {started.version} (local)", workdir
    finally:
        kafka_local.stop(workdir)
        shutil.rmtree(workdir, ignore_errors=True)


def run_all(args: argparse.Namespace, bootstrap: str, tmp: Path) -> tuple[list[dict[str, Any]], Stream]:
    """Produce the stream once, then run the reference and each scenario over it."""
    run_id = secrets.token_hex(4)
    names = {k: f"{v}.faults{run_id}" for k, v in Topics().model_dump().items()}
    inputs = DriftlineSettings(
        kafka=KafkaSettings(bootstrap_servers=bootstrap, partitions=4),
        topics=Topics(**names),
        state=StateSettings(checkpoint_key=secrets.token_hex(32)),  # type: ignore[arg-type]
    )
    stream = make_stream(args.events, args.seed)
    produce(inputs, stream)
    ends = end_offsets(inputs)
    log(f"produced {len(stream):,} records ({len(stream.labelled):,} labelled predictions, {stream.bad} bad)")
    rng = np.random.default_rng(args.seed)
    rows: list[dict[str, Any]] = []
    ref: Outputs | None = None
    for name in ["reference", *(s for s in args.scenarios if s not in LOOP_CHOICES)]:
        if name == "broker" and args.broker_workdir is None:
            rows.append(
                {"scenario": name, "measured": False, "why": "an external broker is not ours to restart"}
            )
            continue
        where = tmp / name.replace(" ", "").replace("-", "")
        run = Run(name, own_outputs(inputs, inputs=name == "rebalance"), stream, ends, where)
        t0 = time.perf_counter()
        try:
            out = SCENARIOS[name](run, rng, args)
        finally:
            run.close()
        ref = ref or out
        rows.append(row(run, out, ref, time.perf_counter() - t0))
        log(f"{name}: {rows[-1]}")
    return rows, stream


LABELLED = {"concept_drift", "performance"}  # alerts on the labelled stream; the others: on predictions


def _alerts(out: Outputs, labelled: bool) -> set[str]:
    return {a for a, (_, kind, _) in out.alert_kinds.items() if (kind in LABELLED) == labelled}


def compare(run: Outputs, ref: Outputs, labelled: frozenset[str]) -> dict[str, Any]:
    """The figures of a run next to the uninterrupted reference run."""
    mine, theirs = run.metric_values, ref.metric_values
    differ = Counter(k[2] for k in mine.keys() ^ theirs.keys())
    differ += Counter(k[2] for k in mine.keys() & theirs.keys() if mine[k] != theirs[k])
    return {
        "scored": run.scored,
        "scored_distinct": len(run.scored_ids),
        "labels_lost": len(labelled - run.scored_ids),
        "dead_letters_distinct": len(run.dead_letter_ids),
        "feature_alerts": len(_alerts(run, False)),
        "labelled_alerts": len(_alerts(run, True)),
        "metrics_distinct": len(run.metric_values),
        "duplicates": {
            "scored": run.scored - len(run.scored_ids),
            "alerts": run.alerts - len(run.alert_ids),
            "dead_letters": run.dead_letters - len(run.dead_letter_ids),
            "metrics": run.metrics - len(run.metric_values),
        },
        "metric_conflicts": run.metric_conflicts,
        "same_scored_ids": run.scored_ids == ref.scored_ids,
        "same_dead_letters": run.dead_letter_ids == ref.dead_letter_ids,
        "same_feature_alerts": _alerts(run, False) == _alerts(ref, False),
        "same_labelled_alerts": _alerts(run, True) == _alerts(ref, True),
        "same_metrics": not differ,
        "metrics_differing": dict(sorted(differ.items())),
        "alerts_missing": sorted(ref.alert_kinds[a] for a in ref.alert_ids - run.alert_ids),
        "alerts_extra": sorted(run.alert_kinds[a] for a in run.alert_ids - ref.alert_ids),
    }


def row(run: Run, out: Outputs, ref: Outputs, wall: float) -> dict[str, Any]:
    return {
        "scenario": run.name,
        "measured": True,
        **compare(out, ref, run.stream.labelled),
        "processes_started": run.started,
        "crashes": run.crashes,
        "points": run.points,
        "wall_time_s": round(wall, 1),
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| scenario | faults at (progress) | scored: raw / distinct | labels lost | dead letters "
        "| alerts: feature / labelled | duplicate output records | same as reference: scored ids, dead "
        "letters, feature alerts | same: labelled alerts, metrics | crashes | wall |",
        "|" + "---|" * 11,
    ]
    yes = {True: "yes", False: "**no**"}
    for r in rows:
        if not r["measured"]:
            lines.append(f"| {r['scenario']} | not measured: {r['why']} |" + " |" * 9)
            continue
        same = ", ".join(yes[r[k]] for k in ("same_scored_ids", "same_dead_letters", "same_feature_alerts"))
        same2 = ", ".join(yes[r[k]] for k in ("same_labelled_alerts", "same_metrics"))
        cells = [
            r["scenario"],
            " ".join(r["points"]) or "-",
            f"{r['scored']:,} / {r['scored_distinct']:,}",
            r["labels_lost"],
            r["dead_letters_distinct"],
            f"{r['feature_alerts']} / {r['labelled_alerts']}",
            f"{sum(r['duplicates'].values()):,}",
            same,
            same2,
            len(r["crashes"]),
            f"{r['wall_time_s']:.0f} s",
        ]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


def run_loop_rows(
    args: argparse.Namespace, bootstrap: str, where: Path, wanted: list[str]
) -> list[dict[str, Any]]:
    """The loop's rows: its reference and the ones ``wanted`` ("loop": kill -9 and broker); the broker
    row restarts the broker this script started (none with ``--bootstrap``: that row is not measured)."""
    workdir = args.broker_workdir
    restart = (lambda down_s: restart_broker(workdir, down_s)) if workdir is not None else None
    rows = LOOP_ROWS if "loop" in wanted else wanted
    return run_loop(bootstrap, args.events, args.seed, where, restart, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="driftline bench faults", description=__doc__.splitlines()[0][:-1])
    parser.add_argument("--events", type=int, default=40_000, help="records in the stream (default 40,000)")
    parser.add_argument("--kills", type=int, default=10, help="SIGKILLs in the kill -9 scenario (>= 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bootstrap", help="a running broker (default: start a local one)")
    parser.add_argument("--quick", action="store_true", help="16,000 events, 3 kills")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of a table")
    parser.add_argument(
        "--scenario", action="append", choices=[*SCENARIOS][1:] + [*LOOP_CHOICES], help="only these"
    )
    parser.add_argument("--logs", type=Path, help="keep the processors' logs and checkpoints here")
    args = parser.parse_args(argv)
    if args.kills < 2:
        parser.error("--kills must be >= 2 (one pair is back to back)")
    if args.quick:
        args.events, args.kills = min(args.events, 16_000), min(args.kills, 3)
    args.scenarios = args.scenario or [*SCENARIOS][1:] + ["loop"]
    t0 = time.perf_counter()
    with local_broker(args.bootstrap) as (bootstrap, where, workdir):
        args.broker_workdir = workdir
        with tempfile.TemporaryDirectory(prefix="driftline-faults-") as tmp:
            where_to = args.logs or Path(tmp)
            loop_rows = [s for s in args.scenarios if s in LOOP_CHOICES]
            alone = len(loop_rows) == len(args.scenarios)  # the loop alone: no processor-only scenario
            rows, stream = ([], None) if alone else run_all(args, bootstrap, where_to)
            loop = run_loop_rows(args, bootstrap, where_to / "loop", loop_rows) if loop_rows else []
    options = ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in OPTIONS.items())
    size = f"{len(stream):,} records, " if stream is not None else ""
    load = f"{size}2 models, 4 partitions, {where}, driftline process {options}"
    if args.json:
        print(json.dumps({"load": load, "quick": args.quick, "seed": args.seed, "rows": rows, "loop": loop}))
    else:
        print(f"Faults of `driftline process` ({load}; {time.perf_counter() - t0:.0f} s in all)")
        if rows:
            print(format_table(rows))
        if loop:
            print(f"\nThe closed loop ({loop[0]['records']:,} records of the demo's world; {LOOP_WHAT})")
            print(format_loop_table(loop))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
