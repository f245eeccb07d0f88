"""The user's own data, as read from disk, before any model-specific encoding.

A :class:`Dataset` is one of five kinds:

- ``text``: one string per row (``texts``), e.g. a CSV with a ``text`` and a ``label`` column;
- ``image``: one image per row (``images``: file paths, encoded bytes or PIL images; :func:`open_image`
  decodes any of them);
- ``series``: one window of multichannel readings per row (``series``, float32 ``(N, channels, length)``);
- ``arrays``: named arrays of equal first dimension (``arrays``, from a ``.npz``), fed to a model as they are;
- ``documents``: free text for language models (``texts``, one document per row, no labels).

Labels are int64 ids into ``label_names`` (sorted label values, so the same data gives the same ids in
every process). ``fingerprint`` is a content hash of what was read (bytes of the files and the options that
chose columns), so two data sets never share a cached result.

:func:`split_train_eval` makes the deterministic stratified split (or honours a ``split`` column, or the
user's own held-out data set), and :func:`make_task_data` turns a Dataset into the :class:`TaskData` every
loader hands to the pipeline, through an encoder of the model's (a tokenizer, an image processor, ...).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import DataError
from .splits import Split, TaskData, stratified_split, subsample

__all__ = [
    "KINDS",
    "Dataset",
    "open_image",
    "encode_labels",
    "match_labels",
    "split_train_eval",
    "make_task_data",
    "describe_dataset",
    "content_hash",
]

KINDS = ("text", "image", "series", "arrays", "documents")
_ROW_FIELDS = ("texts", "images", "series", "labels", "split")


@dataclass(frozen=True, eq=False)
class Dataset:
    """One data set of the user's, read from ``source`` (a file, a folder or a hub id)."""

    kind: str
    source: str
    format: str
    texts: list[str] | None = None
    images: list[Any] | None = None
    series: np.ndarray | None = None
    arrays: dict[str, np.ndarray] | None = None
    labels: np.ndarray | None = None
    label_names: tuple[str, ...] = ()
    #: per row "train" or "eval" (from the user's split column), else None
    split: np.ndarray | None = None
    #: role -> the column / field / array used for it ({"text": "review", "label": "stars"})
    columns: dict[str, str] = field(default_factory=dict)
    fingerprint: str = ""
    #: what was detected, skipped, resized or sampled; said once, shown by the CLI, the panel and the report
    notes: tuple[str, ...] = ()
    #: rows in the source before sampling (None: unknown / not sampled)
    n_rows_total: int | None = None
    #: series only: the channel names, in order
    channel_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise DataError(f"A data set's kind must be one of {', '.join(KINDS)}. Got {self.kind!r}.")
        n = len(self)
        for name in _ROW_FIELDS:
            v = getattr(self, name)
            if v is not None and len(v) != n:
                raise DataError(f"{self.source}: {name} has {len(v)} rows but the data set has {n}.")
        if self.arrays is not None:
            sizes = {k: len(v) for k, v in self.arrays.items()}
            if len(set(sizes.values())) > 1:
                raise DataError(f"{self.source}: the arrays have different first dimensions: {sizes}.")

    def __len__(self) -> int:
        for v in (self.texts, self.images, self.series):
            if v is not None:
                return len(v)
        if self.arrays:
            return len(next(iter(self.arrays.values())))
        return 0

    def take(self, idx: np.ndarray | Sequence[int]) -> Dataset:
        """The rows ``idx`` (same label ids and names, so a train and an eval part stay comparable)."""
        idx = np.asarray(idx, dtype=np.int64)
        kw: dict[str, Any] = {}
        for name in _ROW_FIELDS:
            v = getattr(self, name)
            if v is None:
                continue
            kw[name] = [v[i] for i in idx] if isinstance(v, list) else v[idx]
        if self.arrays is not None:
            kw["arrays"] = {k: v[idx] for k, v in self.arrays.items()}
        return replace(self, **kw)

    def label_counts(self) -> dict[str, int]:
        if self.labels is None:
            return {}
        counts = np.bincount(self.labels, minlength=len(self.label_names))
        return {self.label_names[i]: int(c) for i, c in enumerate(counts)}

    def spec(self) -> dict[str, Any]:
        """What identifies this data set in a cache key or a report."""
        return {"source": self.source, "format": self.format, "kind": self.kind, "sha256": self.fingerprint}


