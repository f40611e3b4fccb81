"""Event contracts: the typed, versioned events every Driftline component exchanges.

Events are plain JSON on the wire (any client -- kcat, Java, Go -- can produce them) and are
validated at every boundary by :func:`decode`. Each event carries ``schema_version``; a reader
accepts the versions it knows and rejects others with a clear reason.

>>> p = Prediction(prediction_id="p-1", model="churn", model_version="1", event_time=1.5,
...                features={"age": 41.0, "plan": "gold"}, prediction=1, score=0.83)
>>> raw = encode(p)
>>> decode(Prediction, raw) == p
True
>>> decode(Label, b'{"prediction_id": "p-1", "model": "churn", "event_time": "soon", "label": 1}')
Traceback (most recent call last):
...
driftline.errors.InvalidEvent: Label: Expected `float`, got `str` - at `$.event_time`
"""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import msgspec

from driftline.errors import InvalidEvent
from driftline.names import (
    SAFE_NAME_PATTERN,
    SAFE_NAMES_SEEN,
    check_safe_name,
    is_safe_name,
    unsafe_feature_names,
)

if TYPE_CHECKING:
    from driftline.transport import Record

__all__ = [
    "MAX_DEAD_LETTER_BYTES",
    "MAX_CLASSES",
    "MAX_FEATURES",
    "SAFE_NAME_PATTERN",
    "SCHEMA_VERSION",
    "Alert",
    "AlertAction",
    "AlertType",
    "DeadLetter",
    "Event",
    "Incident",
    "IncidentKind",
    "Label",
    "Notification",
    "Metric",
    "ModelUpdate",
    "Prediction",
    "RetrainOutcome",
    "RetrainRequest",
    "Scored",
    "Window",
    "alert_id_for",
    "alerts_in",
    "decode_notification",
    "is_safe_name",
    "unsafe_feature_names",
    "decode",
    "encode",
]

SCHEMA_VERSION = 1

NonEmpty = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
Probability = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]

MAX_FEATURES = 1000
MAX_STRING = 1024
MAX_DEAD_LETTER_BYTES = 64 * 1024  # of a record's value kept in its dead letter
MAX_DEAD_LETTER_KEY = 1024  # of a record's key kept in its dead letter
MAX_REASON = 2000  # characters of a dead letter's reason
MAX_CLASSES = 256  # class probabilities one prediction may carry
ClassName = Annotated[str, msgspec.Meta(max_length=MAX_STRING)]
Probabilities = Annotated[dict[ClassName, Probability], msgspec.Meta(max_length=MAX_CLASSES)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]  # checked as a SafeName after decoding
FeatureValue = float | Annotated[str, msgspec.Meta(max_length=MAX_STRING)] | bool | None
Features = Annotated[dict[str, FeatureValue], msgspec.Meta(max_length=MAX_FEATURES)]


LabelValue = str | int | float | bool
AlertType = Literal["data_drift", "prediction_drift", "multivariate_drift", "concept_drift", "performance"]


class _Event(msgspec.Struct, frozen=True, kw_only=True):
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            _unsupported(self.schema_version)


def _unsupported(version: int) -> None:
    raise ValueError(f"schema_version {version} is not supported (this reader knows {SCHEMA_VERSION})")


# The events a processor decodes per record and holds while they wait to be joined (Prediction, Label,
# Scored) are not tracked by the cyclic garbage collector (gc=False): they hold atoms and dicts of atoms,
# never a cycle. Tracked, each collection walked every one of them: `driftline process` ran ~1.5x slower.


class Prediction(_Event, frozen=True, kw_only=True, gc=False):
    """One prediction a model served. ``score``: binary, the positive-class probability; multiclass, the
    predicted class's; regression, none. ``probabilities`` (multiclass, optional): each class's, at most
    :data:`MAX_CLASSES`, each in [0, 1]. Sent without a ``score``, the score is derived here as their
    maximum (on construction and decoding: every reader sees the same score); a sent score is kept."""

    prediction_id: NonEmpty
    model: Name  # a SafeName: checked in __post_init__, where a name seen before costs a set hit
    model_version: Name
    event_time: float
    features: Features
    prediction: LabelValue
    score: Probability | None = None
    probabilities: Probabilities | None = None

    def __post_init__(self) -> None:  # per decoded record: the checks inline, ~0.3 us less than calls
        if self.schema_version != SCHEMA_VERSION:
            _unsupported(self.schema_version)
        if self.model not in SAFE_NAMES_SEEN:
            check_safe_name(self.model, "model")
        if self.model_version not in SAFE_NAMES_SEEN:
            check_safe_name(self.model_version, "model_version")
        if self.probabilities and self.score is None:
            msgspec.structs.force_setattr(self, "score", max(self.probabilities.values()))


