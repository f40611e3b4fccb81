"""Configuration: frozen pydantic models, read from a spec file and the environment at the entry point.

``DriftlineSettings.load(config=FILE)`` reads a YAML file (the monitor spec: ``models:`` and any other
section) and then ``DRIFTLINE_*`` variables (nested with ``__``, e.g.
``DRIFTLINE_MONITOR__WINDOW_SIZE=500``), which override the file; library code takes the models as
arguments and never reads the environment itself. A bad value, an unknown key or an unknown section
(``DRIFTLINE_MONITR__WINDOW_SIZE``) fails at start-up with a message that names it and says what to fix.

>>> KafkaSettings(bootstrap_servers="127.0.0.1:9092").client_config()["bootstrap.servers"]
'127.0.0.1:9092'
>>> MonitorSettings(window_size=0)
Traceback (most recent call last):
...
driftline.errors.ConfigError: monitor.window_size: Input should be greater than or equal to 50 (got 0)
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from driftline.errors import ConfigError
from driftline.kafka_settings import KafkaSettings
from driftline.observability_settings import ObservabilitySettings
from driftline.settings_base import Key, Section, enclosing, explain
from driftline.spec import ModelSpec
from driftline.spec_file import SpecFileSource, check_env_sections, reading, revealed

__all__ = [
    "DriftlineSettings",
    "KafkaSettings",
    "MonitorSettings",
    "RetrainSettings",
    "RoutingSettings",
    "StateSettings",
    "Topics",
    "monitor_settings_for",
]


class Topics(Section, section="topics"):
    """Topic names; every component reads them from here."""

    predictions: str = "driftline.predictions"
    labels: str = "driftline.labels"
    scored: str = "driftline.scored"
    metrics: str = "driftline.metrics"
    alerts: str = "driftline.alerts"
    notifications: str = "driftline.notifications"  # alerts after routing (dedup, cooldown)
    retrain: str = "driftline.retrain"
    models: str = "driftline.models"
    dlq: str = "driftline.dlq"
    state: str = "driftline.state"  # the processor's changelog (compacted): snapshots per input partition
    alert_actions: str = "driftline.alert-actions"  # on-call's acks and silences (driftline alerts)

    def all(self) -> list[str]:
        return list(self.model_dump().values())


class MonitorSettings(Section, section="monitor"):
    """The stream processor's monitoring parameters (per model version)."""

    # what the models predict: detectors.get_task(task) says what "correct" means, which metrics
    # are kept and what the label-free estimate is
    task: Literal["binary", "multiclass", "regression"] = "binary"
    reference_size: int = Field(default=2000, ge=100)
    window_size: int = Field(default=1000, ge=50)
    # per model, across all its features; 0.1 = one false data-drift alert per ~1M predictions
    false_alarms_per_100k: float | None = Field(
        default=None,
        gt=0,
        description="per model, across all its features; None: the detectors' default, "
        "detectors.calibration.DEFAULT_FALSE_ALARMS_PER_100K (one false data-drift alert per ~1M events)",
    )
    performance_window: int = Field(default=1000, ge=50)
    metrics_every: int = Field(default=500, ge=1)
    error_detector: str | None = Field(
        default=None, description="None: detectors.registry.RECOMMENDED_ERROR_DETECTOR (adwin)"
    )
    error_detector_params: dict[str, float] | None = Field(
        default=None, description="None: the detector's recommended parameters (detectors.recommended_params)"
    )

    performance_drop: float = Field(
        default=0.1, gt=0, lt=1, description="accuracy drop vs baseline that alerts"
    )
    label_lateness_s: float = Field(
        default=3600.0, gt=0, description="how long a prediction waits for its label"
    )
    max_future_skew_s: float = Field(
        default=300.0,
        gt=0,
        description="an event time further ahead of its record's timestamp (or, without one, of the "
        "model's newest event time) is dead-lettered: it could otherwise move the join's watermark",
    )
    max_output_bytes: int = Field(
        default=900_000,
        ge=100_000,
        description="largest scored event sent (under Kafka's 1 MB message limit); a larger one is "
        "sent without its prediction's features, flagged features_dropped",
    )
    max_pending: int = Field(default=1_000_000, ge=1000)
    max_versions: int = Field(default=4, ge=1, description="versions per model whose state is kept")
    require_announcement: bool = Field(
        default=True,
        description="monitor only the (model, version) pairs announced on the models topic; predictions "
        "for others are dead-lettered. False accepts every version, and a stream of invented versions "
        "can then evict the live version's state (max_versions)",
    )


