"""Tasks decide what a model's outputs mean; evaluation turns outputs into metrics.

Three tasks ship here:
- ``classification``: outputs are logits; accuracy with a bootstrap 95 % CI, top-1 agreement with
  the FP32 baseline (fidelity) and logit cosine.
- ``embedding-classification``: outputs are sentence embeddings, scored by a linear head trained
  once on the FP32 embeddings and then frozen, so every variant is judged by the very same head;
  fidelity is the embedding cosine to FP32.
- ``generic``: no labels (an ONNX file with synthetic inputs); fidelity is output cosine only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .context import RunContext
from .data import Split
from .errors import DataError

__all__ = [
    "Task",
    "Classification",
    "EmbeddingClassification",
    "Generic",
    "LinearHead",
    "bootstrap_ci",
    "cosine_rows",
    "predict",
    "NonFiniteOutputError",
]


class NonFiniteOutputError(DataError):
    """The model produced NaN or inf: the candidate is marked failed with this reason."""


def bootstrap_ci(correct: np.ndarray, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of a 0/1 vector (fixed seed: reruns give the same CI)."""
    correct = np.asarray(correct, dtype=np.float64)
    if correct.size == 0:
        raise DataError("Cannot compute a confidence interval on zero examples.")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, correct.size, size=(n_boot, correct.size))
    means = correct[idx].mean(axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.reshape(len(a), -1).astype(np.float64)
    b = b.reshape(len(b), -1).astype(np.float64)
    num = (a * b).sum(1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return num / np.maximum(den, 1e-12)


def predict(
    runner, split: Split, batch_size: int = 32, ctx: RunContext | None = None, stage: str = "evaluate"
) -> np.ndarray:
    """Run ``runner`` over a split in batches; raises NonFiniteOutputError on NaN/inf."""
    outs = []
    n_batches = -(-len(split) // batch_size)
    if ctx:
        ctx.begin(stage, total=n_batches)
    for b in split.batches(batch_size):
        outs.append(runner(b.inputs))
        if ctx:
            ctx.step()
    out = np.concatenate(outs, axis=0)
    bad = ~np.isfinite(out)
    if bad.any():
        raise NonFiniteOutputError(
            f"The model produced non-finite outputs ({int(bad.sum())} of {out.size} values are NaN or inf)."
        )
    return out


@dataclass(frozen=True)
class LinearHead:
    """A frozen linear classifier: logits = x @ weight.T + bias. Stored as plain arrays (npz), never pickled."""

    weight: np.ndarray
    bias: np.ndarray

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x @ self.weight.T + self.bias

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, seed: int = 0) -> LinearHead:
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(max_iter=3000, C=10.0, random_state=seed)
        clf.fit(x, y)
        return cls(clf.coef_.astype(np.float32), clf.intercept_.astype(np.float32))


class Task:
    name = "task"
    primary_metric = "accuracy"
    #: the key in metrics that says how close a candidate stays to FP32
    fidelity_metric = "fidelity"

    def metrics(self, outputs: np.ndarray, labels: np.ndarray | None, reference: np.ndarray | None) -> dict[str, Any]:
        raise NotImplementedError


def _accuracy(pred: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    correct = pred == labels
    lo, hi = bootstrap_ci(correct)
    return {"accuracy": float(correct.mean()), "accuracy_ci": [lo, hi], "n_eval": int(len(labels))}


class Classification(Task):
    name = "classification"

    def metrics(self, outputs, labels, reference):
        out: dict[str, Any] = {}
        pred = outputs.argmax(-1)
        if labels is not None:
            out.update(_accuracy(pred, labels))
        if reference is not None:
            out["agreement"] = float((pred == reference.argmax(-1)).mean())
            out["cosine"] = float(cosine_rows(outputs, reference).mean())
            out["fidelity"] = out["agreement"]
        return out


class EmbeddingClassification(Task):
    name = "embedding-classification"

    def __init__(self, head: LinearHead):
        self.head = head

    def metrics(self, outputs, labels, reference):
        out: dict[str, Any] = {}
        if labels is not None:
            out.update(_accuracy(self.head(outputs).argmax(-1), labels))
        if reference is not None:
            cos = cosine_rows(outputs, reference)
            out.update(cosine=float(cos.mean()), cosine_min=float(cos.min()), fidelity=float(cos.mean()))
            out["agreement"] = float((self.head(outputs).argmax(-1) == self.head(reference).argmax(-1)).mean())
        return out


class Generic(Task):
    name = "generic"
    primary_metric = "fidelity"

    def metrics(self, outputs, labels, reference):
        if reference is None:
            return {}
        cos = cosine_rows(outputs, reference)
        return {"cosine": float(cos.mean()), "cosine_min": float(cos.min()), "fidelity": float(cos.mean())}