def open_image(x: Any):
    """A PIL image from a path, encoded bytes, a ``{"bytes": ..., "path": ...}`` dict (HF datasets) or an image."""
    from PIL import Image

    if isinstance(x, Image.Image):
        return x
    if isinstance(x, dict):
        x = x.get("bytes") or x.get("path")
    try:
        if isinstance(x, (bytes, bytearray)):
            img = Image.open(io.BytesIO(x))
        else:
            img = Image.open(Path(x))
        img.load()
    except Exception as e:  # PIL raises several types for unreadable files
        raise DataError(
            f"Cannot read the image {x if not isinstance(x, (bytes, bytearray)) else '<bytes>'}: {e}"
        ) from None
    return img


def encode_labels(values: Sequence[Any], source: str, column: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Label values (strings or ints) -> int64 ids into sorted label names."""
    vals = ["" if v is None else str(v).strip() for v in values]
    missing = [i for i, v in enumerate(vals) if v == "" or v.lower() == "nan"]
    if missing:
        raise DataError(
            f"{source}: {len(missing)} rows have no value in the label column {column!r} "
            f"(first at row {missing[0]}). Fill or drop them."
        )
    # numeric labels sort as numbers ("2" before "10"), others as text
    try:
        names = sorted(set(vals), key=lambda s: (0, float(s), s))
    except ValueError:
        names = sorted(set(vals))
    index = {n: i for i, n in enumerate(names)}
    return np.array([index[v] for v in vals], dtype=np.int64), tuple(names)


def match_labels(ds: Dataset, model_labels: Sequence[str], model: str) -> Dataset:
    """Re-map the data's label ids onto a model's own classes (its ``id2label``), by name.

    Names match case-insensitively; integer labels also match a model's class index. A data label the model
    does not know raises an error listing both label sets.
    """
    if ds.labels is None:
        return ds
    model_labels = [str(m) for m in model_labels]
    lookup = {m.strip().lower(): i for i, m in enumerate(model_labels)}
    mapping = []
    unknown = []
    for name in ds.label_names:
        key = name.strip().lower()
        if key in lookup:
            mapping.append(lookup[key])
        elif key.isdigit() and int(key) < len(model_labels) and not any(k.isdigit() for k in lookup):
            mapping.append(int(key))
        else:
            unknown.append(name)
            mapping.append(-1)
    if unknown:
        raise DataError(
            f"{ds.source}: the labels {unknown} are not classes of {model}. The data's labels: "
            f"{list(ds.label_names)}; the model's labels (id2label): {model_labels}. Rename the data's labels, "
            "or pass a model trained on them."
        )
    labels = np.array(mapping, dtype=np.int64)[ds.labels]
    note = f"labels matched to {model}'s {len(model_labels)} classes by name"
    return replace(ds, labels=labels, label_names=tuple(model_labels), notes=(*ds.notes, note))


def split_train_eval(
    ds: Dataset,
    eval_ds: Dataset | None = None,
    *,
    test_fraction: float = 0.3,
    seed: int = 0,
) -> tuple[Dataset | None, Dataset]:
    """(train, eval): the user's own held-out data set, else a ``split`` column, else a stratified split.

    A split always needs at least two examples of every class (one to train on, one to score); a class with
    one example raises an error naming it.
    """
    if eval_ds is not None:
        if eval_ds.kind != ds.kind:
            raise DataError(f"The eval data {eval_ds.source} holds {eval_ds.kind} but {ds.source} holds {ds.kind}.")
        if ds.labels is not None and eval_ds.labels is not None and ds.label_names != eval_ds.label_names:
            eval_ds = _relabel(eval_ds, ds.label_names, ds.source)
        return ds, eval_ds
    if ds.split is not None:
        train_idx = np.flatnonzero(ds.split == "train")
        eval_idx = np.flatnonzero(ds.split == "eval")
        if len(eval_idx) == 0:
            raise DataError(f"{ds.source}: the split column {ds.columns.get('split')!r} marks no row as eval/test.")
        return (ds.take(train_idx) if len(train_idx) else None), ds.take(eval_idx)
    if ds.labels is None:
        n_eval = max(1, int(round(len(ds) * test_fraction)))
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(ds))
        return ds.take(np.sort(order[n_eval:])), ds.take(np.sort(order[:n_eval]))
    counts = np.bincount(ds.labels, minlength=len(ds.label_names))
    thin = [ds.label_names[i] for i, c in enumerate(counts) if 0 < c < 2]
    if thin:
        raise DataError(
            f"{ds.source}: the classes {thin} have a single example: a stratified split needs at least 2 of each "
            "(one to train on, one to score). Add examples, drop those rows, or pass your own held-out set with "
            "eval_data= (--eval-data)."
        )
    train_idx, eval_idx = stratified_split(ds.labels, test_fraction, seed)
    return ds.take(train_idx), ds.take(eval_idx)


def _relabel(ds: Dataset, names: tuple[str, ...], train_source: str) -> Dataset:
    index = {n: i for i, n in enumerate(names)}
    unknown = sorted(set(ds.label_names) - set(index))
    if unknown:
        raise DataError(
            f"{ds.source}: the eval labels {unknown} do not occur in {train_source} (its labels: {list(names)})."
        )
    assert ds.labels is not None
    remap = np.array([index[n] for n in ds.label_names], dtype=np.int64)
    return replace(ds, labels=remap[ds.labels], label_names=names)


def make_task_data(
    ds: Dataset,
    encode: Callable[[Dataset], Split],
    *,
    eval_data: Dataset | None = None,
    n_eval: int | None = None,
    seed: int = 0,
    test_fraction: float = 0.3,
    n_calibration: int = 64,
    extra_spec: dict[str, Any] | None = None,
) -> TaskData:
    """Split ``ds`` (or use ``eval_data``), encode each part with the model's ``encode`` and sample ``n_eval``.

    Calibration examples come from the training part, never from the examples that are scored; with no
    training part (every row is eval) calibration uses the eval rows, and the data's notes say so.
    """
    train, ev = split_train_eval(ds, eval_data, test_fraction=test_fraction, seed=seed)
    if n_eval is not None and n_eval < len(ev):
        ev = ev.take(_stratified_sample(ev, n_eval, seed))
    eval_split = encode(ev)
    train_split = encode(train) if train is not None and len(train) else None
    calib_source = train_split if train_split is not None else eval_split
    spec = {
        "dataset": ds.spec(),
        "eval_dataset": eval_data.spec() if eval_data is not None else None,
        "seed": seed,
        "test_fraction": test_fraction,
        "n_eval": n_eval,
        **(extra_spec or {}),
    }
    return TaskData(
        train=train_split,
        eval=eval_split,
        calibration=subsample(calib_source, n_calibration, seed + 1),
        label_names=ds.label_names,
        spec=spec,
    )


def _stratified_sample(ds: Dataset, n: int, seed: int) -> np.ndarray:
    """``n`` row indices, in proportion to the classes where there are labels (sorted, deterministic)."""
    if n <= 0:
        raise DataError(f"The 'n_eval' parameter must be a positive int. Got {n!r} instead.")
    if ds.labels is None:
        return np.sort(np.random.default_rng(seed).choice(len(ds), size=n, replace=False))
    _, idx = stratified_split(ds.labels, n / len(ds), seed)
    if len(idx) > n:
        idx = np.sort(np.random.default_rng(seed).choice(idx, size=n, replace=False))
    return idx


def describe_dataset(ds: Dataset, preview: int = 3) -> dict[str, Any]:
    """A plain summary for tables, the panel and the report: source, format, rows, labels, columns, hash, notes."""
    out: dict[str, Any] = {
        "source": ds.source,
        "format": ds.format,
        "kind": ds.kind,
        "rows": len(ds),
        "rows_in_source": ds.n_rows_total,
        "columns": dict(ds.columns),
        "labels": ds.label_counts(),
        "sha256": ds.fingerprint,
        "notes": list(ds.notes),
    }
    if ds.texts is not None:
        out["preview"] = [t[:120] for t in ds.texts[:preview]]
    elif ds.series is not None:
        out["shape"] = list(ds.series.shape)
        out["channels"] = list(ds.channel_names)
    elif ds.arrays is not None:
        out["arrays"] = {k: [list(v.shape), str(v.dtype)] for k, v in ds.arrays.items()}
    elif ds.images is not None:
        out["preview"] = [str(x) if isinstance(x, (str, Path)) else "<image>" for x in ds.images[:preview]]
    return out


def content_hash(*parts: bytes | str) -> str:
    """sha256 over byte strings (file contents) and option strings."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else p.encode())
        h.update(b"\0")
    return h.hexdigest()
