"""Evidence for incidents, written off the hot path: an Evidently data-drift report (HTML and JSON)
per data-drift incident, comparing the reference window with the drifted window of the features
involved, and the metric history per performance incident (JSON).

The control plane names the files when it opens an incident (``routing.reports_dir``: the links are
in the incident's ``evidence``); this module writes them from the scored events (predictions joined
with their labels, with their arrival index) and the metrics -- the embedded demo at the end of its
run, ``driftline alerts report ID`` on Kafka. Evidently is an optional dependency
(``pip install 'driftline[evidence]'``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

from driftline.contracts import Incident, Metric, Scored, Window
from driftline.errors import ConfigError

__all__ = ["evidence_paths", "write_evidence"]


def evidence_paths(incident: Incident, reports_dir: str) -> list[str]:
    base = os.path.join(reports_dir, incident.incident_id)
    return [f"{base}.html", f"{base}.json"] if incident.kind == "data_drift" else [f"{base}-metrics.json"]


def _span(windows: Iterable[Window | None]) -> tuple[int, int] | None:
    ws = [w for w in windows if w is not None]
    return (min(w.start_index for w in ws), max(w.end_index for w in ws)) if ws else None


def write_evidence(
    incident: Incident, scored: Iterable[Scored], metrics: Iterable[Metric], reports_dir: str
) -> list[str]:
    """Writes the incident's evidence into ``reports_dir``; returns the files written."""
    os.makedirs(reports_dir, exist_ok=True)
    paths = list(incident.evidence) or evidence_paths(incident, reports_dir)  # where its links point
    if incident.kind != "data_drift":
        history = [
            {"version": m.model_version, "name": m.name, "value": m.value, "end_index": m.window.end_index}
            for m in metrics
            if m.model == incident.model
        ]
        with open(paths[0], "w") as f:
            json.dump({"incident": incident.incident_id, "title": incident.title, "metrics": history}, f)
        return paths
    ref = _span(a.reference for a in incident.alerts)
    cur = _span(a.window for a in incident.alerts)
    if ref is None or cur is None:
        return []
    frames = _frames(incident, list(scored), ref, cur)
    try:
        from evidently import Report
        from evidently.presets import DataDriftPreset
    except ImportError:
        raise ConfigError("evidence reports need Evidently: pip install 'driftline[evidence]'") from None
    snapshot = Report([DataDriftPreset()]).run(current_data=frames[1], reference_data=frames[0])
    snapshot.save_html(paths[0])
    snapshot.save_json(paths[1])
    return paths


def _frames(incident: Incident, scored: list[Scored], ref: tuple[int, int], cur: tuple[int, int]) -> Any:
    import pandas as pd

    def rows(lo: int, hi: int) -> Any:
        got = [
            {f: s.prediction.features.get(f) for f in incident.features}
            for s in scored
            if s.prediction.model == incident.model
            and s.prediction.model_version == incident.model_version
            and lo <= s.index < hi
        ]
        return pd.DataFrame(got, columns=incident.features)

    return rows(*ref), rows(*cur)