class RoutingSettings(Section, section="routing"):
    """Alert routing (control plane): dedup, cooldown, and which alert types trigger a retrain."""

    cooldown_s: float = Field(default=600.0, ge=0)
    retrain_on: tuple[str, ...] = ("concept_drift", "performance")
    sinks: tuple[str, ...] = Field(
        default=("log",),
        description="alert sinks by name: log, topic, webhook, slack, alertmanager (from the environment: "
        "a JSON list)",
    )
    webhook_url: SecretStr | None = Field(
        default=None, description="where the 'webhook' sink POSTs alerts (https; its path may hold a token)"
    )
    webhook_secret: Key | None = Field(
        default=None,
        description="HMAC-SHA256 key signing every webhook POST (>= 32 characters; the receiver has it too)",
    )
    webhook_allow_http_localhost: bool = Field(
        default=False, description="accept plain http:// to 127.0.0.1, ::1 or localhost (local testing)"
    )
    sink_topic: str | None = Field(
        default=None,
        description="where the 'topic' sink publishes delivered alerts (notifications always get them)",
    )
    slack_webhook_url: SecretStr | None = Field(
        default=None, description="the 'slack' sink's incoming-webhook URL (https; it holds the hook's token)"
    )
    alertmanager_url: str | None = Field(
        default=None,
        description="the 'alertmanager' sink's Alertmanager base URL, e.g. http://alertmanager:9093 "
        "(incidents are POSTed to /api/v2/alerts)",
    )
    outbox_dir: str = Field(
        default="",
        description="where HTTP sinks keep undelivered notifications (sqlite), retried after a restart; "
        "'' keeps them in memory only",
    )
    retry_max_s: float = Field(default=30.0, gt=0, description="longest wait between delivery attempts")
    resolve_after: int = Field(
        default=3,
        ge=1,
        description="an incident resolves after this many consecutive healthy metric points of the "
        "model's current version (hysteresis)",
    )
    resolve_margin: float = Field(
        default=0.02,
        ge=0,
        description="healthy = the metric this far on the good side of the incident's floor",
    )
    health_metric: str = Field(default="accuracy", description="the metric that says a version is healthy")
    runbook_url: str = Field(
        default="https://driftline.readthedocs.io/runbooks/{kind}",
        description="runbook link of every incident; {model}, {version} and {kind} are filled in",
    )
    model_sinks: dict[str, tuple[str, ...]] = Field(
        default={},
        description="per model, the sinks its notifications go to instead of `sinks` (the spec's "
        "models.<m>.routing.sinks)",
    )
    runbooks: dict[str, str] = Field(
        default={}, description="per-model runbook URL templates (model name -> template)"
    )
    reports_dir: str = Field(
        default="", description="where evidence reports are written ('' = no Evidently reports)"
    )
    store_dir: str = Field(
        default="",
        description="embedded mode: where the control plane writes notifications and reads on-call's "
        "acks and silences (driftline alerts --store); '' = nowhere",
    )


class RetrainSettings(Section, section="retrain"):
    train_window: int = Field(default=3000, ge=100, description="most recent labelled events to refit on")
    min_samples: int = Field(
        default=1000, ge=50, description="labelled events after the drift needed to refit"
    )
    holdout_fraction: float = Field(default=0.3, gt=0, lt=0.9)
    min_improvement: float = Field(
        default=0.01, ge=0, description="challenger must beat champion by this much"
    )
    cooldown_s: float = Field(default=60.0, ge=0)
    registry_dir: str = ".driftline/registry"
    registry: Literal["local", "mlflow"] = Field(
        default="local",
        description="model registry backend: 'local' (a directory) or 'mlflow' (tracking + model "
        "registry; pip install 'driftline[mlflow]')",
    )
    mlflow_tracking_uri: str = Field(
        default="",
        description="MLflow tracking URI (sqlite:///..., http://host:port); default: "
        "sqlite:///<registry_dir>/mlflow.db",
    )
    artifact_cache_dir: str = Field(
        default="",
        description="where MLflow artifacts are cached by SHA-256; default: <registry_dir>/artifact-cache",
    )
    confidence: float = Field(
        default=0.95,
        ge=0.5,
        lt=1.0,
        description="one-sided confidence of the bound that must clear zero to promote (and to roll back)",
    )
    shadow_labelled: int = Field(
        default=0,
        ge=0,
        description="labelled shadow predictions a winning challenger needs before promotion (0: no shadow)",
    )
    rollback: bool = Field(default=True, description="roll back a promoted version that regresses live")
    rollback_min_labelled: int = Field(
        default=200, ge=20, description="labelled events of the new version before it may be rolled back"
    )


