"""The bundled sensor-cnn, the IoT / sensor default: a small 1D CNN trained locally in seconds, cached.

By default it learns the UEA BasicMotions set (a smartwatch's 3D accelerometer + 3D gyroscope, 4 activities:
Badminton, Running, Standing, Walking; 40 train + 40 test windows of 6 channels x 100 steps at 10 Hz), read from
the data folder of the sktime wheel (``pip install --no-deps sktime==1.2.0``; sktime itself is never imported)
and scored on the official TEST split. Bagnall et al., "The UEA multivariate time series classification archive,
2018" (arXiv:1811.00075).

With ``data=`` (a ``series`` Dataset: the user's own windows, float32 ``(N, channels, length)``) the same
architecture is trained on the user's data instead: channels, length and classes come from the data, the eval part
is the user's ``eval_data`` or a stratified split, and the weights are cached by a hash of the training arrays.

Per-channel standardisation statistics of the training split are part of the model (a ``Standardize`` layer of
buffers), so raw readings go in. The training helper here (``fit_classifier``, with ``base.train_cached``) is shared with
the vision default (``vision.py``): seeded initial weights under ``torch.random.fork_rng``, one training thread
(the same float reductions in the same order on every machine). BatchNorm follows every convolution: the ONNX
export folds it into the convolution, and after structured pruning it re-normalises what the pruned channels
changed while the model fine-tunes (measured on mnist-dscnn: 94 % after prune + fine-tune with BatchNorm, 91 %
with BatchNorm folded beforehand).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np

from ..core.artifact import file_sha256, torch_artifact
from ..core.errors import DataError
from ..data.bundled import basic_motions
from ..data.dataset import Dataset, describe_dataset, make_task_data
from ..data.encode import encode_series
from ..data.splits import Split, TaskData, subsample
from ..tasks import SeriesClassification
from .base import LoadedModel, model_fingerprint, torch_lib, train_cached

__all__ = [
    "Standardize",
    "SensorCNN",
    "load_sensor_cnn",
    "fit_classifier",
    "channel_stats",
    "split_digest",
    "task_data_for",
]

nn = torch_lib().nn


# ---- layers and training shared with the vision default ---------------------------------------------------------
class Standardize(nn.Module):  # type: ignore[misc]
    """``(x - mean) / std`` per channel; the statistics are buffers (saved with the weights), set from training data."""

    def __init__(self, channels: int, spatial_dims: int):
        super().__init__()
        torch = torch_lib()
        shape = (1, channels) + (1,) * spatial_dims
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("std", torch.ones(shape))

    def set_stats(self, mean: np.ndarray, std: np.ndarray) -> None:
        torch = torch_lib()
        self.mean.copy_(torch.from_numpy(np.asarray(mean, dtype=np.float32)).reshape(self.mean.shape))
        self.std.copy_(torch.from_numpy(np.asarray(std, dtype=np.float32)).reshape(self.std.shape))

    def forward(self, x):
        return (x - self.mean) / self.std


def channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of ``x`` (N, C, ...) over every other axis; a flat channel gets std 1."""
    axes = (0, *range(2, x.ndim))
    mean = x.mean(axis=axes, dtype=np.float64)
    std = x.std(axis=axes, dtype=np.float64)
    std = np.where(std > 1e-6 * max(1.0, float(np.abs(mean).max(initial=0.0))), std, 1.0)
    return mean.astype(np.float32), std.astype(np.float32)


