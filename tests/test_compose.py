"""docker-compose.yml, validated without a Docker engine: the file parses, every published port is
bound to loopback, the Kafka image is the version the tests run, each Driftline service runs a real
CLI command, and the image copies every package the install needs."""

from __future__ import annotations

import re
from pathlib import Path

import kafka_local
import yaml

from driftline.app.cli import app

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_published_ports_are_loopback_only() -> None:
    published = [(name, p) for name, svc in SERVICES.items() for p in svc.get("ports", [])]
    assert published, "Kafka is published for tools on the host"
    for name, port in published:
        assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_kafka_image_matches_the_tested_broker() -> None:
    images = {svc["image"] for svc in SERVICES.values() if "kafka" in str(svc.get("image", ""))}
    assert images == {f"apache/kafka:{kafka_local.KAFKA_VERSION}"}


def test_driftline_services_run_cli_commands() -> None:
    commands = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    ours = {name: svc for name, svc in SERVICES.items() if svc.get("image") == "driftline:dev"}
    assert {"process", "control-plane", "retrain-worker"} <= set(ours)
    for name, svc in ours.items():
        assert svc["command"][0] in commands, f"{name}: {svc['command'][0]!r} is not a driftline command"


def test_image_copies_every_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    include = re.search(r"include = \[(.*?)\]", pyproject)
    assert include is not None
    packages = {p.strip().strip('"').rstrip("*") for p in include.group(1).split(",")}
    for pkg in packages:
        assert f"COPY {pkg}/ {pkg}/" in dockerfile, f"the image misses {pkg}/"


def test_observability_services_and_healthchecks() -> None:
    assert {"prometheus", "alertmanager", "grafana"} <= set(SERVICES)
    for name in ("process", "control-plane", "retrain-worker", "prometheus", "alertmanager", "grafana"):
        check = SERVICES[name].get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in scrape["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    port = SERVICES["process"]["environment"]["DRIFTLINE_OBSERVABILITY__METRICS_PORT"]
    assert targets == {f"{s}:{port}" for s in ("process", "control-plane", "retrain-worker")}
    for volume in SERVICES["prometheus"]["volumes"] + SERVICES["grafana"]["volumes"]:
        assert (ROOT / volume.split(":")[0]).exists(), volume


def test_image_runs_as_non_root_with_a_cached_dependency_layer() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER (?!root)\S+", dockerfile, re.M)
    assert dockerfile.index("pip install -r") < dockerfile.index("COPY driftline/")
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv/" in ignored and ".git/" in ignored


def test_image_compiles_the_native_parts_in_a_build_stage_and_ships_no_toolchain() -> None:
    """The image's last stage installs the wheel a build stage compiled with cargo, and refuses to
    build if the wheel lacks the native decoder and kernels (an image without them would run every
    batch in Python, 1.5-2.4x slower, and say nothing)."""
    stages: dict[str, str] = {}  # stage name ("" for the last, unnamed one) -> its FROM line and body
    for stage in re.split(r"^FROM ", (ROOT / "Dockerfile").read_text(), flags=re.M)[1:]:
        head = stage.split("\n", 1)[0]
        stages[head.split(" AS ")[1].strip() if " AS " in head else ""] = stage
    build, final = stages["build"], stages[""]
    assert "install -y --no-install-recommends cargo" in build and "pip wheel --no-deps" in build
    assert 'grep -q "driftline/_native.*\\.so"' in build and 'grep -q "detectors/_kernels.*\\.so"' in build
    assert final.startswith("base\n") and "COPY --from=build /wheels/" in final
    assert "cargo" not in final and "native.built() and kernels.built()" in final
    assert "native/target/" in (ROOT / ".dockerignore").read_text().split()  # cargo's 400 MB stay out
