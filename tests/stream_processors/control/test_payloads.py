"""What Slack and Alertmanager receive, snapshot-tested: a data-drift incident naming two features,
a concept-drift incident with its error rates, its resolution and a retrain outcome.

Snapshots live in ``snapshots/``; after an intended change, rewrite them with
``DRIFTLINE_UPDATE_SNAPSHOTS=1 pytest tests/stream_processors/control/test_payloads.py`` and review
the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from driftline.config import RoutingSettings
from driftline.contracts import Alert, Incident, Metric, RetrainOutcome, Window
from stream_processors.control.incidents import IncidentBook
from stream_processors.control.render import alertmanager_alerts, slack_payload

SNAPSHOTS = Path(__file__).parent / "snapshots"
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def window(a: int, b: int) -> Window:
    return Window(start_index=a, end_index=b, start_time=T0 + a, end_time=T0 + b - 1, n=b - a)


def drift(i: str, feature: str, effect: float, category: str | None = None) -> Alert:
    test = "chi2" if category else "ks"
    moved = f"{category} share {effect:+.3f}" if category else f"mean {effect:+.2f} sd"
    return Alert(
        alert_id=i,
        type="data_drift",
        model="churn",
        model_version="1",
        feature=feature,
        statistic=f"{test}_p_value",
        value=3e-98,
        threshold=1.4e-4,
        p_value=3e-98,
        window=window(20000, 21000),
        reference=window(0, 2000),
        detected_at_index=20999,
        detected_at_time=T0 + 20999,
        effect=effect,
        direction="increase",
        message=f"{feature} drifted ({moved})",
    )


CONCEPT = Alert(
    alert_id="c1",
    type="concept_drift",
    model="churn",
    model_version="1",
    feature=None,
    statistic="window_mean",
    value=0.143,
    threshold=0.091,
    window=window(35003, 35155),
    reference=window(34003, 35003),
    detected_at_index=35154,
    detected_at_time=T0 + 35160,
    before=0.102,
    after=0.704,
    effect=0.602,
    direction="increase",
    severity="critical",
    message="error rate 0.102 -> 0.704 (events 34003..35002 vs 35003..35154); adwin window_mean=0.143 "
    "crossed 0.091; baseline accuracy 0.912, window of 1000 labelled",
)


def incidents() -> dict[str, Incident]:
    book = IncidentBook(RoutingSettings(runbooks={"churn": "https://runbooks.example.com/churn/{kind}"}))
    book.on_alert(drift("d1", "income", 0.8), (0, 1))
    (data,) = book.on_alert(drift("d2", "region", 0.12, category="north"), (0, 2))
    (perf, _) = book.on_alert(CONCEPT, (0, 3))  # labels confirm harm: data drift is critical too
    resolved: list[Incident] = []
    for k in range(3):
        end = 41000 + 500 * k
        m = Metric(
            model="churn", model_version="2", name="accuracy", value=0.91, window=window(end - 1000, end)
        )
        resolved += book.on_metric(m, (1, k))
    by_kind = {i.kind: i for i in resolved}
    return {"data": data, "perf": perf, "perf_resolved": by_kind["performance"]}


def check(name: str, payload: Any) -> None:
    path = SNAPSHOTS / f"{name}.json"
    text = json.dumps(payload, indent=2, sort_keys=True) + "\n"
    if os.environ.get("DRIFTLINE_UPDATE_SNAPSHOTS") == "1":
        path.write_text(text)
    assert path.exists(), f"no snapshot {path.name}: run with DRIFTLINE_UPDATE_SNAPSHOTS=1 and review it"
    assert text == path.read_text()


@pytest.mark.parametrize("which", ["data", "perf", "perf_resolved"])
def test_slack_block_kit_payloads(which: str) -> None:
    check(f"slack_{which}", slack_payload(incidents()[which]))


@pytest.mark.parametrize("which", ["data", "perf", "perf_resolved"])
def test_alertmanager_v2_payloads(which: str) -> None:
    check(f"alertmanager_{which}", alertmanager_alerts(incidents()[which]))


def test_a_retrain_outcome_reaches_slack_as_text() -> None:
    out = RetrainOutcome(
        request_id="c1", model="churn", status="promoted", reason="v2 replaces v1", version="2"
    )
    check("slack_retrain", slack_payload(out))


def test_what_the_payloads_say() -> None:
    """The facts on-call needs, whatever the snapshots' layout."""
    got = incidents()
    data = json.dumps(slack_payload(got["data"]))
    for fact in ("churn v1", "income, region", "WARNING", "2026-01-01T05:49:59Z", "#20999", "p=3e-98"):
        assert fact in data, fact
    perf = json.dumps(slack_payload(got["perf"]))
    for fact in ("CRITICAL", "0.102 -> 0.704", "labels confirm harm", "https://runbooks.example.com/churn/"):
        assert fact in perf, fact
    (am,) = alertmanager_alerts(got["perf_resolved"])
    assert am["labels"]["severity"] == "critical" and am["endsAt"] > am["startsAt"]
    (firing,) = alertmanager_alerts(got["perf"])
    assert "endsAt" not in firing and firing["labels"] == {**am["labels"]}


def test_a_segment_incident_names_its_segment_in_its_title() -> None:
    import msgspec

    from stream_processors.control.render import incident_title

    book = IncidentBook(RoutingSettings())
    web = msgspec.structs.replace(CONCEPT, alert_id="c-web", segment={"channel": "web"})
    (inc, *_) = book.on_alert(web, (0, 1))
    assert inc.title.startswith("[CRITICAL] churn v1 [channel=web] model performance"), inc.title
    assert incident_title(inc) == inc.title
    (whole, *_) = book.on_alert(CONCEPT, (0, 2))
    assert "[channel=web]" not in whole.title
