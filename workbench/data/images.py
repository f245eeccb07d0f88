"""Images of the user's, encoded the way a Hugging Face image model expects: its own image processor.

The processor (``AutoImageProcessor``, saved beside the model as ``preprocessor_config.json``) resizes, crops,
rescales and normalises exactly as the model was trained; :func:`encode_with_processor` runs it over a
:class:`~workbench.data.dataset.Dataset` of images and returns the :class:`~workbench.data.splits.Split` a
loader hands to :func:`~workbench.data.dataset.make_task_data`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..core.errors import DataError
from .dataset import Dataset, open_image
from .splits import Split

__all__ = ["encode_with_processor", "processor_spec"]

#: PIL modes for the channel counts image models take
_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def encode_with_processor(
    processor: Any,
    input_name: str = "pixel_values",
    *,
    channels: int = 3,
    batch_size: int = 64,
) -> Callable[[Dataset], Split]:
    """An encoder ``Dataset -> Split``: each image opened, converted to ``channels`` (grey, RGB, RGBA) and run
    through ``processor`` (resize / crop / rescale / normalise as the model expects), as float32 ``input_name``.

    Images are processed ``batch_size`` at a time, so a large folder is never decoded all at once.
    """
    if channels not in _MODES:
        raise DataError(f"The 'channels' parameter must be one of 1, 3, 4. Got {channels!r} instead.")
    mode = _MODES[channels]

    def encode(ds: Dataset) -> Split:
        if ds.images is None:
            raise DataError(
                f"{ds.source}: an image model needs images, but this data set holds {ds.kind} "
                "(pass an image folder: data= / --data FOLDER)."
            )
        if not len(ds):
            raise DataError(f"{ds.source}: there are no images to encode.")
        parts = []
        for i in range(0, len(ds), batch_size):
            imgs = [_as_mode(open_image(x), mode) for x in ds.images[i : i + batch_size]]
            try:
                out = processor(images=imgs, return_tensors="np")
            except Exception as e:  # processors raise ValueError/TypeError for odd shapes and modes
                raise DataError(f"{ds.source}: the model's image processor cannot encode the images: {e}") from None
            if input_name not in out:
                raise DataError(
                    f"The image processor gives {sorted(out.keys())}, not {input_name!r}: the model's input name."
                )
            parts.append(np.asarray(out[input_name], dtype=np.float32))
        return Split({input_name: np.ascontiguousarray(np.concatenate(parts))}, ds.labels)

    return encode


def _as_mode(img, mode: str):
    if img.mode == mode:
        return img
    if mode == "RGB" and img.mode in ("I", "I;16", "I;16B", "F"):  # 16-bit / float greys: scale to 8 bits first
        arr = np.asarray(img, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        from PIL import Image

        img = Image.fromarray(((arr - lo) / max(hi - lo, 1e-9) * 255).astype(np.uint8))
    return img.convert(mode)


def processor_spec(processor: Any) -> dict[str, Any]:
    """What identifies a processor's encoding in a cache key: its settings (size, crop, mean, std...)."""
    try:
        d = processor.to_dict()
    except Exception:
        return {"processor": type(processor).__name__}
    return {k: (v if isinstance(v, (int, float, str, bool, list, dict, type(None))) else str(v)) for k, v in d.items()}
