"""Evidence for incidents: an Evidently report comparing the reference and the drifted window of the
features involved, and the metric history, at the paths the incident links to."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from driftline.app.evidence import write_evidence
from driftline.config import RoutingSettings
from driftline.contracts import Alert, Metric, Prediction, Scored, Window
from stream_processors.control.incidents import IncidentBook

pytest.importorskip("evidently", reason="the evidence reports need pip install 'driftline[evidence]'")


def scored(n: int, shift_at: int, seed: int = 0) -> list[Scored]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        moved = i >= shift_at
        features = {
            "income": float(rng.normal(1.0 if moved else 0.0, 1.0)),
            "region": str(rng.choice(["north", "south"], p=[0.8, 0.2] if moved else [0.5, 0.5])),
            "age": float(rng.normal(40, 10)),  # never moves, not in the incident
        }
        p = Prediction(
            prediction_id=str(i),
            model="churn",
            model_version="1",
            event_time=float(i),
            features=features,
            prediction=1,
            score=0.7,
        )
        out.append(Scored(prediction=p, label=1, label_time=i + 1.0, index=i))
    return out


def drift(feature: str) -> Alert:
    def w(a: int, b: int) -> Window:
        return Window(start_index=a, end_index=b, start_time=float(a), end_time=float(b - 1), n=b - a)

    return Alert(
        alert_id=feature,
        type="data_drift",
        model="churn",
        model_version="1",
        feature=feature,
        statistic="ks_p_value",
        value=1e-20,
        threshold=1e-4,
        window=w(1000, 1500),
        reference=w(0, 1000),
        detected_at_index=1499,
        detected_at_time=1499.0,
        effect=1.0,
    )


def test_a_data_drift_incident_gets_an_evidently_report_where_it_links(tmp_path: Path) -> None:
    book = IncidentBook(RoutingSettings(reports_dir=str(tmp_path)))
    book.on_alert(drift("income"), (0, 0))
    (incident,) = book.on_alert(drift("region"), (0, 1))
    assert incident.evidence == [
        f"{tmp_path}/{incident.incident_id}.html",
        f"{tmp_path}/{incident.incident_id}.json",
    ]
    written = write_evidence(incident, scored(1500, 1000), [], str(tmp_path))
    assert written == incident.evidence and all(Path(p).stat().st_size > 0 for p in written)
    report = json.loads(Path(written[1]).read_text())
    columns = [m["metric_name"] for m in report["metrics"] if m["metric_name"].startswith("ValueDrift")]
    assert sorted(c.split("column=")[1].split(",")[0] for c in columns) == ["income", "region"]  # not age
    (count,) = [m["value"] for m in report["metrics"] if m["metric_name"].startswith("DriftedColumnsCount")]
    assert count["count"] == 2.0


def test_a_performance_incident_gets_its_metric_history(tmp_path: Path) -> None:
    book = IncidentBook(RoutingSettings(reports_dir=str(tmp_path)))
    alert = drift("income")
    perf = Alert(
        **{
            **{f: getattr(alert, f) for f in alert.__struct_fields__},
            "type": "performance",
            "feature": None,
            "alert_id": "p1",
        }
    )
    (incident,) = book.on_alert(perf, (0, 0))
    w = Window(start_index=0, end_index=500, start_time=0.0, end_time=499.0, n=500)
    history = [
        Metric(model="churn", model_version="1", name="accuracy", value=v, window=w) for v in (0.9, 0.7)
    ]
    (path,) = write_evidence(incident, [], history, str(tmp_path))
    assert path == incident.evidence[0]
    assert [m["value"] for m in json.loads(Path(path).read_text())["metrics"]] == [0.9, 0.7]


def test_the_reporter_writes_each_incident_once_per_revision(tmp_path: Path, monkeypatch) -> None:
    """``driftline alerts report --follow``: every incident's evidence when it opens and again when it
    changes (the second feature joining), never twice for one revision; the topics are read only then."""
    from types import SimpleNamespace

    import driftline.app.services as services
    from driftline.app.alerts_cli import write_new_evidence
    from driftline.config import Topics
    from driftline.contracts import encode

    book = IncidentBook(RoutingSettings(reports_dir=str(tmp_path)))
    notes = list(book.on_alert(drift("income"), (0, 0)))
    rows = scored(1500, 1000)
    reads: list[str] = []

    def collect_topic(settings, topic):  # the scored and metrics topics, as Kafka would give them
        reads.append(topic)
        return [encode(s) for s in rows] if topic == Topics().scored else []

    monkeypatch.setattr(services, "collect_topic", collect_topic)
    backend = SimpleNamespace(notes=lambda: notes, settings=SimpleNamespace(topics=Topics()))
    written: dict[str, int] = {}
    first = write_new_evidence(backend, str(tmp_path), written)
    assert first == notes[0].evidence and len(reads) == 2
    assert write_new_evidence(backend, str(tmp_path), written) == [] and len(reads) == 2  # nothing new
    notes += book.on_alert(drift("region"), (0, 1))  # revision 2: region joins
    again = write_new_evidence(backend, str(tmp_path), written)
    assert again == notes[-1].evidence and written == {notes[-1].incident_id: notes[-1].revision}
    report = json.loads(Path(again[1]).read_text())
    columns = [m["metric_name"] for m in report["metrics"] if m["metric_name"].startswith("ValueDrift")]
    assert len(columns) == 2  # income and region
