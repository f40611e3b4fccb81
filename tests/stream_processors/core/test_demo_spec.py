"""The demo's own spec (examples/demo/driftline.yaml): it loads, declares every feature the simulator
sends with the type the simulator gives it, and the demo monitors with it unless a spec declares the
model itself."""

from __future__ import annotations

import numpy as np

from driftline.app.demo import DEMO_SPEC, demo_settings
from driftline.config import DriftlineSettings
from driftline.spec import ModelSpec
from producers.simulator import CATEGORICAL, NUMERIC, Scenario, World


def test_the_demo_spec_declares_every_feature_the_simulator_sends() -> None:
    scenario = Scenario()
    spec = DriftlineSettings.load(config=str(DEMO_SPEC)).models[scenario.model]
    X, _ = World(scenario).sample(np.random.default_rng(0), 5, concept=0, shifted=False)
    sent = X.to_dict("records")[0]
    assert list(spec.kinds()) == list(sent)  # every feature, in the order sent (alerts keep their order)
    assert spec.kinds() == {**dict.fromkeys(NUMERIC, "numeric"), **dict.fromkeys(CATEGORICAL, "categorical")}
    assert spec.ignored() == set()


def test_the_demo_uses_its_spec_unless_the_model_is_declared_already() -> None:
    assert list(demo_settings(DriftlineSettings()).models) == ["churn"]
    own = ModelSpec(features={"age": "numeric"})
    mine = DriftlineSettings(models={"churn": own})
    assert demo_settings(mine).models == {"churn": own}
