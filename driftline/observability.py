"""Prometheus exposition of what a Driftline process already computes.

One :class:`Exporter` per process, with its own :class:`~prometheus_client.CollectorRegistry` (no
import-time global collectors): the data plane feeds it once per batch from the core's outputs (its
Metric, Alert and DeadLetter lists, the batch's record timestamps), the control plane from the
incidents it publishes, the retrain worker from its outcomes. Nothing here runs per record in
Python: the latency histogram is counted with numpy over a batch's timestamps.

Label cardinality stays bounded: ``feature`` values come from alerts only (at most
:data:`~driftline.contracts.MAX_FEATURES` per model version), ``metric`` from the task's fixed
metric set, ``segment`` from the spec's segment columns (at most 4, each with at most
``max_segment_values`` values, the rest pooled as ``other``), and a model keeps the series of its
``max_versions`` most recent versions (the processor's own ``monitor.max_versions``): an older
version's series are removed.

>>> from driftline.contracts import Metric, Window
>>> ex = Exporter("process", max_versions=1)
>>> win = Window(start_index=0, end_index=500, start_time=0.0, end_time=5.0, n=500)
>>> def metric(version, value):
...     return Metric(model="churn", model_version=version, name="accuracy", value=value, window=win)
>>> ex.observe_outputs(metrics=[metric("1", 0.91)])
>>> ex.value("driftline_model_metric", model="churn", version="1", metric="accuracy", segment="")
0.91
>>> ex.observe_outputs(metrics=[metric("2", 0.88)])  # version 1's series go: one version kept
>>> ex.value("driftline_model_metric", model="churn", version="1", metric="accuracy", segment="") is None
True
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

from driftline.contracts import Alert, DeadLetter, Metric, RetrainOutcome
from driftline.notifications import Incident

__all__ = ["LATENCY_BUCKETS", "Exporter", "MetricsServer"]

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
# metrics of the core published under names of their own (the rest are rolling metrics)
_JOIN_COUNTS = {"late_labels", "orphan_labels", "expired_unlabelled", "pending_labels"}
_NO_FEATURE = {"prediction_drift": "__prediction_score__", "multivariate_drift": "__joint__"}


class _BatchHistogram(Collector):
    """A histogram observed a numpy array at a time (prometheus_client's observes one value)."""

    def __init__(self, name: str, doc: str, buckets: Sequence[float]) -> None:
        self.name, self.doc = name, doc
        self.bounds = np.asarray(buckets, dtype=float)
        self.counts = np.zeros(len(buckets) + 1, dtype=np.int64)  # the last: above every bound
        self.total = 0.0

    def observe(self, values: np.ndarray) -> None:
        if values.size:
            self.counts += np.bincount(np.searchsorted(self.bounds, values), minlength=self.counts.size)
            self.total += float(values.sum())

    def collect(self) -> Iterator[HistogramMetricFamily]:
        cumulative = np.cumsum(self.counts)
        labels = [*(repr(float(b)) for b in self.bounds), "+Inf"]
        buckets = [(le, float(c)) for le, c in zip(labels, cumulative, strict=True)]
        yield HistogramMetricFamily(self.name, self.doc, buckets=buckets, sum_value=self.total)


class MetricsServer:
    """The ``/metrics`` endpoint of one registry, on its own thread; :meth:`close` stops it."""

    def __init__(self, registry: CollectorRegistry, port: int, host: str = "127.0.0.1") -> None:
        self._httpd, self._thread = start_http_server(port, addr=host, registry=registry)
        self.host, self.port = host, int(self._httpd.server_port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


class Exporter:
    """The collectors of one process (``component``: process, control-plane, retrain-worker, demo)."""

    def __init__(
        self,
        component: str,
        *,
        max_versions: int = 4,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
        topics: Any = None,
    ) -> None:
        self.component, self.max_versions, self._clock = component, max_versions, clock
        self.topics = topics  # driftline.config.Topics: the output topics' names (None: the defaults)
        r = self.registry = registry if registry is not None else CollectorRegistry()
        self.events_in = Counter("driftline_events_in_total", "records read, by topic", ["topic"], registry=r)
        self.events_out = Counter(
            "driftline_events_out_total", "records sent, by topic", ["topic"], registry=r
        )
        self.dead_letters = Counter(
            "driftline_dead_letters_total",
            "records sent to the dead-letter topic, by stage and error type",
            ["stage", "reason"],
            registry=r,
        )
        self.latency = _BatchHistogram(
            "driftline_processing_latency_seconds",
            "record timestamp (the event time, as the SDK sends it) to its batch's outputs being sent",
            LATENCY_BUCKETS,
        )
        r.register(self.latency)
        self.lag = Gauge(
            "driftline_consumer_lag_records",
            "end offset minus processed offset",
            ["topic", "partition"],
            registry=r,
        )
        self.checkpoint_seconds = Histogram(
            "driftline_checkpoint_duration_seconds", "time to commit a checkpoint", registry=r
        )
        self.last_checkpoint = Gauge(
            "driftline_last_checkpoint_timestamp_seconds", "wall time of the last checkpoint", registry=r
        )
        self._last_checkpoint: float | None = None
        age = Gauge("driftline_checkpoint_age_seconds", "seconds since the last checkpoint", registry=r)
        age.set_function(self._checkpoint_age)
        self._model_gauges(r)
        self.retrains = Counter(
            "driftline_retrain_outcomes_total",
            "retrain requests decided, by status",
            ["model", "status"],
            registry=r,
        )
        self.incidents = Gauge(
            "driftline_incidents",
            "incidents by state and severity (the control plane's view; resolved: since it started)",
            ["model", "kind", "state", "severity"],
            registry=r,
        )
        self._incident_state: dict[str, tuple[str, str, str, str]] = {}
        self._versions: dict[str, list[str]] = {}  # per model, oldest first
        self._series: dict[tuple[str, str], set[tuple[Gauge, tuple[str, ...]]]] = {}

    def _model_gauges(self, r: CollectorRegistry) -> None:
        mv = ["model", "version"]
        self.model_metric = Gauge(
            "driftline_model_metric",
            "rolling metric over the last window (segment: '' for all traffic, else column=value)",
            [*mv, "metric", "segment"],
            registry=r,
        )
        self.label_coverage = Gauge(
            "driftline_label_coverage_ratio", "predictions joined with a label / predictions", mv, registry=r
        )
        self.estimate = Gauge(
            "driftline_label_free_estimate", "metric estimated without labels", [*mv, "metric"], registry=r
        )
        self.join_counts = Gauge(
            "driftline_join_labels",
            "the join's counts of late, orphan, expired, pending",
            [*mv, "kind"],
            registry=r,
        )
        self.drift_statistic = Gauge(
            "driftline_feature_drift_statistic",
            "drift statistic of a feature at its latest alert",
            [*mv, "feature", "statistic"],
            registry=r,
        )
        self.drift_threshold = Gauge(
            "driftline_feature_drift_threshold",
            "the statistic's alarm threshold",
            [*mv, "feature"],
            registry=r,
        )
        self.drift_p_value = Gauge(
            "driftline_feature_drift_p_value",
            "window test p-value at the latest alert",
            [*mv, "feature"],
            registry=r,
        )
        self.drift_level = Gauge(
            "driftline_feature_drift_level_ratio",
            "a feature's drift CUSUM now as a fraction of its alarm threshold (1: alerts)",
            [*mv, "feature"],
            registry=r,
        )
        self.alerts = Counter(
            "driftline_alerts_total",
            "alerts raised, by type and severity",
            ["model", "type", "severity"],
            registry=r,
        )

    def observe_drift_levels(self, levels: Iterable[tuple[str, str, str, str | None, float]]) -> None:
        """(model, version, alert type, feature, level) of each drift stream, read off the core's state
        (``ProcessorCore.drift_levels``) every few seconds: the drift gauges move between alerts."""
        for model, version, kind, feature, level in levels:
            name = feature or _NO_FEATURE.get(kind)
            if name is not None:
                self._set(self.drift_level, (model, version), (name,), level)

    # -- the data plane, once per batch ----------------------------------------------------------
    def observe_batch(self, records: Sequence[Any], out: Any) -> None:
        """A batch of input ``records`` (with ``topic`` and ``timestamp``) and the core's output for
        it (``scored``, ``metrics``, ``alerts``, ``dead_letters`` lists), once its outputs were sent."""
        if records:
            topics: dict[str, int] = {}
            for r in records:  # a dict update per record: counting needs no more
                topics[r.topic] = topics.get(r.topic, 0) + 1
            for topic, n in topics.items():
                self.events_in.labels(topic).inc(n)
            stamps = np.fromiter((r.timestamp for r in records), dtype=float, count=len(records))
            stamps = stamps[stamps > 0]
            self.latency.observe(np.maximum(self._clock() - stamps, 0.0))
        self.observe_outputs(
            out.metrics, out.alerts, out.dead_letters, scored=len(out.scored), topics=self.topics
        )

    def observe_outputs(
        self,
        metrics: Iterable[Metric] = (),
        alerts: Iterable[Alert] = (),
        dead_letters: Iterable[DeadLetter] = (),
        *,
        scored: int = 0,
        topics: Any = None,
    ) -> None:
        """Gauges from the core's Metric and Alert outputs; counters of what was sent."""
        metrics, alerts, dead_letters = list(metrics), list(alerts), list(dead_letters)
        for name, n in (("scored", scored), ("metrics", len(metrics)), ("alerts", len(alerts))):
            if n:
                self.events_out.labels(getattr(topics, name, f"driftline.{name}")).inc(n)
        for m in metrics:
            self._metric(m)
        for a in alerts:
            self._alert(a)
        for d in dead_letters:
            self.dead_letters.labels(d.stage, d.error_type).inc()
        if dead_letters:
            self.events_out.labels(getattr(topics, "dlq", "driftline.dlq")).inc(len(dead_letters))

    def _metric(self, m: Metric) -> None:
        mv = (m.model, m.model_version)
        if m.segment:  # a slice of the traffic (the spec's segments): its quality metrics only
            segment = ",".join(f"{k}={v}" for k, v in sorted(m.segment.items()))
            if (
                not m.name.startswith("expected_")
                and m.name != "label_coverage"
                and m.name not in _JOIN_COUNTS
            ):
                self._set(self.model_metric, mv, (m.name, segment), m.value)
            return
        if m.name == "label_coverage":
            self._set(self.label_coverage, mv, (), m.value)
        elif m.name.startswith("expected_"):
            self._set(self.estimate, mv, (m.name.removeprefix("expected_"),), m.value)
        elif m.name in _JOIN_COUNTS:
            self._set(self.join_counts, mv, (m.name.removesuffix("_labels"),), m.value)
        else:
            self._set(self.model_metric, mv, (m.name, ""), m.value)

    def _alert(self, a: Alert) -> None:
        self.alerts.labels(a.model, a.type, a.severity).inc()
        feature = a.feature or _NO_FEATURE.get(a.type)
        if feature is None:
            return
        mv = (a.model, a.model_version)
        self._set(self.drift_statistic, mv, (feature, a.statistic), a.value)
        self._set(self.drift_threshold, mv, (feature,), a.threshold)
        if a.p_value is not None:
            self._set(self.drift_p_value, mv, (feature,), a.p_value)

    def _set(self, gauge: Gauge, mv: tuple[str, str], rest: tuple[str, ...], value: float) -> None:
        labels = (*mv, *rest)
        gauge.labels(*labels).set(value)
        self._series.setdefault(mv, set()).add((gauge, labels))
        versions = self._versions.setdefault(mv[0], [])
        if mv[1] in versions:
            return
        versions.append(mv[1])
        while len(versions) > self.max_versions:
            for g, old in self._series.pop((mv[0], versions.pop(0)), set()):
                g.remove(*old)

    def observe_lag(self, lag: dict[tuple[str, int], int]) -> None:
        for (topic, partition), n in lag.items():
            self.lag.labels(topic, str(partition)).set(n)

    def observe_checkpoint(self, seconds: float) -> None:
        self.checkpoint_seconds.observe(seconds)
        self._last_checkpoint = self._clock()
        self.last_checkpoint.set(self._last_checkpoint)

    def _checkpoint_age(self) -> float:
        return 0.0 if self._last_checkpoint is None else max(0.0, self._clock() - self._last_checkpoint)

    # -- the control plane and the retrain worker ------------------------------------------------
    def observe_incidents(self, incidents: Iterable[Incident]) -> None:
        """Count each incident once, in its latest state and severity."""
        for inc in incidents:
            now = (inc.model, inc.kind, inc.status, inc.severity)
            before = self._incident_state.get(inc.incident_id)
            if before == now:
                continue
            if before is not None:
                self.incidents.labels(*before).dec()
            self.incidents.labels(*now).inc()
            self._incident_state[inc.incident_id] = now

    def observe_retrains(self, outcomes: Iterable[RetrainOutcome]) -> None:
        for o in outcomes:
            self.retrains.labels(o.model, o.status).inc()

    # -- reading back ----------------------------------------------------------------------------
    def value(self, name: str, **labels: str) -> float | None:
        """The current value of one series (None: not exported), for tests and doctests."""
        return self.registry.get_sample_value(name, labels)

    def serve(self, port: int, host: str = "127.0.0.1") -> MetricsServer:
        """Serve ``/metrics`` on ``host``:``port`` (0: a free port, see :attr:`MetricsServer.port`)."""
        return MetricsServer(self.registry, port, host)
