"""Models from Python objects (from_module) and from .onnx files (with the user's data, or synthetic inputs)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.artifact import onnx_artifact, torch_artifact
from ..core.errors import DataError, WorkbenchError
from ..data.dataset import Dataset, describe_dataset, make_task_data
from ..data.source import data_request
from ..data.splits import Split, TaskData, subsample
from ..tasks import (
    Classification,
    Generic,
    ImageClassification,
    SeriesClassification,
    Task,
    TextClassification,
    get_task,
)
from .base import LoadedModel, model_fingerprint

# ---- Python objects and ONNX files -----------------------------------------------------------
#: the task of a model fed a data set of this kind (labels present); without labels: generic (fidelity only)
_KIND_TASK = {
    "image": ImageClassification,
    "series": SeriesClassification,
    "text": TextClassification,
    "arrays": Classification,
}


def from_module(
    module,
    data: TaskData | Dataset | str | os.PathLike,
    *,
    name: str = "custom",
    input_names: tuple[str, ...] | None = None,
    task: Task | str | None = None,
    eval_data: Dataset | str | os.PathLike | None = None,
    image_size: int | tuple[int, int] | None = None,
    channels: int = 3,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    n_eval: int | None = None,
    seed: int = 0,
    **options: Any,
) -> LoadedModel:
    """Wrap a ``torch.nn.Module`` and its evaluation data.

    ``data`` is a :class:`TaskData` (``data.eval.inputs`` are fed to ``module`` as positional arguments in
    ``input_names`` order), or the user's data set: a path / :class:`Dataset` of images (an image folder:
    give ``image_size``, and ``channels``/``mean``/``std`` as the module was trained), sensor windows or
    named arrays, split like ``load_model`` splits it (column options as in ``load_model``).
    """
    if not isinstance(data, (TaskData, Dataset, str, os.PathLike)):
        raise DataError(
            "from_module needs data: a workbench.data.TaskData, a Dataset, or a path to your data. "
            f"Got {type(data).__name__}."
        )
    spec_extra: dict[str, Any] = {}
    if not isinstance(data, TaskData):
        req = data_request(data, eval_data, task=_task_name(task), n_eval=n_eval, seed=seed, options=options)
        ds = req.data
        assert isinstance(ds, Dataset)
        input_name = (input_names or _forward_names(module) or (None,))[0]
        encode = _encoder_for(ds, name, input_name, image_size=image_size, channels=channels, mean=mean, std=std)
        spec_extra = {"image_size": image_size, "channels": channels, "mean": mean, "std": std}
        data = make_task_data(ds, encode, eval_data=req.eval_data, n_eval=n_eval, seed=seed, extra_spec=spec_extra)
        dataset_info = describe_dataset(ds)
        if task is None:
            task = (_KIND_TASK.get(ds.kind, Classification) if ds.labels is not None else Generic)()
    else:
        dataset_info = None
    task_obj = _task_object(task if task is not None else "classification", "from_module")
    names = tuple(input_names or data.eval.inputs.keys())
    if len(names) == 1 and len(data.eval.inputs) == 1 and names[0] not in data.eval.inputs:
        raise DataError(f"from_module: input_names {names} do not name the data's input {list(data.eval.inputs)}.")
    module.eval()
    weights = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        weights.update(k.encode())
        weights.update(v.detach().float().cpu().numpy().tobytes())
    return LoadedModel(
        name=name,
        task=task_obj,
        data=data,
        baseline=torch_artifact(module, names, precision="fp32"),
        source=f"python object {type(module).__name__}",
        fingerprint=model_fingerprint(name, weights.hexdigest(), data.spec, len(data.eval)),
        info={"model_type": type(module).__name__.lower(), "dataset": dataset_info},
    )


def _forward_names(module) -> tuple[str, ...]:
    """The names of ``module.forward``'s positional parameters (the model's input names), () if unknown."""
    import inspect

    try:
        params = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):
        return ()
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return tuple(p.name for p in params if p.kind in kinds)


def _task_name(task: Task | str | None) -> str | None:
    return task.name if isinstance(task, Task) else task


def _task_object(task: Task | str, owner: str) -> Task:
    if isinstance(task, Task):
        return task
    choices = ("classification", "text-classification", "image-classification", "series-classification", "generic")
    if task not in choices:
        raise WorkbenchError(
            f"The 'task' parameter of {owner} must be one of {', '.join(map(repr, choices))}. Got {task!r} instead."
        )
    return get_task(task)()


def _encoder_for(
    ds: Dataset,
    model: str,
    input_name: str | None,
    *,
    image_size: int | tuple[int, int] | None,
    channels: int,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    signature: dict[str, tuple[tuple[int | None, ...], str]] | None = None,
) -> Callable[[Dataset], Split]:
    """How a model without a processor of its own reads the user's data set."""
    from ..data.encode import encode_arrays, encode_images, encode_series

    if ds.kind == "image":
        if image_size is None:
            raise DataError(
                f"{model} reads images: give image_size= (e.g. 28 or (224, 224)), and channels= / mean= / std= as "
                "the model was trained, so the images can be resized and scaled for it."
            )
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        return encode_images(size, channels=channels, mean=mean, std=std, input_name=input_name or "pixel_values")
    if ds.kind == "series":
        return encode_series(input_name=input_name or "series")
    if ds.kind == "arrays":
        return encode_arrays(signature)
    raise DataError(
        f"{model} cannot read {ds.kind} data from {ds.source} without a tokenizer: give a Hugging Face model "
        "(its tokenizer encodes the text), or an .npz of token ids (input_ids, attention_mask)."
    )