def fit_classifier(
    module,
    train: Split,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    weight_decay: float = 1e-4,
    augment: Callable[[Any, np.random.Generator], Any] | None = None,
) -> dict[str, Any]:
    """AdamW + one-cycle learning rate + cross-entropy, in place, on one thread, deterministic for ``seed``.

    ``augment(batch, rng)`` may transform each input batch (a torch tensor). The global torch RNG is left as it was.
    """
    torch = torch_lib()
    (name,) = train.inputs
    x = torch.from_numpy(np.ascontiguousarray(train.inputs[name], dtype=np.float32))
    y = torch.from_numpy(np.asarray(train.labels, dtype=np.int64))
    n = len(x)
    per_epoch = -(-n // batch_size)
    steps = epochs * per_epoch
    prev = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same reductions in the same order, so every machine trains alike
    losses: list[float] = []
    try:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            gen = np.random.default_rng(seed)
            opt = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay)
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.25)
            module.train()
            for _ in range(epochs):
                order = torch.from_numpy(gen.permutation(n))
                for i in range(0, n, batch_size):
                    idx = order[i : i + batch_size]
                    if len(idx) < 2:  # BatchNorm needs two examples to normalise a batch
                        continue
                    xb = x[idx] if augment is None else augment(x[idx], gen)
                    loss = torch.nn.functional.cross_entropy(module(xb), y[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                    losses.append(float(loss.detach()))
    finally:
        module.eval()
        torch.set_num_threads(prev)
    return {
        "epochs": epochs,
        "batch_size": batch_size,
        "steps": steps,
        "lr": lr,
        "final_loss": float(np.mean(losses[-5:])) if losses else None,
    }


def split_digest(split: Split) -> str:
    """sha256 of a split's arrays and labels: what identifies the data a model is trained on."""
    h = hashlib.sha256()
    for k in sorted(split.inputs):
        a = np.ascontiguousarray(split.inputs[k])
        h.update(f"{k}{a.shape}{a.dtype}".encode())
        h.update(a.tobytes())
    if split.labels is not None:
        h.update(np.ascontiguousarray(split.labels, dtype=np.int64).tobytes())
    return h.hexdigest()


# ---- the sensor CNN ----------------------------------------------------------------------------------------------
class SensorCNN(nn.Module):  # type: ignore[misc]
    """Standardize -> 3 x [Conv1d + BatchNorm + ReLU (+ MaxPool1d(2))] -> global average pool -> Linear.
    ~24k parameters for 6 channels and 4 classes. Input ``series``: float32 (N, channels, length)."""

    def __init__(
        self,
        channels: int = 6,
        classes: int = 4,
        length: int = 100,
        widths: tuple[int, ...] = (32, 64, 64),
        kernels: tuple[int, ...] = (5, 5, 3),
        batchnorm: bool = True,
    ):
        super().__init__()
        self.norm = Standardize(channels, 1)
        layers: list[Any] = []
        c, cur = channels, length
        for i, (w, k) in enumerate(zip(widths, kernels)):
            layers += [nn.Conv1d(c, w, k, padding=k // 2), nn.BatchNorm1d(w) if batchnorm else nn.Identity(), nn.ReLU()]
            if i < len(widths) - 1 and cur >= 8:  # halve the time axis while it is long enough to
                layers.append(nn.MaxPool1d(2))
                cur //= 2
            c = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(c, classes)

    def forward(self, series):
        return self.classifier(self.flatten(self.pool(self.features(self.norm(series)))))


def _series_split(data: TaskData, name: str) -> str:
    """The one 3-D float input of a ready TaskData (its name becomes the model's input name)."""
    inputs = data.eval.inputs
    if len(inputs) != 1 or next(iter(inputs.values())).ndim != 3:
        shapes = {k: v.shape for k, v in inputs.items()}
        raise DataError(
            f"{name} reads one input of windows (N, channels, length); the TaskData's eval split holds {shapes}."
        )
    return next(iter(inputs))


def task_data_for(
    name: str,
    data: Dataset | TaskData | None,
    eval_data: Dataset | None,
    *,
    kind: str,
    default: Callable[[], tuple[Dataset, Dataset | None, float]],
    encoder_for: Callable[[Dataset], Callable[[Dataset], Split]],
    n_eval: int | None,
    seed: int,
    n_calibration: int,
    extra_spec: dict[str, Any],
) -> tuple[TaskData, Dataset | None]:
    """The TaskData a locally trained model learns and is scored on: the bundled data (``default()`` gives the train
    set, the eval set or None, the test fraction) or the user's ``data`` (a Dataset of ``kind``, or a ready TaskData
    with a labelled train split), encoded by ``encoder_for(main data set)``. Returns it and the main Dataset."""
    if isinstance(data, TaskData):
        if eval_data is not None:
            raise DataError("A TaskData already holds its eval split: pass eval_data only with a Dataset.")
        if data.train is None or data.train.labels is None or not len(data.train):
            raise DataError(f"{name} is trained on the data it is given: the TaskData needs a labelled train split.")
        ev = subsample(data.eval, n_eval, seed)
        return TaskData(data.train, ev, data.calibration, data.label_names, {**data.spec, "n_eval": n_eval}), None
    if data is None:
        if eval_data is not None:
            raise DataError(f"eval_data was given without data: {name}'s bundled data has its own eval split.")
        ds, ev_ds, test_fraction = default()
    else:
        if not isinstance(data, Dataset):
            raise DataError(
                f"The 'data' parameter of {name} must be a workbench Dataset (kind {kind!r}), a TaskData or None "
                f"(the bundled data). Got {type(data).__name__}."
            )
        ds, ev_ds, test_fraction = data, eval_data, 0.3
    if ds.labels is None or len(ds.label_names) < 2:
        raise DataError(
            f"{ds.source}: {name} is trained on this data, so it needs labels of at least 2 classes "
            f"(found {len(ds.label_names)})."
        )
    td = make_task_data(
        ds,
        encoder_for(ds),
        eval_data=ev_ds,
        n_eval=n_eval,
        seed=seed,
        test_fraction=test_fraction,
        n_calibration=n_calibration,
        extra_spec=extra_spec,
    )
    if td.train is None or td.train.labels is None or not len(td.train):
        raise DataError(f"{ds.source}: no rows are left to train {name} on (every row is marked eval).")
    return td, ds


def _auto_epochs(n: int, batch_size: int, target_steps: int, max_epochs: int) -> int:
    return int(np.clip(round(target_steps * batch_size / max(n, 1)), 3, max_epochs))


def load_sensor_cnn(
    n_eval: int | None = None,
    seed: int = 0,
    data: Dataset | TaskData | None = None,
    eval_data: Dataset | None = None,
    task: str | None = None,
    epochs: int | None = None,
    **_: Any,
) -> LoadedModel:
    """sensor-cnn on BasicMotions (``data=None``) or trained on the user's ``series`` Dataset (``data=``).

    ``eval_data``: the user's own held-out windows (else a stratified 70/30 split of ``data``). ``epochs``: None
    picks ~300 optimizer steps (60 epochs of BasicMotions' 40 windows, batch 8).
    """
    name = "sensor-cnn"

    def bundled() -> tuple[Dataset, Dataset, float]:
        train, test = basic_motions()
        return train, test, 0.3

    def encode(ds: Dataset) -> Split:
        if ds.kind != "series" or ds.series is None:
            raise DataError(
                f"{name} trains on windows of sensor readings (a 'series' data set: N x channels x length); "
                f"{ds.source} holds {ds.kind} data. For images use mnist-dscnn."
            )
        x = np.asarray(ds.series, dtype=np.float32)
        if x.ndim != 3 or not np.isfinite(x).all():
            raise DataError(f"{ds.source}: the windows must be finite float32 (N, channels, length); got {x.shape}.")
        return encode_series("series")(ds)

    td, ds = task_data_for(
        name,
        data,
        eval_data,
        kind="series",
        default=bundled,
        encoder_for=lambda _ds: encode,
        n_eval=n_eval,
        seed=seed,
        n_calibration=64,
        extra_spec={"model": name},
    )
    input_name = "series" if ds is not None else _series_split(td, name)
    train = td.train
    assert train is not None and train.labels is not None
    x = train.inputs[input_name]
    _, channels, length = x.shape
    classes = max(len(td.label_names), int(train.labels.max()) + 1)
    cfg = {"channels": int(channels), "classes": int(classes), "length": int(length)}
    batch = 8 if len(train) <= 100 else 32
    n_epochs = epochs or _auto_epochs(len(train), batch, 300, 60)
    hyper = {"epochs": int(n_epochs), "batch_size": batch, "lr": 1e-2}
    mean, std = channel_stats(x)
    key = model_fingerprint("sensor-cnn-v2", cfg, hyper, split_digest(train), seed)

    def build():
        m = SensorCNN(**cfg)
        m.norm.set_stats(mean, std)
        return m

    def fit(m) -> None:
        fit_classifier(m, Split({input_name: x}, train.labels), seed=seed, **hyper)

    module, path, _ = train_cached(name, key, build, fit, seed)
    if data is None:
        src = "UEA BasicMotions (sktime wheel data), official train/test split"
    else:
        src = f"your data {ds.source if ds is not None else '(TaskData)'}"
    return LoadedModel(
        name=name,
        task=SeriesClassification(),
        data=td,
        baseline=torch_artifact(module, (input_name,), path=path, precision="fp32"),
        source=f"1D CNN trained locally on {src} ({len(train)} windows), cached",
        fingerprint=model_fingerprint(key, file_sha256(path), td.spec),
        info={
            "model_type": "cnn",
            "architecture": {"kind": "conv1d", **cfg},
            "training": hyper,
            "dataset": describe_dataset(ds) if ds is not None else {"source": "TaskData", "spec": td.spec},
            "channel_names": list(ds.channel_names) if ds is not None else [],
        },
    )
