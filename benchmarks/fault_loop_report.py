"""The ``loop`` rows of ``driftline bench faults`` (run by ``benchmarks/fault_loop.py``) and their table."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from fault_kit import end_offsets
from fault_loop import LoopOutputs, LoopRun, compare_loop, kill_loop, make_loop_stream, produce_loop

from driftline.config import DriftlineSettings, KafkaSettings, StateSettings, Topics

__all__ = ["format_loop_table", "run_loop"]


def run_loop(bootstrap: str, events: int, seed: int, where: Path) -> list[dict[str, Any]]:
    """The ``loop`` rows of ``driftline bench faults``: about ``events`` records, an uninterrupted run
    and one with the control plane and the retrain worker killed, each compared with the first."""
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
    for name in ("loop reference", "loop kill -9"):
        run = LoopRun(name, inputs, scenario, input_ends, labels, where / name.replace(" ", "_"))
        t0 = time.perf_counter()
        try:
            run.start_all()
            if ref is not None:
                kill_loop(run, np.random.default_rng(seed))
            out = run.finish()
        finally:
            run.close()
        ref = ref or out
        rows.append(
            {
                "scenario": name,
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
        "| scenario | kills | alerts: raw / distinct | notifications: raw / distinct "
        "| retrain requests: raw / distinct | promoted updates: raw / distinct | versions registered "
        "| versions twice | same as reference: alerts, notifications, requests, versions, outcomes "
        "| routed as its alerts call for | crashes | wall |",
        "|" + "---|" * 12,
    ]
    for r in rows:
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
