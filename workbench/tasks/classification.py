"""Tasks whose model maps a batch of inputs to one output per example.

- ``classification``: outputs are logits; accuracy with a bootstrap 95 % CI, top-1 agreement with the FP32
  baseline (fidelity) and logit cosine.
- ``embedding-classification``: outputs are sentence embeddings, scored by a linear head trained once on the
  FP32 embeddings and then frozen, so every variant is judged by the very same head; fidelity is the
  embedding cosine to FP32.
- ``text-classification``, ``image-classification``, ``series-classification``: classification (logits from the
  model's own head) of the user's texts, images or sensor windows; scored like ``classification``, named by
  what they classify so the report, the tables and ``--task`` speak the user's words.
- ``generic``: no labels (an ONNX file with synthetic inputs); fidelity is output cosine only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..measure.evaluate import bootstrap_ci, cosine_rows
from .base import Task

__all__ = [
    "Classification",
    "TextClassification",
    "ImageClassification",
    "SeriesClassification",
    "EmbeddingClassification",
    "Generic",
    "LinearHead",
]


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
        w, b = clf.coef_.astype(np.float32), clf.intercept_.astype(np.float32)
        if w.shape[0] == 1:  # two classes: p(1) = sigmoid(w.x + b) == softmax([-(w.x + b) / 2, (w.x + b) / 2])
            w, b = np.concatenate([-w / 2, w / 2]), np.concatenate([-b / 2, b / 2])
        return cls(w, b)


def _accuracy(pred: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    correct = pred == labels
    lo, hi = bootstrap_ci(correct)
    return {"accuracy": float(correct.mean()), "accuracy_ci": [lo, hi], "n_eval": int(len(labels))}


class Classification(Task):
    name: ClassVar[str] = "classification"

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


class TextClassification(Classification):
    """A text classifier with its own head (``AutoModelForSequenceClassification``), on the user's labelled texts."""

    name: ClassVar[str] = "text-classification"


class ImageClassification(Classification):
    """An image classifier (its own head) on labelled images: an image folder, a datasets folder, MNIST."""

    name: ClassVar[str] = "image-classification"


class SeriesClassification(Classification):
    """A classifier of windows of multichannel sensor readings (the IoT case: activity, fault, anomaly)."""

    name: ClassVar[str] = "series-classification"


class EmbeddingClassification(Task):
    name: ClassVar[str] = "embedding-classification"

    def __init__(self, head: LinearHead | None = None):
        self.head = head

    def metrics(self, outputs, labels, reference):
        out: dict[str, Any] = {}
        if labels is not None and self.head is not None:
            out.update(_accuracy(self.head(outputs).argmax(-1), labels))
        if reference is not None:
            cos = cosine_rows(outputs, reference)
            out.update(cosine=float(cos.mean()), cosine_min=float(cos.min()), fidelity=float(cos.mean()))
            if self.head is not None:
                out["agreement"] = float((self.head(outputs).argmax(-1) == self.head(reference).argmax(-1)).mean())
        return out


class Generic(Task):
    name: ClassVar[str] = "generic"
    quality_metrics: ClassVar[tuple[str, ...]] = ("fidelity",)

    def metrics(self, outputs, labels, reference):
        if reference is None:
            return {}
        cos = cosine_rows(outputs, reference)
        return {"cosine": float(cos.mean()), "cosine_min": float(cos.min()), "fidelity": float(cos.mean())}
