"""The ``loop`` rows of ``driftline bench faults`` (run by ``benchmarks/fault_loop.py``) and their table:
the uninterrupted loop, the loop with kill -9 of the control plane and the retrain worker, and the loop
across a broker restart."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from fault_kit import end_offsets
from fault_loop import (
    LoopOutputs,
    LoopRun,
    broker_loop,
    compare_loop,
    kill_loop,
    make_loop_stream,
    produce_loop,
)

from driftline.config import DriftlineSettings, KafkaSettings, StateSettings, Topics

__all__ = ["LOOP_ROWS", "format_loop_table", "run_loop"]


LOOP_ROWS = ("loop reference", "loop kill -9", "loop broker")


def run_loop(
    bootstrap: str,
    events: int,
    seed: int,
    where: Path,
    restart: Callable[[float], float] | None = None,
    rows_wanted: Sequence[str] = LOOP_ROWS,
) -> list[dict[str, Any]]:
    """The ``loop`` rows of ``driftline bench faults``: about ``events`` records, an uninterrupted run
    and, each compared with it, one with the control plane and the retrain worker killed and one with
    the broker restarted under the loop (``restart(down_s)``: only with a broker the bench started)."""
    tag = uuid.uuid4().hex[:8]
    inputs = DriftlineSettings(
        kafka=KafkaSettings(bootstrap_servers=bootstrap, partitions=4),
        topics=Topics(**{k: f"{v}.loop{tag}" for k, v in Topics().model_dump().items()}),
        state=StateSettings(checkpoint_key=uuid.uuid4().hex * 2),  # type: ignore[arg-type]
    )
    scenario, records, labels = make_loop_stream(max(6000, events // 2), seed, where / "stream")
    produce_loop(inputs, records)
    input_ends = end_offsets(inputs)
    rows: list[dict[str, Any]] = []
    ref: LoopOutputs | None = None
    for name in [LOOP_ROWS[0], *(r for r in LOOP_ROWS[1:] if r in rows_wanted)]:
        if name == "loop broker" and restart is None:
            rows.append(
                {"scenario": name, "measured": False, "why": "an external broker is not ours to restart"}
            )
            continue
        run = LoopRun(name, inputs, scenario, input_ends, labels, where / name.replace(" ", "_"))
        t0 = time.perf_counter()
        try:
            run.start_all()
            if name == "loop kill -9":
                kill_loop(run, np.random.default_rng(seed))
            elif name == "loop broker" and restart is not None:
                broker_loop(run, np.random.default_rng(seed), restart)
            out = run.finish()
        finally:
            run.close()
        ref = ref or out
        rows.append(
            {
                "scenario": name,
                "measured": True,
                "records": len(records),
                **compare_loop(out, ref),
                "kills": run.points,
                "processes_started": run.started,
                "crashes": run.crashes,
                "wall_time_s": round(time.perf_counter() - t0, 1),
            }
        )
    return rows


def format_loop_table(rows: list[dict[str, Any]]) -> str:
    yes = {True: "yes", False: "**no**"}
    lines = [
        "| scenario | faults | alerts: raw / distinct | notifications: raw / distinct "
        "| retrain requests: raw / distinct | promoted updates: raw / distinct | versions registered "
        "| versions twice | same as reference: alerts, notifications, requests, versions, outcomes "
        "| routed as its alerts call for | crashes | wall |",
        "|" + "---|" * 12,
    ]
    for r in rows:
        if not r["measured"]:
            lines.append(f"| {r['scenario']} | not measured: {r['why']} |" + " |" * 10)
            continue
        same = (
            "same_alerts",
            "same_notifications",
            "same_retrain_requests",
            "same_versions",
            "same_outcomes",
        )
        cells = [
            r["scenario"],
            "<br>".join(r["kills"]) or "-",
            r["alerts"],
            r["notifications"],
            r["retrain_requests"],
            r["promoted_updates"],
            ", ".join(r["versions"]) or "-",
            r["versions_twice"],
            ", ".join(yes[r[k]] for k in same),
            yes[r["as_routed"]],
            len(r["crashes"]),
            f"{r['wall_time_s']:.0f} s",
        ]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)
