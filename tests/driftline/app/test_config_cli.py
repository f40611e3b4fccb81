"""``driftline config check|show`` and the global ``--config``: a spec judged before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from driftline.app.cli import app
from driftline.errors import ConfigError

SPEC = """\
monitor: {window_size: 800}
routing: {slack_webhook_url: "https://hooks.slack.example/T000/B000/sekrit"}
models:
  credit-risk:
    task: binary
    features: {income: numeric, region: categorical, customer_id: ignore}
    reference: {path: reference.csv}
    segments: [region]
    retrain: {trainer: "statistics:fmean"}
  churn:
    task: regression
    features: {tenure: numeric}
    reference: {first: 500}
"""


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    rows = "\n".join(f"{40 + i % 20},{'nse'[i % 3]},{i}" for i in range(300))
    (tmp_path / "reference.csv").write_text("income,region,customer_id\n" + rows + "\n")
    path = tmp_path / "driftline.yaml"
    path.write_text(SPEC)
    return path


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.output


def test_check_a_good_spec_says_one_line_per_model(spec: Path) -> None:
    code, out = run("config", "check", str(spec))
    assert code == 0, out
    assert out.splitlines() == [
        "credit-risk: binary; features 1 numeric, 1 categorical, 1 ignored; reference reference.csv; "
        "segments region; trainer statistics:fmean",
        "churn: regression; features 1 numeric, 0 categorical, 0 ignored; "
        "reference the first 500 predictions",
    ]


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("income: numeric", "income: numerc", "models.credit-risk.features.income"),
        ("statistics:fmean", "no_such_pkg.train:fit", "models.credit-risk.retrain.trainer"),
        ("statistics:fmean", "statistics:nope", "models.credit-risk.retrain.trainer"),
        (
            "customer_id: ignore}",
            "customer_id: ignore, tenure: numeric}",
            "models.credit-risk.reference.path",
        ),
        ("window_size: 800", "window_sise: 800", "monitor.window_sise"),
    ],
)
def test_check_a_bad_spec_exits_2_naming_the_key(spec: Path, old: str, new: str, key: str) -> None:
    spec.write_text(SPEC.replace(old, new))
    code, out = run("config", "check", str(spec))
    assert code == 2 and key in out, out


def test_show_prints_the_effective_settings_with_the_environment_over_the_file(spec: Path) -> None:
    env = {"DRIFTLINE_MONITOR__WINDOW_SIZE": "500"}
    for args in (("config", "show", "--config", str(spec)), ("--config", str(spec), "config", "show")):
        code, out = run(*args, env=env)
        assert code == 0, out
        shown = yaml.safe_load(out)
        assert shown["monitor"]["window_size"] == 500  # the environment wins over the file's 800
        assert shown["models"]["credit-risk"]["features"]["income"] == {"type": "numeric"}
        assert "sekrit" not in out and shown["routing"]["slack_webhook_url"] == "**********"


def test_the_global_config_reaches_every_command_that_builds_settings(spec: Path) -> None:
    spec.write_text(SPEC.replace("window_size: 800", "window_size: 10"))  # invalid: >= 50
    for args in (("demo", "--events", "6000"), ("alerts", "list", "--store", str(spec.parent))):
        result = CliRunner().invoke(app, ["--config", str(spec), *args])
        # driftline's main() prints a ConfigError and exits 2; here it is the invocation's exception
        assert isinstance(result.exception, ConfigError), (args, result.output)
        assert "monitor.window_size" in str(result.exception)