def _onnx_signature(path: Path) -> dict[str, tuple[tuple[int | None, ...], str]]:
    """Input name -> (shape with None for dynamic dims, numpy dtype name) of an ONNX model (initializers skipped)."""
    import onnx
    from onnx import helper

    model = onnx.load(str(path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    sig = {}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        tt = inp.type.tensor_type
        shape = tuple(d.dim_value if d.dim_value > 0 else None for d in tt.shape.dim)
        sig[inp.name] = (shape, np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type)).name)
    return sig


def _synthetic_data(path: Path, n: int, seed: int) -> TaskData:
    """Random inputs that match an ONNX model's signature (no labels: fidelity only)."""
    rng = np.random.default_rng(seed)
    inputs = {}
    for name, (shape, dtype) in _onnx_signature(path).items():
        dims = [d if d is not None else (n if i == 0 else 16) for i, d in enumerate(shape)] or [n]
        dims[0] = n
        if dtype in ("int64", "int32"):
            arr = rng.integers(0, 100, size=dims).astype(dtype)
            if "mask" in name:
                arr = np.ones(dims, dtype=dtype)
        elif dtype in ("float32", "float16", "float64"):
            arr = rng.standard_normal(dims).astype(dtype)
        elif dtype == "bool":
            arr = rng.random(dims) < 0.5
        else:
            raise DataError(
                f"Cannot make random inputs for the input {name!r} of {path.name} (element type {dtype}): pass real "
                f"inputs, data= (--data inputs.npz holding an array named {name!r} of that type)."
            )
        inputs[name] = arr
    split = Split(inputs)
    return TaskData(
        None, split, subsample(split, max(1, n // 2), seed + 1), spec={"synthetic": True, "n": n, "seed": seed}
    )


def load_onnx_file(
    path: Path,
    *,
    data: TaskData | Dataset | None = None,
    eval_data: Dataset | None = None,
    task: str | None = None,
    n_eval: int | None,
    seed: int,
    image_size: int | tuple[int, int] | None = None,
    channels: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> LoadedModel:
    """An ``.onnx`` file on the user's data (real inputs; accuracy when there are labels), else random inputs."""
    art = onnx_artifact(path, precision="as-given")
    dataset_info: dict[str, Any]
    if data is None:
        data = _synthetic_data(path, n_eval or 64, seed)
        dataset_info = {
            "source": "synthetic",
            "kind": "random inputs",
            "rows": len(data.eval),
            "notes": [
                "no data given: random inputs that match the model's input signature, so only fidelity to FP32 "
                "is measured, not accuracy. Pass data= (--data FILE: .npz of the inputs with labels, an image "
                "folder, sensor windows) to score it on real inputs."
            ],
        }
        task_obj: Task = Generic()
    elif isinstance(data, TaskData):
        dataset_info = {"source": "TaskData from Python", "rows": len(data.eval), "notes": []}
        task_obj = _task_object(task or ("classification" if data.eval.labels is not None else "generic"), "load_model")
    else:
        sig = _onnx_signature(path)
        first, (shape, _) = next(iter(sig.items()))
        size = image_size
        if data.kind == "image" and size is None and len(shape) == 4 and shape[2] and shape[3]:
            size = (shape[2], shape[3])  # NCHW with fixed height and width: resize to them
        ch = channels or (shape[1] if data.kind == "image" and len(shape) == 4 and shape[1] else 3)
        encode = _encoder_for(data, path.name, first, image_size=size, channels=ch, mean=mean, std=std, signature=sig)
        ds = data
        data = make_task_data(
            ds,
            encode,
            eval_data=eval_data,
            n_eval=n_eval,
            seed=seed,
            extra_spec={"image_size": size, "channels": ch, "mean": mean, "std": std},
        )
        _check_signature(data, sig, ds, path)
        dataset_info = describe_dataset(ds)
        if task is None:
            task_obj = (_KIND_TASK.get(ds.kind, Classification) if ds.labels is not None else Generic)()
        else:
            task_obj = _task_object(task, "load_model")
    return LoadedModel(
        name=path.stem,
        task=task_obj,
        data=data,
        baseline=art,
        source=f"onnx file {path}",
        fingerprint=model_fingerprint("onnx", art.sha256(), data.spec),
        info={"model_type": "onnx", "dataset": dataset_info},
    )


def _check_signature(data: TaskData, sig: dict, ds: Dataset, path: Path) -> None:
    """The encoded inputs must be the model's inputs: name both signatures when they are not."""
    got = {k: (tuple(v.shape[1:]), v.dtype.name) for k, v in data.eval.inputs.items()}
    want = {k: (shape[1:], dtype) for k, (shape, dtype) in sig.items()}
    ok = set(got) == set(want) and all(
        len(got[k][0]) == len(want[k][0]) and all(w is None or w == g for g, w in zip(got[k][0], want[k][0]))
        for k in want
    )
    if not ok:
        raise DataError(
            f"The data {ds.source} does not match the inputs of {path.name}. The data gives {_sig_text(got)}; "
            f"the model takes {_sig_text(want)}."
        )


def _sig_text(sig: dict) -> str:
    parts = [f"{k} (N, {', '.join('?' if x is None else str(x) for x in s)}) {d}" for k, (s, d) in sig.items()]
    return "; ".join(parts) or "no inputs"
