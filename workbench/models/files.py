"""Models from Python objects (from_module) and from .onnx files (with the user's data, or synthetic inputs)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..core.artifact import onnx_artifact, torch_artifact
from ..core.errors import DataError, WorkbenchError
from ..data.splits import Split, TaskData, subsample
from ..tasks import Classification, Generic, Task
from .base import LoadedModel, model_fingerprint


# ---- Python objects and ONNX files -----------------------------------------------------------
def from_module(
    module,
    data: TaskData,
    *,
    name: str = "custom",
    input_names: tuple[str, ...] | None = None,
    task: Task | str = "classification",
) -> LoadedModel:
    """Wrap a ``torch.nn.Module`` and its evaluation data.

    ``data.eval.inputs`` are fed to ``module`` as positional arguments in ``input_names`` order.
    """
    if not isinstance(data, TaskData):
        raise DataError(f"from_module needs a workbench.data.TaskData. Got {type(data).__name__}.")
    task_obj = {"classification": Classification, "generic": Generic}.get(task)() if isinstance(task, str) else task
    if task_obj is None:
        raise WorkbenchError(
            f"The 'task' parameter of from_module must be one of 'classification', 'generic'. Got {task!r} instead."
        )
    names = tuple(input_names or data.eval.inputs.keys())
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
        info={"model_type": type(module).__name__.lower()},
    )


def _synthetic_data(path: Path, n: int, seed: int) -> TaskData:
    """Random inputs that match an ONNX model's signature (no labels: fidelity only)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    rng = np.random.default_rng(seed)
    inputs = {}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        tt = inp.type.tensor_type
        dims = [d.dim_value if d.dim_value > 0 else (n if i == 0 else 16) for i, d in enumerate(tt.shape.dim)]
        if not dims:
            dims = [n]
        dims[0] = n
        elem = tt.elem_type
        if elem in (onnx.TensorProto.INT64, onnx.TensorProto.INT32):
            dt = np.int64 if elem == onnx.TensorProto.INT64 else np.int32
            arr = rng.integers(0, 100, size=dims).astype(dt)
            if "mask" in inp.name:
                arr = np.ones(dims, dtype=dt)
        elif elem == onnx.TensorProto.FLOAT:
            arr = rng.standard_normal(dims).astype(np.float32)
        else:
            raise DataError(f"Cannot make synthetic data for input {inp.name!r} of element type {elem}; pass data=.")
        inputs[inp.name] = arr
    split = Split(inputs)
    return TaskData(
        None, split, subsample(split, max(1, n // 2), seed + 1), spec={"synthetic": True, "n": n, "seed": seed}
    )


def load_onnx_file(path: Path, *, data: TaskData | None, n_eval: int | None, seed: int) -> LoadedModel:
    art = onnx_artifact(path, precision="as-given")
    if data is None:
        data = _synthetic_data(path, n_eval or 64, seed)
        task: Task = Generic()
    else:
        task = Classification() if data.eval.labels is not None else Generic()
    return LoadedModel(
        name=path.stem,
        task=task,
        data=data,
        baseline=art,
        source=f"onnx file {path}",
        fingerprint=model_fingerprint("onnx", art.sha256(), data.spec),
        info={"model_type": "onnx"},
    )
