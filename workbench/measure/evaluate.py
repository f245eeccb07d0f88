"""Evaluation primitives: running a model over a split, cosines, confidence intervals (bootstrap, median).

What outputs *mean* (accuracy through a head, perplexity...) belongs to the tasks (``workbench.tasks``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..core.context import RunContext
from ..core.errors import DataError, ModelRunError, WorkbenchError
from ..data.splits import Split

__all__ = [
    "bootstrap_ci",
    "median_interval",
    "cosine_rows",
    "predict",
    "NonFiniteOutputError",
]


class NonFiniteOutputError(DataError):
    """The model produced NaN or inf: the candidate is marked failed with this reason."""


def median_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float] | None:
    """A distribution-free confidence interval of the median of ``values`` (order statistics: the k-th smallest and
    k-th largest, k from the binomial law), or None when there are too few values for ``level`` (fewer than 6 at
    95 %). No assumption on the shape: a round that one slow phase hit is one order statistic, not a shifted mean."""
    x = sorted(float(v) for v in values)
    n = len(x)
    tail = (1 - level) / 2
    k, below = 0, 0.0  # k values may sit outside on each side while P(Binomial(n, 1/2) < k + 1) <= tail
    while k < n // 2:
        below += math.comb(n, k) / 2**n
        if below > tail:
            break
        k += 1
    if k == 0:
        return None
    return x[k - 1], x[n - k]


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
        try:
            outs.append(runner(b.inputs))
        except WorkbenchError:
            raise
        except Exception as e:  # the model's own code or ONNX Runtime refused these inputs
            shapes = {k: f"{tuple(v.shape)} {v.dtype}" for k, v in b.inputs.items()}
            raise ModelRunError(f"The model failed on its inputs {shapes}: {type(e).__name__}: {e}") from None
        if ctx:
            ctx.step()
    out = np.concatenate(outs, axis=0)
    bad = ~np.isfinite(out)
    if bad.any():
        raise NonFiniteOutputError(
            f"The model produced non-finite outputs ({int(bad.sum())} of {out.size} values are NaN or inf)."
        )
    return out
