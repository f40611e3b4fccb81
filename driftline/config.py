"""Configuration: frozen pydantic models, read from the environment only at the entry point.

``DriftlineSettings()`` reads ``DRIFTLINE_*`` variables (nested with ``__``, e.g.
``DRIFTLINE_MONITOR__WINDOW_SIZE=500``); library code takes the models as arguments and never
reads the environment itself. A bad value fails at start-up with a message that says what to fix.

>>> KafkaSettings(bootstrap_servers="127.0.0.1:9092").client_config()["bootstrap.servers"]
'127.0.0.1:9092'
>>> MonitorSettings(window_size=0)
Traceback (most recent call last):
...
driftline.errors.ConfigError: monitor.window_size: Input should be greater than or equal to 50 (got 0)
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from driftline.errors import ConfigError
from driftline.observability_settings import ObservabilitySettings

__all__ = [
    "DriftlineSettings",
    "KafkaSettings",
    "MonitorSettings",
    "RetrainSettings",
    "RoutingSettings",
    "StateSettings",
    "Topics",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    _section: str = ""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(_explain(exc, _SECTIONS.get(type(self).__name__, ""))) from None


class Topics(_Frozen):
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


def _at_least_32(v: SecretStr) -> SecretStr:
    if len(v.get_secret_value()) < 32:
        raise ValueError(
            "use at least 32 characters, e.g. python -c 'import secrets; print(secrets.token_hex(32))'"
        )
    return v


Key = Annotated[SecretStr, AfterValidator(_at_least_32)]
"""A signing key: secret, and long enough that guessing it is not an option."""

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaSettings(_Frozen):
    """How every component reaches Kafka: one block for the SDK, the processor, the worker and the
    faust control plane. Names follow librdkafka's (``ssl_ca_location`` -> ``ssl.ca.location``)."""

    bootstrap_servers: str
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = Field(default=None, description="PEM file of the CA that signed the broker")
    ssl_certificate_location: str | None = Field(default=None, description="client certificate (mutual TLS)")
    ssl_key_location: str | None = Field(default=None, description="client private key (mutual TLS)")
    ssl_key_password: SecretStr | None = None
    ssl_check_hostname: bool = Field(default=True, description="verify the broker's name against its cert")
    partitions: int = Field(default=3, ge=1, description="partitions for topics Driftline creates")
    replication_factor: int = Field(
        default=1, ge=1, description="for topics Driftline creates (3 in production)"
    )

    @field_validator("bootstrap_servers")
    @classmethod
    def _hosts(cls, v: str) -> str:
        for host in v.split(","):
            if ":" not in host.strip():
                raise ValueError(f"{host!r} is not HOST:PORT (e.g. 127.0.0.1:9092)")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSettings:
        sasl = self.security_protocol.startswith("SASL_")
        if sasl and not (self.sasl_mechanism and self.sasl_username and self.sasl_password):
            raise ValueError(
                f"security_protocol={self.security_protocol} needs sasl_mechanism, sasl_username and "
                "sasl_password (DRIFTLINE_KAFKA__SASL_MECHANISM, __SASL_USERNAME, __SASL_PASSWORD)"
            )
        if not sasl and self.sasl_mechanism:
            raise ValueError(
                f"sasl_mechanism is set but security_protocol={self.security_protocol}: "
                "use SASL_SSL (or SASL_PLAINTEXT on a trusted network)"
            )
        for key in ("ssl_ca_location", "ssl_certificate_location", "ssl_key_location"):
            path = getattr(self, key)
            if path is not None and not Path(path).is_file():
                raise ValueError(f"{key}: {path!r} is not a readable file")
        if (self.ssl_certificate_location is None) != (self.ssl_key_location is None):
            raise ValueError("mutual TLS needs both ssl_certificate_location and ssl_key_location")
        return self

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def client_config(self) -> dict[str, Any]:
        """The librdkafka configuration these settings map to."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
            conf["sasl.username"] = self.sasl_username or ""
            conf["sasl.password"] = self.sasl_password.get_secret_value() if self.sasl_password else ""
        if self.uses_tls:
            conf["ssl.endpoint.identification.algorithm"] = "https" if self.ssl_check_hostname else "none"
            for key in ("ssl_ca_location", "ssl_certificate_location", "ssl_key_location"):
                if getattr(self, key):
                    conf[key.replace("_", ".")] = getattr(self, key)
            if self.ssl_key_password:
                conf["ssl.key.password"] = self.ssl_key_password.get_secret_value()
        return conf

    def ssl_context(self) -> ssl.SSLContext | None:
        """The same TLS settings as a Python SSL context (for the faust / aiokafka control plane)."""
        if not self.uses_tls:
            return None
        ctx = ssl.create_default_context(cafile=self.ssl_ca_location)
        ctx.check_hostname = self.ssl_check_hostname
        if self.ssl_certificate_location and self.ssl_key_location:
            password = self.ssl_key_password.get_secret_value() if self.ssl_key_password else None
            ctx.load_cert_chain(self.ssl_certificate_location, self.ssl_key_location, password)
        return ctx


class MonitorSettings(_Frozen):
    """The stream processor's monitoring parameters (per model version)."""

    # what the models predict: detectors.get_task(task) says what "correct" means, which metrics
    # are kept and what the label-free estimate is
    task: Literal["binary"] = "binary"
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


class RoutingSettings(_Frozen):
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


class RetrainSettings(_Frozen):
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


class StateSettings(_Frozen):
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


class DriftlineSettings(BaseSettings):
    """All settings, read from ``DRIFTLINE_*`` environment variables by the CLI entry point."""

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

    @classmethod
    def load(cls, **overrides: Any) -> DriftlineSettings:
        try:
            return cls(**overrides)
        except ValidationError as exc:
            raise ConfigError(_explain(exc, "")) from None

    def to_env(self) -> dict[str, str]:
        """These settings as ``DRIFTLINE_*`` variables (secrets included: for a child process's
        environment, never for argv or logs); ``DriftlineSettings()`` there reads the same values."""
        env: dict[str, str] = {}
        for section, model in self:
            if model is None:
                continue
            for key, value in model:
                if isinstance(value, SecretStr):
                    value = value.get_secret_value()
                if value is None:
                    continue
                text = value if isinstance(value, str) else json.dumps(value)
                env[f"DRIFTLINE_{section.upper()}__{key.upper()}"] = text
        return env


_SECTIONS = {"Topics": "topics", "KafkaSettings": "kafka", "MonitorSettings": "monitor"}
_SECTIONS |= {"RoutingSettings": "routing", "RetrainSettings": "retrain", "StateSettings": "state"}


def _explain(exc: ValidationError, section: str) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in ((section,) if section else ()) + tuple(err["loc"]))
        got = _redact(err.get("input"), err["loc"][-1] if err["loc"] else "")
        parts.append(f"{loc}: {err['msg']} (got {got!r})")
    return "; ".join(parts)


_SECRET_KEYS = ("password", "secret", "token", "key", "url")  # webhook URLs carry their tokens


def _redact(value: Any, key: object = "") -> Any:
    """The offending input with every secret-looking value masked: errors are printed and logged."""
    if isinstance(value, dict):
        return {k: _redact(v, k) for k, v in value.items()}
    if value is not None and any(word in str(key).lower() for word in _SECRET_KEYS):
        return "**********"
    return value
