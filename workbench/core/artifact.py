"""A model in one runtime form (a PyTorch module, an ONNX file, an ExecuTorch ``.pte`` program or a LiteRT
``.tflite`` model) and a uniform way to run it.

Artifacts are immutable: a pass returns a new one. ONNX artifacts live in their own folder (the
model plus any external-data files), so size and sha256 cover everything a device would need; an edge
program is one self-contained file.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelLoadError

__all__ = [
    "Artifact",
    "Runner",
    "onnx_artifact",
    "torch_artifact",
    "edge_artifact",
    "runtime_for",
    "file_sha256",
    "dir_size",
    "ort_session",
    "session_hints",
    "set_session_hints",
]

Runner = Callable[[Mapping[str, np.ndarray]], np.ndarray]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


#: the form a pass consumes/produces (``PassConfig.consumes``) -> the runtime that runs it (``Candidate.runtime``)
_RUNTIME_OF_KIND = {"torch": "torch", "onnx": "onnxruntime", "executorch": "executorch", "litert": "litert"}
_KIND_OF_RUNTIME = {v: k for k, v in _RUNTIME_OF_KIND.items()}


def runtime_for(kind: str) -> str:
    """The runtime of an artifact of this kind: "torch", "onnxruntime", "executorch" or "litert"."""
    return _RUNTIME_OF_KIND[kind]


@dataclass(frozen=True)
class Artifact:
    """``runtime`` is "torch", "onnxruntime", "executorch" or "litert". ``meta`` carries facts passes record
    (precision, sparsity, delegation...)."""

    runtime: str
    input_names: tuple[str, ...]
    path: Path | None = None  # ONNX file, or the safetensors file of a saved torch module
    module: Any = None  # torch.nn.Module for torch artifacts (kept in memory)
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """The form passes consume/produce: "torch", "onnx", "executorch" or "litert"."""
        return _KIND_OF_RUNTIME.get(self.runtime, "onnx")

    def with_meta(self, **extra: Any) -> Artifact:
        return replace(self, meta={**self.meta, **extra})

    # ---- measurements that need no inference ----------------------------------------
    def size_bytes(self) -> int:
        if self.kind == "onnx":
            assert self.path is not None
            return dir_size(self.path.parent)
        if self.kind in ("executorch", "litert"):
            assert self.path is not None
            return self.path.stat().st_size
        if self.path is not None and self.path.exists():
            return self.path.stat().st_size
        return sum(t.numel() * t.element_size() for t in self.module.state_dict().values())

    def sha256(self) -> str | None:
        if self.path is None or not self.path.exists():
            return None
        if self.kind == "onnx":
            h = hashlib.sha256()
            for p in sorted(self.path.parent.rglob("*")):
                if p.is_file():
                    h.update(p.name.encode())
                    h.update(file_sha256(p).encode())
            return h.hexdigest()
        return file_sha256(self.path)

    def param_count(self) -> int:
        if self.kind == "torch":
            return int(sum(p.numel() for p in self.module.parameters()))
        if self.kind in ("executorch", "litert"):
            # the converting pass counts the weights of the module it converted (quantization keeps their number)
            return int(self.meta.get("params", 0))
        import onnx

        model = onnx.load(str(self.path), load_external_data=False)
        # scales and zero points of quantized weights/activations are not parameters: an initializer
        # counts unless every node that reads it reads it as a quantization parameter
        quant_only: dict[str, bool] = {}
        # dynamic INT8 written as MatMulInteger: Mul(activation scale from DynamicQuantizeLinear, weight scale)
        act_scales = {n.output[1] for n in model.graph.node if n.op_type == "DynamicQuantizeLinear"}
        for node in model.graph.node:
            qidx = _QUANT_PARAM_INPUTS.get(node.op_type, ())
            if node.op_type == "Mul" and act_scales.intersection(node.input):
                qidx = (0, 1)
            for i, name in enumerate(node.input):
                if name:
                    quant_only[name] = quant_only.get(name, True) and i in qidx
        # integer index/shape constants (position ids, Reshape shapes, axes) are not parameters either
        structural = {onnx.TensorProto.INT64, onnx.TensorProto.INT32, onnx.TensorProto.BOOL}
        n = 0
        for init in model.graph.initializer:
            if not quant_only.get(init.name, False) and init.data_type not in structural:
                n += int(np.prod(init.dims)) if init.dims else 1
        # MatMulNBits packs two int4 weights per byte: count weights, not bytes
        for node in model.graph.node:
            if node.op_type == "MatMulNBits":
                attrs = {a.name: a.i for a in node.attribute}
                n += attrs.get("K", 0) * attrs.get("N", 0) - _packed_len(model, node.input[1])
        return int(n)

    # ---- running -----------------------------------------------------------------------
    def runner(self, threads: int | None = None, *, session_config: Mapping[str, str] | None = None) -> Runner:
        """A callable mapping named numpy inputs to the first output as float32 numpy. ``session_config``:
        ONNX Runtime session config entries (e.g. ``{"session.intra_op.allow_spinning": "0"}``)."""
        if self.kind == "torch":
            return _torch_runner(self.module, self.input_names, threads)
        if self.kind == "executorch":
            from .edge_runtime import executorch_runner

            return executorch_runner(self.path, self.input_names, threads)
        if self.kind == "litert":
            from .edge_runtime import litert_runner

            return litert_runner(self.path, self.input_names, threads)
        return _ort_runner(self.path, threads, session_config)


#: input indices of quantized ops that carry scales / zero points
_QUANT_PARAM_INPUTS: dict[str, tuple[int, ...]] = {
    "QuantizeLinear": (1, 2),
    "DequantizeLinear": (1, 2),
    "DynamicQuantizeMatMul": (2, 3),
    "MatMulInteger": (2, 3),
    "ConvInteger": (2, 3),
    "MatMulIntegerToFloat": (2, 3, 4, 5),
    "QLinearMatMul": (1, 2, 4, 5, 6, 7),
    "QLinearConv": (1, 2, 4, 5, 6, 7),
    "QAttention": (3, 4, 6, 7),
    "MatMulNBits": (2, 3),
    # 8-12: scales of the word/position/segment embeddings, gamma and beta; 13-17: their zero points
    "QEmbedLayerNormalization": tuple(range(8, 18)),
}


def _packed_len(model, name: str) -> int:
    for init in model.graph.initializer:
        if init.name == name:
            return int(np.prod(init.dims))
    return 0


def torch_artifact(module, input_names: tuple[str, ...], path: Path | None = None, **meta: Any) -> Artifact:
    return Artifact("torch", tuple(input_names), path=path, module=module, meta=meta)


def edge_artifact(path: Path, input_names: tuple[str, ...], **meta: Any) -> Artifact:
    """Wrap an ExecuTorch ``.pte`` or LiteRT ``.tflite`` file; the runtime follows the suffix."""
    from .edge_runtime import EDGE_SUFFIXES

    path = Path(path)
    if path.suffix not in EDGE_SUFFIXES:
        raise ModelLoadError(f"{path} is not an edge program: the suffix must be one of {', '.join(EDGE_SUFFIXES)}.")
    if not path.is_file():
        raise ModelLoadError(f"No {path.suffix} file at {path}.")
    return Artifact(EDGE_SUFFIXES[path.suffix], tuple(input_names), path=path, meta=meta)


def onnx_artifact(path: Path, **meta: Any) -> Artifact:
    """Wrap an ONNX file; raises ModelLoadError if it is not a readable ONNX model."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"No ONNX file at {path}.")
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf DecodeError and friends
        raise ModelLoadError(f"{path} is not a readable ONNX model ({type(e).__name__}: {e}).") from None
    if not model.graph.node:
        raise ModelLoadError(f"{path} is not an ONNX model: its graph has no nodes.")
    inits = {i.name for i in model.graph.initializer}
    names = tuple(i.name for i in model.graph.input if i.name not in inits)
    return Artifact("onnxruntime", names, path=path, meta=meta)