class Label(_Event, frozen=True, kw_only=True, gc=False):
    """The ground truth for one prediction, usually arriving later."""

    prediction_id: NonEmpty
    model: Name  # a SafeName, checked as Prediction's is
    event_time: float
    label: LabelValue

    def __post_init__(self) -> None:  # as Prediction's
        if self.schema_version != SCHEMA_VERSION:
            _unsupported(self.schema_version)
        if self.model not in SAFE_NAMES_SEEN:
            check_safe_name(self.model, "model")


class Scored(_Event, frozen=True, kw_only=True, gc=False):
    """A prediction joined with its label (whether it was right is the task's to say:
    :meth:`detectors.tasks.Task.correct`)."""

    prediction: Prediction
    label: LabelValue
    label_time: float
    index: int = -1  # the prediction's arrival index at the processor, per model
    features_dropped: bool = False  # the prediction's features were left out to keep the event small


class Window(msgspec.Struct, frozen=True, kw_only=True):
    """The span of events a statistic covers: arrival indices per model, and event times."""

    start_index: int
    end_index: int
    start_time: float
    end_time: float
    n: int


class Metric(_Event, frozen=True, kw_only=True):
    model: str
    model_version: str
    name: str
    value: float
    window: Window
    segment: dict[str, str] | None = None


class Alert(_Event, frozen=True, kw_only=True):
    """What drifted, for whom, by how much, and over which window."""

    alert_id: str
    type: AlertType
    model: str
    model_version: str
    feature: str | None
    statistic: str
    value: float
    threshold: float
    window: Window
    detected_at_index: int
    detected_at_time: float
    p_value: float | None = None
    effect: float | None = None
    direction: str | None = None
    # feature drift: PSI and the category whose share moved most (``effect``) over ``window``, which
    # starts at the estimated change point; multivariate drift: the features contributing most
    psi: float | None = None
    category: str | None = None
    contributors: list[str] = []
    reference: Window | None = None
    severity: Literal["info", "warning", "critical"] = "warning"
    message: str = ""
    before: float | None = None  # the monitored quantity over ``reference`` (before the change) ...
    after: float | None = None  # ... and after it (concept drift: error rates; performance: the metric)
    segment: dict[str, str] | None = None  # None: all of the version's traffic


class RetrainRequest(_Event, frozen=True, kw_only=True):
    """Emitted by alert routing when an alert should trigger a retrain."""

    request_id: str
    model: str
    model_version: str
    alert: Alert


class RetrainOutcome(_Event, frozen=True, kw_only=True):
    """What became of one retrain request. The retrain worker records every outcome in the model
    registry (a replayed request is skipped) and publishes the ones on-call must act on -- a request
    that can never succeed, a training that kept failing -- on ``topics.notifications``, where routed
    alerts go: a reader of that topic tells the two apart by decoding (an outcome has ``status``).
    ``shadow``: the challenger won the holdout and now serves in shadow until its live evidence
    decides; ``rolled_back``: a promoted version regressed live and its predecessor is champion again
    (``version`` is the bad one; on-call is notified)."""

    request_id: str
    model: str
    status: Literal["promoted", "rejected", "skipped", "failed", "shadow", "rolled_back"]
    reason: str
    version: str | None = None
    metrics: dict[str, float] = {}
    detected_at_index: int = -1
    detected_at_time: float = 0.0  # the alert's: the per-model cooldown is measured from it
    trained_through_index: int = -1


class ModelUpdate(_Event, frozen=True, kw_only=True):
    """A model version on the models topic (keyed by model): ``kind="promoted"`` -- it is the new
    champion, serving hot-reloads it; ``kind="registered"`` -- it exists and may serve predictions,
    but serving keeps its version (with ``shadow=True``: it is the challenger of a shadow period,
    serving scores every request with it too and logs those as shadow predictions);
    ``kind="rollback"`` -- ``version`` (a former champion) replaces ``previous_version``, which
    regressed live: serving hot-reloads it as it would a promotion. The processor monitors only
    versions announced.

    One event with a ``kind`` rather than a second event type: every reader of the topic keeps
    decoding one contract, and an update from before ``kind`` (or ``shadow``) existed reads as
    "promoted" (not in shadow).
    """

    model: str
    version: str
    kind: Literal["registered", "promoted", "rollback"] = "promoted"
    shadow: bool = False
    previous_version: str | None
    artifact_uri: str  # informational: serving loads by (model, version) from its registry
    artifact_sha256: str = ""  # the artifact's digest; serving refuses bytes that do not match
    metrics: dict[str, float] = {}
    trained_on: Window | None = None
    validated_on: Window | None = None
    triggered_by: str | None = None
    created_at: float = 0.0
    # event time from which serving uses it (the loop's event time when the worker decided): the same
    # prediction switches in process and on Kafka; None: at once, as read
    effective_from: float | None = None


