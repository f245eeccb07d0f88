"""ONNX export with a parity check against the PyTorch model."""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..core.artifact import Artifact, onnx_artifact
from ..core.config import PassConfig, check_range
from ..core.errors import ParityError, PassError
from .registry import PassJob, register_pass

__all__ = ["OnnxExport"]


@dataclass(frozen=True)
class OnnxExport(PassConfig):
    """Export to ONNX (TorchScript exporter) and check the outputs against PyTorch."""

    kind: ClassVar[str] = "onnx-export"
    consumes: ClassVar[str] = "torch"
    produces: ClassVar[str] = "onnx"
    summary: ClassVar[str] = "export to ONNX Runtime; fails if outputs differ from PyTorch by more than atol"

    #: 17 is supported by every ONNX Runtime since 1.14 and has LayerNormalization
    opset: int = 17
    #: max |onnx - torch| over the parity samples; FP32 export differences are ~1e-6
    atol: float = 1e-3
    parity_samples: int = 8

    def validate(self) -> None:
        check_range("OnnxExport", "opset", self.opset, 13, 23, integer=True)
        check_range("OnnxExport", "atol", self.atol, 0, 1, lo_open=True)
        check_range("OnnxExport", "parity_samples", self.parity_samples, 1, 1024, integer=True)


def _dynamic_axes(names: tuple[str, ...], sample: dict[str, np.ndarray]) -> dict:
    axes = {}
    for n in names:
        a = sample[n]
        axes[n] = {0: "batch", 1: "sequence"} if a.ndim == 2 and a.dtype.kind == "i" else {0: "batch"}
    axes["output"] = {0: "batch"}
    return axes


@register_pass(OnnxExport)
def _export(art: Artifact, cfg: OnnxExport, job: PassJob) -> Artifact:
    import torch

    module = art.module
    if any(p.dtype not in (torch.float32,) for p in module.parameters() if p.is_floating_point()):
        raise PassError(
            "onnx-export needs a float32 model; put bf16/fp16 casts after the export (onnx-fp16) "
            "or run them in PyTorch without exporting."
        )
    job.ctx.begin(job.stage or "onnx-export", total=2, message="tracing")
    sample_split = job.model.data.eval.take(slice(0, min(cfg.parity_samples, len(job.model.data.eval))))
    sample = sample_split.inputs
    args = tuple(torch.from_numpy(np.ascontiguousarray(sample[n][:2])) for n in art.input_names)
    # export a copy: tracing must not touch the caller's module (hooks, training flags)
    m = copy.deepcopy(module).eval()
    path = job.out_path("model.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                m,
                args,
                str(path),
                input_names=list(art.input_names),
                output_names=["output"],
                dynamic_axes=_dynamic_axes(art.input_names, sample),
                opset_version=cfg.opset,
                do_constant_folding=True,
                dynamo=False,
                verbose=False,
            )
        except Exception as e:
            raise PassError(f"onnx-export failed: {type(e).__name__}: {e}") from None
    job.ctx.step(message="parity check")
    out = onnx_artifact(path, **{**art.meta, "exported_from": "torch", "opset": cfg.opset})
    ref = art.runner(job.threads)(sample)
    got = out.runner(job.threads)(sample)
    diff = float(np.max(np.abs(ref - got))) if ref.size else 0.0
    if not np.isfinite(diff) or diff > cfg.atol:
        raise ParityError(
            f"ONNX export does not match PyTorch: max abs diff {diff:.3g} > atol {cfg.atol:g} "
            f"over {len(sample_split)} samples.",
            diff,
            cfg.atol,
        )
    job.ctx.step(message=f"max abs diff {diff:.2g}")
    return out.with_meta(parity_max_abs_diff=diff)
