"""Runners for the edge formats: an ExecuTorch program (``.pte``) and a LiteRT model (``.tflite``), each run by
its own runtime, the one a phone or a Raspberry Pi would use.

Both runtimes are optional (``pip install 'workbench[edge]'``) and imported only when a runner is made, so
``import workbench`` never loads them. A runner has the workbench's one signature: named numpy inputs in, the first
output as float32 numpy out. The programs are exported at batch 1 (what a device runs); a larger batch is run one
example at a time and the outputs stacked, so evaluation over a split works unchanged.

>>> run = executorch_runner(Path("model.pte"), ("pixels",), threads=1)   # doctest: +SKIP
>>> run({"pixels": x}).shape                                             # doctest: +SKIP
(32, 10)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelLoadError, ModelRunError

__all__ = [
    "EDGE_RUNTIMES",
    "EDGE_SUFFIXES",
    "edge_runtime_missing",
    "executorch_runner",
    "litert_runner",
    "set_executorch_threads",
    "quantize_input",
    "dequantize_output",
    "litert_signature",
]

#: runtime name -> (the file suffix it runs, the module that must import for it to run here)
EDGE_RUNTIMES: dict[str, tuple[str, str]] = {
    "executorch": (".pte", "executorch.runtime"),
    "litert": (".tflite", "ai_edge_litert.interpreter"),
}
EDGE_SUFFIXES: dict[str, str] = {suffix: rt for rt, (suffix, _) in EDGE_RUNTIMES.items()}

_INSTALL = "pip install 'workbench[edge]' (executorch==1.5.1, litert-torch==0.10.0, ai-edge-litert==2.3.0)"


def edge_runtime_missing(runtime: str) -> str | None:
    """Why ``runtime`` cannot run here (its package is missing), or None when it can."""
    import importlib.util

    module = EDGE_RUNTIMES[runtime][1]
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # the parent package is missing
        found = False
    return None if found else f"the {runtime} runtime is not installed ({module} is missing): {_INSTALL}"


def _need(runtime: str) -> None:
    why = edge_runtime_missing(runtime)
    if why:
        raise ModelLoadError(f"Cannot run this {EDGE_RUNTIMES[runtime][0]} model: {why}.")


def _rows(n_inputs: Sequence[np.ndarray]) -> int:
    lens = {len(a) if a.ndim else 1 for a in n_inputs}
    if len(lens) != 1:
        raise ModelRunError(f"The inputs have different batch sizes {sorted(lens)}: they must share one.")
    return lens.pop()


def _batched(run_one: Callable[[list[np.ndarray]], np.ndarray], batch: int) -> Callable[[list[np.ndarray]], np.ndarray]:
    """Run a batch-``batch`` program over any number of rows: one example (or program batch) at a time."""

    def run(arrays: list[np.ndarray]) -> np.ndarray:
        n = _rows(arrays)
        if n == batch:
            return run_one(arrays)
        if batch != 1:
            raise ModelRunError(f"The program was exported for batch {batch}; got a batch of {n}.")
        return np.concatenate([run_one([a[i : i + 1] for a in arrays]) for i in range(n)], axis=0)

    return run


# ---- ExecuTorch ------------------------------------------------------------------------------------------------
def set_executorch_threads(threads: int | None) -> None:
    """ExecuTorch's CPU thread pool (XNNPACK's) is one per process: size it for the runner made last."""
    if not threads:
        return
    from executorch.extension.pybindings import portable_lib

    if portable_lib._threadpool_get_thread_count() != threads:
        portable_lib._unsafe_reset_threadpool(int(threads))


def _canonical(a: np.ndarray) -> np.ndarray:
    """``a`` with C-order strides on every axis. NumPy calls a slice like ``x[i:i+1]`` of an (N, 1, 8, 8) array
    contiguous although its size-1 axes keep odd strides (256, 4, 32, 4); ExecuTorch's XNNPACK delegate then fails
    to propagate the input shape ("Propagating input shapes failed"). A fresh copy has canonical strides."""
    want, step = [], a.itemsize
    for n in reversed(a.shape):
        want.append(step)
        step *= max(n, 1)
    if a.flags["C_CONTIGUOUS"] and tuple(reversed(want)) == a.strides:
        return a
    return np.array(a, order="C", copy=True)


#: ExecuTorch ScalarType codes of the input dtypes a workbench model has
_ET_DTYPES = {6: np.float32, 4: np.int64, 3: np.int32, 11: np.bool_, 7: np.float64, 1: np.int8, 0: np.uint8}


def load_executorch_method(path: Path, *, etdump: bool = False):
    """(program, method "forward") of a ``.pte`` file, through ``executorch.runtime``."""
    _need("executorch")
    from executorch.runtime import Runtime

    try:
        program = Runtime.get().load_program(Path(path), enable_etdump=etdump, debug_buffer_size=0)
        method = program.load_method("forward")
    except Exception as e:
        raise ModelLoadError(f"ExecuTorch cannot load {path}: {type(e).__name__}: {e}") from None
    if method is None:
        raise ModelLoadError(f"{path} has no 'forward' method; its methods: {sorted(program.method_names)}.")
    return program, method


def executorch_runner(path: Path, input_names: tuple[str, ...], threads: int | None = None, *, method=None):
    """A runner of a ``.pte`` program (XNNPACK-delegated or portable kernels) through ``executorch.runtime``."""
    import torch

    set_executorch_threads(threads)
    if method is None:
        _, method = load_executorch_method(path)
    meta = method.metadata
    n_in = meta.num_inputs()
    if n_in != len(input_names):
        raise ModelLoadError(
            f"{path} takes {n_in} input(s) but the model names {len(input_names)}: {', '.join(input_names)}."
        )
    dtypes = [_ET_DTYPES.get(int(meta.input_tensor_meta(i).dtype())) for i in range(n_in)]
    batch = int(meta.input_tensor_meta(0).sizes()[0]) if meta.input_tensor_meta(0).sizes() else 1

    def one(arrays: list[np.ndarray]) -> np.ndarray:
        # ExecuTorch reads the tensor memory as is: inputs must be contiguous, with the canonical strides, and of the
        # program's dtype
        args = [
            torch.from_numpy(_canonical(a if dt is None else a.astype(dt, copy=False))) for a, dt in zip(arrays, dtypes)
        ]
        out = method.execute(args)[0]
        return out.detach().float().numpy()

    batched = _batched(one, batch)

    def run(inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        return batched([np.asarray(inputs[n]) for n in input_names])

    run.method = method  # type: ignore[attr-defined]  # for the delegation profile
    return run


# ---- LiteRT ------------------------------------------------------------------------------------------------------
def quantize_input(x: np.ndarray, dtype: Any, quantization: tuple[float, int]) -> np.ndarray:
    """A float input as a full-INT8 model wants it: ``round(x / scale) + zero_point``, saturated to the dtype."""
    scale, zero = quantization
    dt = np.dtype(dtype)
    if dt.kind in "iu" and scale and np.asarray(x).dtype.kind == "f":
        info = np.iinfo(dt)
        return np.clip(np.round(np.asarray(x, np.float32) / scale) + zero, info.min, info.max).astype(dt)
    return np.asarray(x).astype(dt, copy=False)


def dequantize_output(y: np.ndarray, quantization: tuple[float, int]) -> np.ndarray:
    scale, zero = quantization
    if scale and np.asarray(y).dtype.kind in "iu":
        return ((np.asarray(y, np.float32) - zero) * scale).astype(np.float32)
    return np.asarray(y, dtype=np.float32)


def litert_signature(interpreter) -> tuple[list[dict], list[dict]]:
    """Input and output tensor details of the model's first signature, inputs in argument order (``args_0``...)."""
    sigs = interpreter._get_full_signature_list()
    if not sigs:
        return interpreter.get_input_details(), interpreter.get_output_details()
    sig = sigs[next(iter(sigs))]
    by_index = {d["index"]: d for d in interpreter.get_input_details()}
    out_by_index = {d["index"]: d for d in interpreter.get_output_details()}

    def order(name: str) -> tuple[int, str]:
        tail = name.rsplit("_", 1)[-1]
        return (int(tail) if tail.isdigit() else 1 << 30, name)

    ins = [by_index[sig["inputs"][k]] for k in sorted(sig["inputs"], key=order)]
    outs = [out_by_index[sig["outputs"][k]] for k in sorted(sig["outputs"], key=order)]
    return ins, outs