class DeadLetter(_Event, frozen=True, kw_only=True):
    """A record that could not be processed: where it came from, why, and its original bytes.

    Bounded whatever the record: ``original_b64`` holds at most the first
    :data:`MAX_DEAD_LETTER_BYTES` of the value (``truncated`` says when it is only a prefix;
    ``original_size`` and ``original_sha256`` are the whole value's, to find or match it), the key
    at most its first :data:`MAX_DEAD_LETTER_KEY` bytes, the reason at most :data:`MAX_REASON`
    characters -- so a dead letter of a 1 MB record is about 90 KB, never over a topic's limit.
    """

    stage: str
    reason: str
    error_type: str
    topic: str
    partition: int
    offset: int
    original_b64: str
    key_b64: str | None = None
    original_size: int = -1  # bytes of the whole value (-1: a dead letter from before this field)
    original_sha256: str = ""
    truncated: bool = False  # original_b64 (or key_b64) holds a prefix only

    @classmethod
    def of(
        cls,
        *,
        stage: str,
        exc: BaseException,
        value: bytes,
        topic: str,
        partition: int = -1,
        offset: int = -1,
        key: bytes | None = None,
        reason: str | None = None,
    ) -> DeadLetter:
        """``reason``: instead of ``str(exc)`` (which, when empty, becomes the exception's type)."""
        why = reason if reason is not None else (str(exc) or type(exc).__name__)
        if len(why) > MAX_REASON:
            why = why[: MAX_REASON - 1] + "\u2026"
        cut = len(value) > MAX_DEAD_LETTER_BYTES or (key is not None and len(key) > MAX_DEAD_LETTER_KEY)
        return cls(
            stage=stage,
            reason=why,
            error_type=type(exc).__name__,
            topic=topic[:MAX_STRING],
            partition=partition,
            offset=offset,
            original_b64=base64.b64encode(value[:MAX_DEAD_LETTER_BYTES]).decode("ascii"),
            key_b64=None if key is None else base64.b64encode(key[:MAX_DEAD_LETTER_KEY]).decode("ascii"),
            original_size=len(value),
            original_sha256=hashlib.sha256(value).hexdigest(),
            truncated=cut,
        )

    @classmethod
    def of_record(
        cls, record: Record, exc: BaseException, stage: str, reason: str | None = None
    ) -> DeadLetter:
        """The dead letter for a record that failed at ``stage``: where it came from, why, its bytes.

        >>> from driftline.transport import Record
        >>> d = DeadLetter.of_record(Record("t", b"{", key=b"m", offset=4), InvalidEvent("bad"), "decode")
        >>> d.topic, d.partition, d.offset, d.reason, d.error_type, d.original, d.truncated
        ('t', 0, 4, 'bad', 'InvalidEvent', b'{', False)
        >>> big = DeadLetter.of_record(Record("t", b"x" * 2**20), InvalidEvent("too big"), "decode")
        >>> big.original_size, len(big.original), big.truncated, len(encode(big)) < 100_000
        (1048576, 65536, True, True)
        """
        return cls.of(
            stage=stage,
            exc=exc,
            value=record.value,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            reason=reason,
        )

    @property
    def original(self) -> bytes:
        return base64.b64decode(self.original_b64)


Event = (
    Prediction | Label | Scored | Metric | Alert | RetrainRequest | RetrainOutcome | ModelUpdate | DeadLetter
)
E = TypeVar("E", bound=_Event)

_ENCODER = msgspec.json.Encoder()
_DECODERS: dict[type, msgspec.json.Decoder[Any]] = {}


def encode(event: _Event) -> bytes:
    """Encode an event as compact JSON bytes."""
    return _ENCODER.encode(event)


def decode(kind: type[E], raw: bytes) -> E:
    """Decode and validate one event; raise :class:`InvalidEvent` with a precise reason."""
    dec = _DECODERS.get(kind)
    if dec is None:
        dec = _DECODERS[kind] = msgspec.json.Decoder(kind)
    try:
        return dec.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as exc:
        raise InvalidEvent(f"{kind.__name__}: {exc}") from None
    except Exception as exc:  # whatever else a payload can cause (deep nesting: RecursionError)
        raise InvalidEvent(f"{kind.__name__}: undecodable ({type(exc).__name__}: {str(exc)[:200]})") from None


def alert_id_for(*parts: object) -> str:
    """A deterministic alert id: a replayed detection yields the same id, so it is deduplicated."""
    h = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=10)
    return h.hexdigest()


# incidents and the notifications topic's reader, kept in their own module (re-exported here)
from driftline.notifications import (  # noqa: E402
    AlertAction,
    Incident,
    IncidentKind,
    Notification,
    alerts_in,
    decode_notification,
)
