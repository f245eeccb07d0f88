"""Encoders: a :class:`~workbench.data.dataset.Dataset` -> the named input arrays a model reads (a ``Split``).

Each ``encode_*`` returns a function of a Dataset, so :func:`~workbench.data.dataset.make_task_data` can encode
the train and the eval part the same way. Labels pass through as the Dataset's int64 ids.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..core.errors import DataError
from .dataset import Dataset, open_image
from .splits import Split

__all__ = ["encode_text", "encode_images", "encode_series", "encode_arrays", "Signature"]

#: model input name -> (shape with None for a dynamic dim, numpy dtype name), e.g. {"x": ((None, 8), "float32")}
Signature = Mapping[str, tuple[tuple[int | None, ...], str]]

_TEXT_BATCH = 1024
_ONNX_DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


def _need(ds: Dataset, field: str, encoder: str, kinds: str) -> Any:
    v = getattr(ds, field)
    if v is None:
        raise DataError(f"{encoder} reads {kinds} data, but {ds.source} holds {ds.kind} data (it has no {field}).")
    return v


def encode_text(
    tokenizer: Any, max_length: int = 128, input_names: Sequence[str] = ("input_ids", "attention_mask")
) -> Callable[[Dataset], Split]:
    """Tokenize ``ds.texts`` to ``max_length`` (padding to it, truncating past it): int64 ``input_names``."""
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length <= 0:
        raise DataError(
            f"The 'max_length' parameter of encode_text must be a positive int. Got {max_length!r} instead."
        )
    names = tuple(input_names)

    def encode(ds: Dataset) -> Split:
        texts = _need(ds, "texts", "encode_text", "text")
        parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
        for i in range(0, len(texts), _TEXT_BATCH):
            enc = tokenizer(
                list(texts[i : i + _TEXT_BATCH]),
                padding="max_length",
                truncation=True,
                max_length=max_length,
                return_tensors="np",
            )
            missing = [n for n in names if n not in enc]
            if missing:
                raise DataError(
                    f"The tokenizer returned {sorted(enc.keys())}, not the inputs {missing} the model needs "
                    f"({ds.source})."
                )
            for n in names:
                parts[n].append(np.asarray(enc[n], dtype=np.int64))
        if not texts:
            inputs = {n: np.zeros((0, max_length), dtype=np.int64) for n in names}
        else:
            inputs = {n: np.concatenate(v) for n, v in parts.items()}
        return Split(inputs, ds.labels)

    return encode


def _per_channel(v: float | Sequence[float] | None, channels: int, name: str) -> np.ndarray | None:
    if v is None:
        return None
    arr = np.asarray(v, dtype=np.float32).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, channels)
    if arr.size != channels:
        raise DataError(
            f"The {name!r} parameter of encode_images must be one number or {channels} (one per channel). "
            f"Got {v!r} instead."
        )
    if name == "std" and np.any(arr == 0):
        raise DataError(f"The 'std' parameter of encode_images must not be 0. Got {v!r} instead.")
    return arr.reshape(channels, 1, 1)


def encode_images(
    size: tuple[int, int] | int,
    channels: int = 3,
    mean: float | Sequence[float] | None = None,
    std: float | Sequence[float] | None = None,
    input_name: str = "pixel_values",
) -> Callable[[Dataset], Split]:
    """Decode, convert to L (1 channel) or RGB (3), resize (bilinear) to ``size`` = (H, W) (an int: square):
    float32 NCHW in [0, 1].

    ``mean`` / ``std`` (one value or one per channel, on the [0, 1] scale) normalize as ``(x - mean) / std``.
    """
    from PIL import Image

    if channels not in (1, 3):
        raise DataError(
            f"The 'channels' parameter of encode_images must be 1 (grayscale) or 3 (RGB). Got {channels!r} instead."
        )
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    try:
        h, w = (int(size[0]), int(size[1]))
        ok = h > 0 and w > 0 and len(size) == 2
    except (TypeError, ValueError, IndexError):
        ok = False
    if not ok:
        raise DataError(
            f"The 'size' parameter of encode_images must be (height, width), two positive ints. Got {size!r} instead."
        )
    m = _per_channel(mean, channels, "mean")
    s = _per_channel(std, channels, "std")
    mode = "L" if channels == 1 else "RGB"

    def encode(ds: Dataset) -> Split:
        images = _need(ds, "images", "encode_images", "image")
        out = np.empty((len(images), channels, h, w), dtype=np.float32)
        for i, x in enumerate(images):
            img = open_image(x)
            if img.mode != mode:
                img = img.convert(mode)
            if img.size != (w, h):
                img = img.resize((w, h), Image.BILINEAR)
            a = np.asarray(img, dtype=np.float32) / 255.0
            out[i] = a[None] if channels == 1 else a.transpose(2, 0, 1)
        if m is not None:
            out -= m
        if s is not None:
            out /= s
        return Split({input_name: out}, ds.labels)

    return encode


def encode_series(input_name: str = "series") -> Callable[[Dataset], Split]:
    """``ds.series`` (N, channels, length) float32, under ``input_name``."""

    def encode(ds: Dataset) -> Split:
        series = _need(ds, "series", "encode_series", "series")
        return Split({input_name: np.asarray(series, dtype=np.float32)}, ds.labels)

    return encode


def _dtype(d: Any) -> np.dtype:
    try:
        return np.dtype(_ONNX_DTYPES.get(str(d), d))
    except TypeError:
        raise DataError(f"Unknown dtype {d!r} in a model signature: give a numpy dtype name like 'float32'.") from None


def _shape_text(shape: Sequence[Any]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def encode_arrays(signature: Signature | None = None) -> Callable[[Dataset], Split]:
    """``ds.arrays`` fed by name; with a model ``signature`` the names, ranks and fixed dims are checked.

    The first (batch) dim is never checked. A dtype differing from the signature's is cast only within its
    family (float64 -> float32, int32 -> int64, ...); anything else raises an error naming both signatures.
    """
    want = None
    if signature is not None:
        want = {str(k): (tuple(shape), _dtype(dt)) for k, (shape, dt) in signature.items()}

    def encode(ds: Dataset) -> Split:
        arrays = _need(ds, "arrays", "encode_arrays", "arrays (.npz)")
        if want is None:
            return Split(dict(arrays), ds.labels)
        problems: list[str] = []
        missing = [k for k in want if k not in arrays]
        extra = [k for k in arrays if k not in want]
        if missing:
            problems.append(f"the model's inputs {missing} are not in the data")
        if extra:
            problems.append(f"the data's arrays {extra} are not inputs of the model")
        out: dict[str, np.ndarray] = {}
        for k, (shape, dt) in want.items():
            if k not in arrays:
                continue
            a = arrays[k]
            if a.ndim != len(shape):
                problems.append(f"{k!r} has {a.ndim} dims, the model's {len(shape)}")
                continue
            dims = [
                f"dim {i} is {a.shape[i]}, the model's {d}"
                for i, d in enumerate(shape)
                if i > 0 and isinstance(d, int) and d is not None and d > 0 and a.shape[i] != d
            ]
            if dims:
                problems.append(f"{k!r}: " + "; ".join(dims))
                continue
            if a.dtype != dt:
                same_family = (a.dtype.kind in "iu" and dt.kind in "iu") or (a.dtype.kind == "f" and dt.kind == "f")
                if not same_family:
                    problems.append(f"{k!r} is {a.dtype}, the model's {dt.name} (no cast between those)")
                    continue
                if dt.kind in "iu" and a.size:
                    info = np.iinfo(dt)
                    if a.min() < info.min or a.max() > info.max:
                        problems.append(f"{k!r} holds values outside the range of the model's {dt.name}")
                        continue
                a = a.astype(dt)
            out[k] = a
        if problems:
            data_sig = ", ".join(f"{k} {_shape_text(('N', *v.shape[1:]))} {v.dtype}" for k, v in arrays.items())
            model_sig = ", ".join(f"{k} {_shape_text(s)} {d.name}" for k, (s, d) in want.items())
            raise DataError(
                f"The arrays of {ds.source} do not fit the model's inputs: {'; '.join(problems)}. The data's arrays: "
                f"{data_sig}. The model's inputs: {model_sig}. Save the .npz with the model's input names, shapes "
                "and dtypes (np.savez(path, <input name>=..., labels=...))."
            )
        return Split(out, ds.labels)

    return encode