class StateSettings(Section, section="state"):
    """Where the processor keeps its checkpoints, and the key that authenticates them."""

    dir: str = Field(default=".driftline/state", description="checkpoint directory ('' = no checkpoints)")
    checkpoint_key: Key | None = Field(
        default=None,
        description="HMAC key for checkpoints (>= 32 characters); default: a key file made in the directory",
    )
    store: Literal["local", "changelog"] = Field(
        default="local",
        description="where snapshots live: 'local' (the directory) or 'changelog' (the compacted "
        "topics.state: a partition's state follows it to another machine; needs checkpoint_key)",
    )
    exactly_once: bool = Field(
        default=True,
        description="Kafka: outputs, input offsets and snapshots commit in one transaction "
        "(false: at-least-once)",
    )
    transactional_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Kafka transactional.id of this processor instance: the same across its restarts, "
        "its own per instance; default: <group>-<hostname>",
    )


def monitor_settings_for(monitor: MonitorSettings, spec: ModelSpec | None) -> MonitorSettings:
    """``monitor`` with ``spec``'s own settings over it (``spec.monitor_overrides()``); ``monitor``
    itself for a model without a spec. One place for the merge, so the processor, the CLI and
    ``config show`` agree on what a model runs with.

    >>> spec = ModelSpec(features={"x": "numeric"}, window_size=200, reference={"first": 500})
    >>> merged = monitor_settings_for(MonitorSettings(), spec)
    >>> merged.window_size, merged.reference_size, merged.performance_window
    (200, 500, 1000)
    """
    if spec is None:
        return monitor
    return MonitorSettings(**{**monitor.model_dump(), **spec.monitor_overrides()})


class DriftlineSettings(BaseSettings):
    """All settings: the spec file's, under the ``DRIFTLINE_*`` environment variables (see the module)."""

    model_config = SettingsConfigDict(
        env_prefix="DRIFTLINE_", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    kafka: KafkaSettings | None = None
    topics: Topics = Topics()
    monitor: MonitorSettings = MonitorSettings()
    routing: RoutingSettings = RoutingSettings()
    retrain: RetrainSettings = RetrainSettings()
    state: StateSettings = StateSettings()
    observability: ObservabilitySettings = ObservabilitySettings()
    models: dict[str, ModelSpec] = Field(
        default={}, description="the monitor spec: each model's task, features, reference, segments..."
    )

    @model_validator(mode="after")
    def _route_models(self) -> DriftlineSettings:
        """Each model's ``routing`` (sinks, runbook) becomes part of the routing block the control
        plane reads (``routing.model_sinks``, ``routing.runbooks``)."""
        sinks = {m: s.routing.sinks for m, s in self.models.items() if s.routing.sinks is not None}
        books = {m: s.routing.runbook for m, s in self.models.items() if s.routing.runbook is not None}
        if sinks or books:
            routing = self.routing.model_copy(
                update={
                    "model_sinks": {**self.routing.model_sinks, **sinks},
                    "runbooks": {**self.routing.runbooks, **books},
                }
            )
            object.__setattr__(self, "routing", routing)  # frozen: set once, while validating
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # explicit arguments, then the environment, then the spec file
        return init_settings, env_settings, SpecFileSource(settings_cls)

    @classmethod
    def load(cls, config: str | None = None, **overrides: Any) -> DriftlineSettings:
        """Settings from ``config`` (a YAML spec file; None: ``$DRIFTLINE_CONFIG`` if set), the
        environment, and ``overrides`` (which win)."""
        check_env_sections(set(cls.model_fields))
        try:
            with reading(config) as source, enclosing():
                return cls(**overrides)
        except ValidationError as exc:
            raise ConfigError(source.where() + explain(exc, "", cls)) from None

    def kafka_for(self, who: str) -> KafkaSettings:
        """The Kafka section, or a :class:`ConfigError` saying that ``who`` needs it and how to give it."""
        if self.kafka is None:
            raise ConfigError(
                f"{who} needs a Kafka broker: pass --bootstrap-servers HOST:PORT or set "
                "DRIFTLINE_KAFKA__BOOTSTRAP_SERVERS"
            )
        return self.kafka

    def monitor_for(self, model: str) -> MonitorSettings:
        """The monitor settings of ``model``: the global block with the model's spec over it."""
        return monitor_settings_for(self.monitor, self.models.get(model))

    def to_env(self) -> dict[str, str]:
        """These settings as ``DRIFTLINE_*`` variables (secrets included: for a child process's
        environment, never for argv or logs); ``DriftlineSettings()`` there reads the same values."""
        env: dict[str, str] = {}
        for section, model in self:
            if model is None or model == {}:
                continue
            if section == "models":
                env["DRIFTLINE_MODELS"] = json.dumps(revealed(model))
                continue
            for key, value in model:
                if isinstance(value, SecretStr):
                    value = value.get_secret_value()
                if value is None:
                    continue
                text = value if isinstance(value, str) else json.dumps(value)
                env[f"DRIFTLINE_{section.upper()}__{key.upper()}"] = text
        return env
