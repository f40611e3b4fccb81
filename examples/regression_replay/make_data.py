"""Make the example's files: a regression model's predictions and the true values, as a service
would have logged them (parquet), with a change halfway through. Seeded: the same files every run.

    python examples/regression_replay/make_data.py --out /tmp/replay
    -> predictions.parquet, labels.parquet, meta.json (where the change starts)

The model (delivery time in minutes from distance, parcel weight and zone) is a LinearRegression
trained on the first weeks. From prediction #3000 on, distances grow (a new, farther district is
served: a covariate shift) and weight starts to matter twice as much (new couriers on bikes: the
concept changes), so the model's errors grow.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression

N, DRIFT_AT, START = 6000, 3000, 1_700_000_000.0
FEATURES = ["distance_km", "weight_kg", "zone"]


def world(rng: np.random.Generator, n: int, changed: bool) -> tuple[pd.DataFrame, np.ndarray]:
    distance = rng.gamma(4.0, 1.5 if not changed else 2.2, n)
    weight = rng.gamma(2.0, 2.0, n)
    zone = rng.choice(["center", "suburb", "outskirts"], n, p=[0.5, 0.3, 0.2])
    zone_minutes = np.select([zone == "suburb", zone == "outskirts"], [5.0, 12.0], 0.0)
    per_kg = 3.0 if changed else 1.5
    minutes = 10.0 + 3.0 * distance + per_kg * weight + zone_minutes + rng.normal(0.0, 4.0, n)
    return pd.DataFrame({"distance_km": distance, "weight_kg": weight, "zone": zone}), minutes


def encode(X: pd.DataFrame) -> pd.DataFrame:
    """The model's preprocessing: the zone one-hot encoded, numeric columns as they are."""
    return pd.get_dummies(X, columns=["zone"], dtype=float).reindex(
        columns=["distance_km", "weight_kg", "zone_center", "zone_suburb", "zone_outskirts"], fill_value=0.0
    )


def make(out: Path, seed: int = 11) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    X_train, y_train = world(rng, 5000, changed=False)
    model = LinearRegression().fit(encode(X_train), y_train)
    before, y_before = world(rng, DRIFT_AT, changed=False)
    after, y_after = world(rng, N - DRIFT_AT, changed=True)
    X, y = pd.concat([before, after], ignore_index=True), np.concatenate([y_before, y_after])
    t = START + np.arange(N) * 2.0  # a prediction every 2 s
    ids = [f"d{i:05d}" for i in range(N)]
    predictions = X.assign(prediction_id=ids, event_time=t, prediction=model.predict(encode(X)))
    labels = pd.DataFrame({"prediction_id": ids, "event_time": t + 60.0, "label": y})  # known a minute later
    out.mkdir(parents=True, exist_ok=True)
    predictions.to_parquet(out / "predictions.parquet", index=False)
    labels.to_parquet(out / "labels.parquet", index=False)
    meta = {"predictions": N, "drift_at": DRIFT_AT}
    (out / "meta.json").write_text(json.dumps(meta))
    return meta


def main() -> None:
    parser = argparse.ArgumentParser(description="Write the example's predictions and labels.")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "data"))
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    print(json.dumps(make(Path(args.out), args.seed)))


if __name__ == "__main__":
    main()
