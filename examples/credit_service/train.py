"""The credit-risk team's own trainer: preprocessing and model in one sklearn Pipeline.

Driftline calls ``fit(X, y)`` when it retrains ``credit-risk`` (the spec's ``retrain.trainer:
"train:fit"``; this folder is put on ``sys.path`` because the spec is here). ``X`` holds the declared
features only, in the spec's order (``customer_id`` is declared ``ignore``, so it never reaches
here); ``y`` is the labels (1 = the loan defaulted). The pipeline one-hot encodes the categorical
columns and scales the numeric ones itself, so Driftline never transforms a feature.
"""

from __future__ import annotations

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

NUMERIC = ["income", "debt_ratio", "age"]
CATEGORICAL = ["region", "employment"]
FITS: list[dict[str, object]] = []  # what each call saw (the example prints it)


def fit(X: pd.DataFrame, y: pd.Series) -> Pipeline:
    FITS.append({"rows": len(X), "columns": list(X.columns)})
    pre = ColumnTransformer(
        [
            ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
            ("numeric", StandardScaler(), NUMERIC),
        ]
    )
    return Pipeline([("pre", pre), ("model", LogisticRegression(max_iter=1000))]).fit(X, y)