def _torch_runner(module, input_names: tuple[str, ...], threads: int | None) -> Runner:
    import torch

    if threads:
        torch.set_num_threads(threads)
    module.eval()
    try:
        float_dtype = next(p.dtype for p in module.parameters() if p.is_floating_point())
    except StopIteration:
        float_dtype = torch.float32

    def run(inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        args = []
        for name in input_names:
            t = torch.from_numpy(np.ascontiguousarray(inputs[name]))
            if t.is_floating_point():
                t = t.to(float_dtype)
            args.append(t)
        with torch.inference_mode():
            out = module(*args)
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out.float().numpy()

    return run


#: metadata key of an ONNX model listing ORT graph optimizers that must stay off when it is loaded
_DISABLED_OPTIMIZERS = "workbench.ort.disabled_optimizers"


def set_session_hints(model, *, disabled_optimizers: tuple[str, ...] = ()) -> None:
    """Record in an ``onnx.ModelProto``'s metadata how ONNX Runtime must load it (kept by the quantizers)."""
    props = {p.key: p.value for p in model.metadata_props}
    if disabled_optimizers:
        props[_DISABLED_OPTIMIZERS] = ",".join(disabled_optimizers)
    del model.metadata_props[:]
    for k, v in props.items():
        model.metadata_props.add(key=k, value=v)


def session_hints(path: str | Path) -> dict[str, Any]:
    """The load hints a workbench pass stored in an ONNX model: ``{"disabled_optimizers": [...]}``.

    Read once per file version (path, size, mtime): opening many sessions of one model (benchmarks, the
    dashboard's re-runs) parses the protobuf once."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:  # missing: ONNX Runtime will report the real problem
        return {"disabled_optimizers": []}
    return {"disabled_optimizers": list(_read_hints(str(p.resolve()), st.st_size, st.st_mtime_ns))}


@functools.lru_cache(maxsize=64)
def _read_hints(path: str, size: int, mtime_ns: int) -> tuple[str, ...]:
    import onnx

    try:
        props = {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}
    except Exception:  # not parseable here: ONNX Runtime will report the real problem
        return ()
    return tuple(x for x in props.get(_DISABLED_OPTIMIZERS, "").split(",") if x)


def ort_session(
    path: str | Path,
    threads: int | None = None,
    *,
    config: Mapping[str, str] | None = None,
    profile_prefix: str | None = None,
):
    """An ONNX Runtime CPU session the way every workbench measurement opens one: fixed thread count, full
    graph optimization, the model's own load hints applied. Raises ModelLoadError naming the file."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or (os.cpu_count() or 1)
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    for k, v in (config or {}).items():
        so.add_session_config_entry(k, v)
    if profile_prefix:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    try:
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"], **session_hints(path))
    except Exception as e:
        raise ModelLoadError(f"ONNX Runtime cannot load {path}: {e}") from None


def _ort_runner(path: Path, threads: int | None, config: Mapping[str, str] | None = None) -> Runner:
    sess = ort_session(path, threads, config=config)
    wanted = {i.name: i.type for i in sess.get_inputs()}
    np_types = {
        "tensor(int64)": np.int64,
        "tensor(int32)": np.int32,
        "tensor(float)": np.float32,
        "tensor(float16)": np.float16,
        "tensor(bool)": np.bool_,
    }

    def run(inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        feed = {}
        for name, typ in wanted.items():
            arr = inputs[name]
            dt = np_types.get(typ)
            feed[name] = np.ascontiguousarray(arr if dt is None else arr.astype(dt, copy=False))
        out = sess.run(None, feed)[0]
        return np.asarray(out, dtype=np.float32)

    run.session = sess  # type: ignore[attr-defined]  # for profiling and input listings
    return run
