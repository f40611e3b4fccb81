"""Serving without a shared disk: a real ``mlflow server`` keeps the store and the artifacts in a
folder only it sees; a "worker" process registers versions with lineage over HTTP, and a serving
process with its own empty folder and cache loads the champion over HTTP, refuses bytes whose digest
does not match, and reuses its cache once the server has lost the file."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow_kit import HAS_MLFLOW, SKIP_REASON, mlflow_server

from driftline.config import RetrainSettings
from driftline.registry import open_registry

pytestmark = pytest.mark.skipif(not HAS_MLFLOW, reason=SKIP_REASON)

WORKER = """
import json, sys
import numpy as np
from sklearn.dummy import DummyClassifier
from driftline.config import RetrainSettings
from driftline.registry import open_registry
from driftline.registry_lineage import lineage_of

url = sys.argv[1]
reg = open_registry(RetrainSettings(registry="mlflow", mlflow_tracking_uri=url), "registry")
out = {}
for version, constant, promote in (("1", 0, True), ("2", 1, True), ("3", 0, False)):
    y = [0, 1, 0, 1] if version != "3" else [0, 1, 1, 1]  # v3 differs from v1 in its bytes too
    model = DummyClassifier(strategy="constant", constant=constant).fit(np.zeros((4, 1)), y)
    rows = [{"x": float(i), "label": constant} for i in range(4)]
    mv = reg.register(
        "churn", model, promote=promote,
        metrics={"challenger_accuracy": 0.9, "challenger_accuracy_ci_low": 0.85},
        trained_on={"start_index": 0, "end_index": 4, "start_time": 0.0, "end_time": 4.0, "n": 4},
        triggered_by=f"drift:churn:{version}",
        lineage=lineage_of(rows, trainer="refit_clone", estimator=model),
    )
    out[mv.version] = mv.sha256
reg.record_outcome("churn", "drift:churn:2", {"status": "promoted", "version": "2"})
print(json.dumps(out))
"""

SERVING = """
import json, sys
from pathlib import Path
import pandas as pd
from driftline.config import RetrainSettings
from driftline.contracts import ModelUpdate
from driftline.registry import open_registry
from producers.serving import ModelServer

url, updates = sys.argv[1], json.loads(sys.argv[2])
settings = RetrainSettings(registry="mlflow", mlflow_tracking_uri=url, artifact_cache_dir="cache")
server = ModelServer("churn", open_registry(settings, "registry"))
for version, sha in updates:
    server.apply(ModelUpdate(model="churn", version=version, previous_version=server.version,
                             artifact_uri=f"models:/churn/{version}", artifact_sha256=sha))
prediction, _ = server.predict(pd.DataFrame({"x": [0.0, 1.0, 2.0]}))
print(json.dumps({"version": server.version, "prediction": prediction.tolist(), "refused": server.refused,
                  "cache": sorted(p.name for p in Path("cache").glob("*.joblib"))}))
"""


def _run(script: str, cwd: Path, *args: str) -> tuple[Any, str]:
    """Run ``script`` as its own process in ``cwd``; its last stdout line (JSON) and its log."""
    cwd.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-c", script, *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, dict[str, str]]]:
    """The server, its own folder, and the digests of v1..v3 a worker process registered (v2 champion,
    v3 a candidate)."""
    work = tmp_path_factory.mktemp("mlflow-server")
    with mlflow_server(work) as url:
        digests, _ = _run(WORKER, tmp_path_factory.mktemp("worker"), url)
        assert len(set(digests.values())) == 3
        yield url, work, digests


def _stored(work: Path, sha256: str) -> Path:
    """The server's file holding the artifact whose digest is ``sha256``."""
    from driftline.registry import sha256_of

    return next(p for p in work.glob("artifacts/**/model.joblib") if sha256_of(p) == sha256)


def test_versions_carry_lineage_metrics_and_a_run(
    server: tuple[str, Path, dict[str, str]], tmp_path: Path
) -> None:
    url, _, digests = server
    reg: Any = open_registry(RetrainSettings(registry="mlflow", mlflow_tracking_uri=url), tmp_path)
    assert [(v.version, v.stage) for v in reg.versions("churn")] == [
        ("1", "archived"),
        ("2", "champion"),
        ("3", "candidate"),
    ]
    v2 = reg.champion("churn")
    assert v2.sha256 == digests["2"] and v2.artifact_uri == "models:/churn/2"
    assert v2.triggered_by == "drift:churn:2" and v2.trained_on["n"] == 4
    assert v2.metrics["challenger_accuracy_ci_low"] == 0.85
    assert len(v2.lineage["data_sha256"]) == 64 and v2.lineage["trainer"] == "refit_clone"
    assert v2.lineage["code_version"].startswith("driftline ")
    assert json.loads(v2.lineage["params"])["constant"] == "1"  # the estimator's get_params()
    run = reg.client.get_run(v2.lineage["run_id"])  # what a person compares in the MLflow UI
    assert run.data.params["constant"] == "1" and run.data.metrics["challenger_accuracy"] == 0.9
    assert run.data.tags["driftline.data_sha256"] == v2.lineage["data_sha256"]
    assert reg.outcomes("churn") == {"drift:churn:2": {"status": "promoted", "version": "2"}}


def test_serving_loads_the_champion_over_http_and_refuses_bad_bytes(
    server: tuple[str, Path, dict[str, str]], tmp_path: Path
) -> None:
    url, work, digests = server
    stored_v3 = _stored(work, digests["3"])
    stored_v3.write_bytes(stored_v3.read_bytes() + b"\x00")  # the store's copy of v3 is corrupted
    updates = [("3", digests["3"]), ("1", "0" * 64)]  # v3: bytes do not match; v1: wrong announced digest
    served, log = _run(SERVING, tmp_path / "serving", url, json.dumps(updates))
    assert served["version"] == "2" and served["prediction"] == [1, 1, 1]
    assert served["refused"] == 2
    assert served["cache"] == [f"{digests['2']}.joblib"]  # nothing unverified was kept
    assert "does not match the SHA-256 in the registry" in log and "the model update's SHA-256" in log

    _stored(work, digests["2"]).unlink()  # the server lost v2's file: the cache still has it
    again, _ = _run(SERVING, tmp_path / "serving", url, "[]")
    assert again["version"] == "2" and again["prediction"] == [1, 1, 1]
    with pytest.raises(StopIteration):
        _stored(work, digests["2"])
