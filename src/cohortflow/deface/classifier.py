"""The defacing evaluator's classifier: multinomial logistic regression on the pair features.

Decisions (:meth:`QAModel.decide`): ``accepted``, ``face_remains`` (rejected: face remains),
``brain_damaged`` (rejected: brain damaged). Features are standardised with the training mean
and SD; a missing value (a view that sees no face) takes the training mean. Logistic regression
is a classic classifier (as in DefaceQA) whose decisions can be explained exactly: a feature's
contribution to a decision is its standardised value times its weight for that decision minus
its mean weight over the decisions, and the largest contributions are reported with the values.

The fitted model is stored as plain JSON (feature names, mean, SD, weights, intercepts): no
pickle, readable in a review, loadable without scikit-learn.

Evaluation: cross-validation with folds grouped by head (no head's pairs on both sides),
stratified by decision; and hold-one-failure-type-out (train without e.g. every ``partial``
pair, test on them: do they get rejected?). Binary figures take "rejected" as the positive
class: sensitivity = rejected failures / failures, specificity = accepted correct / correct;
AUROC ranks pairs by 1 - P(accepted).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cohortflow.deface.features import FEATURES

DECISIONS = ("accepted", "face_remains", "brain_damaged")
MODEL_FORMAT = "cohortflow-deface-qa/1"
# The accepted envelope: the accepted training pairs' range per feature, widened on each side
# by 3 SD, and by at least 0.001 (so a share of 0 in training still admits the 0.1 % of
# altered brain voxels that the acceptance criterion tolerates).
ENVELOPE_SDS = 3.0
ENVELOPE_FLOOR = 0.001


@dataclass
class QAModel:
    features: list[str]
    mean: np.ndarray
    scale: np.ndarray
    classes: list[str]
    coef: np.ndarray  # classes x features (on standardised features)
    intercept: np.ndarray
    envelope_lo: np.ndarray  # range of the accepted training pairs, widened (see ENVELOPE_*)
    envelope_hi: np.ndarray

    def standardise(self, table: pd.DataFrame) -> np.ndarray:
        x = table[self.features].to_numpy(dtype=float)
        x = np.where(np.isnan(x), self.mean, x)
        return (x - self.mean) / self.scale

    def probabilities(self, table: pd.DataFrame) -> np.ndarray:
        z = self.standardise(table) @ self.coef.T + self.intercept
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def outside_envelope(self, row: pd.Series) -> list[dict[str, Any]]:
        """Features on the failing side of the range seen on accepted training pairs.

        One-sided: a brain feature fails when the brain is *less* similar than in any accepted
        pair (lower similarity, larger share changed), a face or render feature when the face
        is *more* similar (more of it kept). Removing more face than the training pairs did is
        not a failure.
        """
        found = []
        for j, name in enumerate(self.features):
            value = float(row[name])
            if np.isnan(value):
                continue
            is_share = name.endswith("_share")
            lo, hi = float(self.envelope_lo[j]), float(self.envelope_hi[j])
            if name.startswith("brain_"):
                fails = value > hi if is_share else value < lo
            else:
                fails = value < lo if is_share else value > hi
            if fails:
                found.append({"feature": name, "value": value, "accepted_range": [lo, hi]})
        return found

    def decide(self, table: pd.DataFrame) -> list[tuple[str, list[dict[str, Any]]]]:
        """Decision per pair, with the envelope features that overrode an acceptance.

        The regression proposes; a proposed acceptance stands only if the pair lies inside the
        accepted envelope. Outside it on a brain feature the decision is ``brain_damaged``, on a
        face or render feature ``face_remains``: a failure mode absent from training (e.g. a
        new kind of over-defacing) is still rejected rather than extrapolated into acceptance.
        """
        out = []
        for k, (_, row) in zip(
            self.probabilities(table).argmax(axis=1), table.iterrows(), strict=True
        ):
            decision = self.classes[k]
            outside: list[dict[str, Any]] = []
            if decision == "accepted":
                outside = self.outside_envelope(row)
                if any(o["feature"].startswith("brain_") for o in outside):
                    decision = "brain_damaged"
                elif outside:
                    decision = "face_remains"
            out.append((decision, outside))
        return out

    def predict(self, table: pd.DataFrame) -> list[str]:
        return [d for d, _ in self.decide(table)]

    def p_accepted(self, table: pd.DataFrame) -> np.ndarray:
        if "accepted" not in self.classes:
            return np.zeros(len(table))
        return self.probabilities(table)[:, self.classes.index("accepted")]

    def drivers(self, row: pd.Series, decision: str, top: int = 3) -> list[dict[str, Any]]:
        """The features that pushed this pair towards ``decision`` the most."""
        z = self.standardise(row.to_frame().T)[0]
        k = self.classes.index(decision)
        relative = self.coef[k] - self.coef.mean(axis=0)
        contribution = z * relative
        order = np.argsort(-contribution)[:top]
        return [
            {
                "feature": self.features[j],
                "value": float(row[self.features[j]]),
                "contribution": round(float(contribution[j]), 4),
            }
            for j in order
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MODEL_FORMAT,
            "classifier": "multinomial logistic regression (scikit-learn, lbfgs, L2)",
            "features": self.features,
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "classes": self.classes,
            "coef": self.coef.tolist(),
            "intercept": self.intercept.tolist(),
            "envelope_lo": self.envelope_lo.tolist(),
            "envelope_hi": self.envelope_hi.tolist(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QAModel:
        if data.get("format") != MODEL_FORMAT:
            raise ValueError(f"not a cohortflow defacing-QA model (format {data.get('format')!r})")
        return cls(
            features=list(data["features"]),
            mean=np.asarray(data["mean"], float),
            scale=np.asarray(data["scale"], float),
            classes=list(data["classes"]),
            coef=np.asarray(data["coef"], float),
            intercept=np.asarray(data["intercept"], float),
            envelope_lo=np.asarray(data["envelope_lo"], float),
            envelope_hi=np.asarray(data["envelope_hi"], float),
        )

    @classmethod
    def load(cls, path: Path | str) -> QAModel:
        return cls.from_json(json.loads(Path(path).read_text()))


def fit(table: pd.DataFrame, *, c: float = 1.0, features: tuple[str, ...] = FEATURES) -> QAModel:
    from sklearn.linear_model import LogisticRegression

    x = table[list(features)].to_numpy(dtype=float)
    mean = np.nanmean(x, axis=0)
    x = np.where(np.isnan(x), mean, x)
    scale = x.std(axis=0)
    scale[scale < 1e-12] = 1.0
    z = (x - mean) / scale
    y = table["decision"].to_numpy()
    classes = [d for d in DECISIONS if d in set(y)]
    if len(classes) < 2:
        raise ValueError(f"training pairs hold only the decision {classes}: need at least two")
    model = LogisticRegression(C=c, max_iter=5000)
    model.fit(z, y)
    order = [list(model.classes_).index(k) for k in classes]
    coef, intercept = model.coef_, model.intercept_
    if coef.shape[0] == 1:  # two classes: scikit-learn stores one row (for classes_[1])
        coef = np.vstack([-coef[0] / 2, coef[0] / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    accepted = x[y == "accepted"]
    if len(accepted):
        spread = np.maximum(ENVELOPE_SDS * accepted.std(axis=0), ENVELOPE_FLOOR)
        lo, hi = accepted.min(axis=0) - spread, accepted.max(axis=0) + spread
    else:  # nothing accepted in training: no acceptance can stand
        lo, hi = np.full(x.shape[1], np.inf), np.full(x.shape[1], -np.inf)
    return QAModel(
        envelope_lo=lo,
        envelope_hi=hi,
        features=list(features),
        mean=mean,
        scale=scale,
        classes=classes,
        coef=coef[order],
        intercept=intercept[order],
    )


def binary_metrics(truth: list[str], predicted: list[str], p_accepted: np.ndarray) -> dict:
    """Rejected = positive. AUROC ranks by 1 - P(accepted); NaN with one class only."""
    from sklearn.metrics import roc_auc_score

    t = np.array([d != "accepted" for d in truth])
    p = np.array([d != "accepted" for d in predicted])
    tp, tn = int((t & p).sum()), int((~t & ~p).sum())
    fp, fn = int((~t & p).sum()), int((t & ~p).sum())
    auroc = float(roc_auc_score(t, 1 - p_accepted)) if 0 < t.sum() < t.size else float("nan")
    return {
        "n": int(t.size),
        "auroc": auroc,
        "accuracy": (tp + tn) / t.size if t.size else float("nan"),
        "sensitivity": tp / (tp + fn) if tp + fn else float("nan"),
        "specificity": tn / (tn + fp) if tn + fp else float("nan"),
        "decision_accuracy": float(
            np.mean([a == b for a, b in zip(truth, predicted, strict=True)])
        ),
        "tp": tp,
        "tn": tn,
        "fp": fp,
        "fn": fn,
    }


def cross_validate(
    table: pd.DataFrame, *, folds: int = 5, seed: int = 1, c: float = 1.0
) -> tuple[dict, pd.DataFrame]:
    """Grouped (by head), stratified k-fold; metrics over the pooled out-of-fold predictions."""
    from sklearn.model_selection import StratifiedGroupKFold

    heads = table["subject"].nunique()
    k = min(folds, heads)
    if k < 2:
        raise ValueError(f"cross-validation needs pairs from at least 2 heads, have {heads}")
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    out = table[["pair", "subject", "failure_type", "decision"]].copy()
    out["predicted"] = ""
    out["p_accepted"] = np.nan
    out["fold"] = -1
    for fold, (train, test) in enumerate(
        splitter.split(table, table["decision"], groups=table["subject"])
    ):
        model = fit(table.iloc[train], c=c)
        part = table.iloc[test]
        out.iloc[test, out.columns.get_loc("predicted")] = model.predict(part)
        out.iloc[test, out.columns.get_loc("p_accepted")] = model.p_accepted(part)
        out.iloc[test, out.columns.get_loc("fold")] = fold
    metrics = binary_metrics(
        out["decision"].tolist(), out["predicted"].tolist(), out["p_accepted"].to_numpy()
    )
    metrics["folds"] = k
    return metrics, out


def held_out(table: pd.DataFrame, column: str, value: str, *, c: float = 1.0) -> dict:
    """Train without the pairs whose ``column`` is ``value``, test on them: share decided
    correctly as accepted/rejected (the decision itself may be unseen in training), and share
    given exactly the right decision."""
    test = table[table[column] == value]
    if test.empty:
        return {column: value, "n": 0, "accuracy": float("nan")}
    predicted = fit(table[table[column] != value], c=c).predict(test)
    truth = test["decision"].tolist()
    pairs = list(zip(truth, predicted, strict=True))
    return {
        column: value,
        "n": len(test),
        "accuracy": float(np.mean([(a == "accepted") == (b == "accepted") for a, b in pairs])),
        "decision_accuracy": float(np.mean([a == b for a, b in pairs])),
    }


def held_out_type(table: pd.DataFrame, failure_type: str, *, c: float = 1.0) -> dict:
    """:func:`held_out` for one failure type."""
    return held_out(table, "failure_type", failure_type, c=c)