def make_interpreter(path: Path | None, threads: int | None, *, content: bytes | None = None, **options: Any):
    """A LiteRT interpreter with its default CPU delegate (XNNPACK), tensors allocated."""
    _need("litert")
    from ai_edge_litert.interpreter import Interpreter

    try:
        it = Interpreter(
            model_path=None if path is None else str(path), model_content=content, num_threads=threads, **options
        )
        it.allocate_tensors()
    except Exception as e:
        raise ModelLoadError(f"LiteRT cannot load {path or 'the model'}: {type(e).__name__}: {e}") from None
    return it


def litert_runner(path: Path, input_names: tuple[str, ...], threads: int | None = None):
    """A runner of a ``.tflite`` model through ``ai_edge_litert``'s interpreter (XNNPACK delegate by default).
    Full-INT8 models take quantized inputs and give quantized outputs: the runner converts both."""
    it = make_interpreter(path, threads or None)
    ins, outs = litert_signature(it)
    if len(ins) != len(input_names):
        raise ModelLoadError(
            f"{path} takes {len(ins)} input(s) but the model names {len(input_names)}: {', '.join(input_names)}."
        )
    out = outs[0]
    shape = ins[0]["shape"]
    batch = int(shape[0]) if len(shape) else 1

    def one(arrays: list[np.ndarray]) -> np.ndarray:
        for a, d in zip(arrays, ins):
            it.set_tensor(d["index"], np.ascontiguousarray(quantize_input(a, d["dtype"], d["quantization"])))
        it.invoke()
        return dequantize_output(it.get_tensor(out["index"]), out["quantization"])

    batched = _batched(one, batch)

    def run(inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        return batched([np.asarray(inputs[n]) for n in input_names])

    run.interpreter = it  # type: ignore[attr-defined]
    return run
